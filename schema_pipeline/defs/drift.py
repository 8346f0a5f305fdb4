"""Drift: `no_drift` checks on every `release/<env>`, run by a schedule.

Desired = the state at the commit last released to that environment (its materialization's
`schema/commit` tag). Live = the environment's database now. A failure carries the
live-vs-desired diff and the SQL that would restore the desired state. Severity: WARN for the
first environment (test), ERROR for the others (prod).
"""

import hashlib

import dagster as dg

from schema_pipeline import engine
from schema_pipeline.config import EnvironmentConfig, ProjectConfig
from schema_pipeline.defs.backends import bytebase_drift
from schema_pipeline.defs.common import (
    NO_DRIFT,
    catalog_diff_markdown,
    change_lines,
    changes_table,
    latest_materialization,
    materialization_tag,
    release_key,
    scrub,
    sql_markdown,
    state_at,
)
from schema_pipeline.defs.resources import GitRepoResource, PostgresTarget, resource_keys
from schema_pipeline.defs.targets import TargetRun, env_targets, env_urls, run_each, targets_table
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.git import GitError
from schema_pipeline.plan.render import render_human, render_sql

DRIFT_JOB = "drift_checks"
DRIFT_LINES = 10  # drifted objects named in the check's description


def drift_fingerprint(plans: list, databases: list[str] | None = None) -> str:
    """What an approval of a correction is bound to: the correcting plan's fingerprint (one
    database), or a hash over `database:fingerprint` of every drifted database."""
    if len(plans) == 1 and not databases:
        return plans[0].fingerprint()
    payload = "\n".join(f"{db}:{p.fingerprint()}" for db, p in zip(databases or [], plans, strict=True))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def correction_hint(env: EnvironmentConfig, plan) -> str:
    hazards = sorted(plan.hazard_types())
    return f"job correct_drift_{env.name} with approved_by, reason, expected_drift = drift_fingerprint" + (
        f", allow_hazards = [{', '.join(hazards)}]" if hazards else ""
    )


def build_drift_check(cfg: ProjectConfig, env: EnvironmentConfig) -> dg.AssetChecksDefinition:
    """`release/<env>:no_drift`."""
    key = release_key(env)
    severity = dg.AssetCheckSeverity.WARN if cfg.previous(env) is None else dg.AssetCheckSeverity.ERROR

    @dg.asset_check(
        asset=key,
        name=NO_DRIFT,
        blocking=False,
        required_resource_keys={"git", "bytebase"}
        if env.backend == "bytebase"
        else {"git", *resource_keys(env)},
        description=(
            f"The live `{env.name}` database still matches the state last released to it "
            f"(failure severity {severity.value}); the metadata shows the diff and the correction SQL."
        ),
    )
    def no_drift(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        git: GitRepoResource = context.resources.git
        event = latest_materialization(context.instance, key)
        sha = materialization_tag(event)
        if not sha:
            return dg.AssetCheckResult(
                passed=True,
                description=f"{env.name} has not been released by the pipeline yet; nothing to compare",
                metadata={"environment": env.name},
            )
        if env.backend == "bytebase":
            return _bytebase_no_drift(context, git, env, sha, severity)
        urls = env_urls(context.resources, env)
        if len(urls) > 1:
            return _multi_no_drift(context, git, env, sha, severity, urls)
        target: PostgresTarget = env_targets(context.resources, env)[0]
        url = urls[0]
        try:
            with state_at(git.get_client(), git.state_path, sha) as state:
                result = engine.drift(url, state, scope=env.scope(), plan_db_url=target.plan_database_url)
        except (SchemaPipelineError, GitError) as exc:
            raise dg.Failure(scrub(f"drift check of {env.name} failed: {exc}", url)) from None
        plan = result.plan
        if plan.is_empty:
            return dg.AssetCheckResult(
                passed=True,
                description=f"{env.name} matches commit {sha[:12]}",
                metadata={
                    "environment": env.name,
                    "database": target.display(),
                    "released_commit": dg.MetadataValue.text(sha),
                    "drifted_objects": 0,
                },
            )
        lines = change_lines(plan, DRIFT_LINES)
        metadata = {
            "drifted": dg.MetadataValue.text("; ".join(lines)),
            "drift_fingerprint": dg.MetadataValue.text(drift_fingerprint([plan])),
            "correct_with": dg.MetadataValue.text(correction_hint(env, plan)),
            "environment": env.name,
            "database": target.display(),
            "released_commit": dg.MetadataValue.text(sha),
            "drifted_objects": len({(s.object_kind, s.object_name) for s in plan.steps}),
            "changes": changes_table(plan),
        }
        context.log.warning(f"{env.name} drifted from {sha[:12]}: {len(plan.steps)} correcting step(s)")
        metadata.update(
            diff=dg.MetadataValue.md(
                catalog_diff_markdown(result.current, result.desired)
                + "\n\n**What restoring the desired state would do**\n\n```\n"
                + render_human(plan).strip()
                + "\n```"
            ),
            correction_sql=dg.MetadataValue.md(sql_markdown(render_sql(plan))),
        )
        return dg.AssetCheckResult(
            passed=False,
            severity=severity,
            description=(
                f"{env.name} differs from the state released at {sha[:12]} "
                f"({metadata['drifted_objects']} object(s)); restoring it would:\n"
                + "\n".join(f"- {line}" for line in lines)
                + f"\n\nSee diff and correction_sql; job correct_drift_{env.name} re-applies the released "
                "state with an approval."
            ),
            metadata=metadata,
        )

    return no_drift


def _bytebase_no_drift(
    context: dg.AssetCheckExecutionContext,
    git: GitRepoResource,
    env: EnvironmentConfig,
    sha: str,
    severity: dg.AssetCheckSeverity,
) -> dg.AssetCheckResult:
    """Drift through Bytebase: sync each database, then diffSchema against the released state."""
    outcome, clean = bytebase_drift(context, git, env, sha)
    drifted = [db for db, diff in outcome.per_target.items() if diff.strip()]
    metadata: dict = {
        "environment": env.name,
        "backend": "bytebase",
        "database": ", ".join(outcome.per_target),
        "released_commit": dg.MetadataValue.text(sha),
        "drifted_databases": len(drifted),
    }
    if not outcome.has_drift:
        return dg.AssetCheckResult(
            passed=True,
            description=f"{env.name} matches commit {sha[:12]} (Bytebase diffSchema)",
            metadata=metadata,
        )
    context.log.warning(f"{env.name} drifted from {sha[:12]} on {len(drifted)} database(s)")
    metadata["correction_sql"] = dg.MetadataValue.md(sql_markdown(clean(outcome.diff)))
    metadata["diff"] = metadata["correction_sql"]
    return dg.AssetCheckResult(
        passed=False,
        severity=severity,
        description=f"{env.name} differs from the state released at {sha[:12]} on {', '.join(drifted)}",
        metadata=metadata,
    )


def _multi_no_drift(
    context: dg.AssetCheckExecutionContext,
    git: GitRepoResource,
    env: EnvironmentConfig,
    sha: str,
    severity: dg.AssetCheckSeverity,
    urls: list[str],
) -> dg.AssetCheckResult:
    """Drift over every database of the environment, `max_parallel` at a time; all are reported."""
    plan_db = env_targets(context.resources, env)[0].plan_database_url

    def check(url: str) -> tuple[object, int]:
        result = engine.drift(url, state, scope=env.scope(), plan_db_url=plan_db)
        return result, len(result.plan.steps)

    try:
        with state_at(git.get_client(), git.state_path, sha) as state:
            runs = run_each(urls, check, env.max_parallel, secrets=(plan_db,))
    except GitError as exc:
        raise dg.Failure(f"drift check of {env.name} failed: {exc}") from None
    drifted: list[TargetRun] = []
    for run in runs:
        if run.ok and not run.value.plan.is_empty:
            run.status = "drifted"
            drifted.append(run)
    failed = [r for r in runs if r.status == "failed"]
    correction = "\n\n".join(f"-- {r.database}\n{render_sql(r.value.plan).strip()}" for r in drifted)
    metadata: dict = {
        "environment": env.name,
        "database": ", ".join(r.database for r in runs),
        "released_commit": dg.MetadataValue.text(sha),
        "databases": targets_table(runs),
        "drifted_databases": len(drifted),
        "failed_databases": len(failed),
    }
    if drifted:
        metadata["correction_sql"] = dg.MetadataValue.md(sql_markdown(correction))
    if not drifted and not failed:
        return dg.AssetCheckResult(
            passed=True,
            description=f"all {len(runs)} {env.name} databases match {sha[:12]}",
            metadata=metadata,
        )
    if drifted:
        metadata["drifted"] = dg.MetadataValue.text(
            "; ".join(f"{r.database}: {', '.join(change_lines(r.value.plan, DRIFT_LINES))}" for r in drifted)
        )
        metadata["drift_fingerprint"] = dg.MetadataValue.text(
            drift_fingerprint([r.value.plan for r in drifted], [r.database for r in drifted])
        )
    problems = [
        f"{r.database}: drifted ({r.steps} step(s): {', '.join(change_lines(r.value.plan, DRIFT_LINES))})"
        for r in drifted
    ]
    problems += [f"{r.database}: check failed: {r.error}" for r in failed]
    context.log.warning(f"{env.name}: " + "; ".join(problems))
    return dg.AssetCheckResult(
        passed=False,
        severity=severity,
        description=f"{len(drifted)} drifted and {len(failed)} unchecked of {len(runs)} {env.name} databases: "
        + "; ".join(problems)[:1500],
        metadata=metadata,
    )


def build_drift_automation(
    cfg: ProjectConfig, checks: dict[str, dg.AssetChecksDefinition]
) -> tuple[list, list[dg.ScheduleDefinition]]:
    """Job `drift_checks` over every environment's check, and one schedule per distinct cron."""
    all_checks = dg.AssetSelection.checks(*checks.values())
    jobs = [
        dg.define_asset_job(
            DRIFT_JOB,
            selection=all_checks,
            description="Compare every environment's live schema with the state last released to it.",
            tags={"schema/pipeline": "drift"},
        )
    ]
    by_cron: dict[str, list[str]] = {}
    for env in cfg.environments:
        by_cron.setdefault(env.drift_cron, []).append(env.name)
    schedules: list[dg.ScheduleDefinition] = []
    for cron, names in by_cron.items():
        if len(by_cron) == 1:
            job, sched_name = jobs[0], "drift_schedule"
        else:
            suffix = "_".join(names)
            job = dg.define_asset_job(
                f"{DRIFT_JOB}_{suffix}",
                selection=dg.AssetSelection.checks(*(checks[n] for n in names)),
                description=f"Drift checks of {', '.join(names)}.",
                tags={"schema/pipeline": "drift"},
            )
            jobs.append(job)
            sched_name = f"drift_schedule_{suffix}"
        schedules.append(
            dg.ScheduleDefinition(
                name=sched_name,
                job=job,
                cron_schedule=cron,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description=f"Drift checks of {', '.join(names)} ({cron}, UTC).",
            )
        )
    return jobs, schedules
