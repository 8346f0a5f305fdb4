"""Drift: `no_drift` checks on every `release/<env>`, run by a schedule.

Desired = the state at the commit last released to that environment (its materialization's
`schema/commit` tag). Live = the environment's database now. A failure carries the
live-vs-desired diff and the SQL that would restore the desired state. Severity: WARN for the
first environment (test), ERROR for the others (prod).
"""

import dagster as dg

from schema_pipeline import engine
from schema_pipeline.config import EnvironmentConfig, ProjectConfig
from schema_pipeline.defs.common import (
    NO_DRIFT,
    catalog_diff_markdown,
    latest_materialization,
    materialization_tag,
    release_key,
    scrub,
    sql_markdown,
    state_at,
)
from schema_pipeline.defs.resources import GitRepoResource, PostgresTarget, resource_key
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.git import GitError
from schema_pipeline.plan.render import render_human, render_sql

DRIFT_JOB = "drift_checks"


def build_drift_check(cfg: ProjectConfig, env: EnvironmentConfig) -> dg.AssetChecksDefinition:
    """`release/<env>:no_drift`."""
    key = release_key(env)
    db_key = resource_key(env)
    severity = dg.AssetCheckSeverity.WARN if cfg.previous(env) is None else dg.AssetCheckSeverity.ERROR

    @dg.asset_check(
        asset=key,
        name=NO_DRIFT,
        blocking=False,
        required_resource_keys={db_key, "git"},
        description=(
            f"The live `{env.name}` database still matches the state last released to it "
            f"(failure severity {severity.value}); the metadata shows the diff and the correction SQL."
        ),
    )
    def no_drift(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        git: GitRepoResource = context.resources.git
        target: PostgresTarget = getattr(context.resources, db_key)
        event = latest_materialization(context.instance, key)
        sha = materialization_tag(event)
        if not sha:
            return dg.AssetCheckResult(
                passed=True,
                description=f"{env.name} has not been released by the pipeline yet; nothing to compare",
                metadata={"environment": env.name},
            )
        url = target.url()
        try:
            with state_at(git.get_client(), git.state_path, sha) as state:
                result = engine.drift(url, state, scope=env.scope(), plan_db_url=target.plan_database_url)
        except (SchemaPipelineError, GitError) as exc:
            raise dg.Failure(scrub(f"drift check of {env.name} failed: {exc}", url)) from None
        plan = result.plan
        metadata = {
            "environment": env.name,
            "database": target.display(),
            "released_commit": dg.MetadataValue.text(sha),
            "drifted_objects": len({(s.object_kind, s.object_name) for s in plan.steps}),
        }
        if plan.is_empty:
            return dg.AssetCheckResult(
                passed=True, description=f"{env.name} matches commit {sha[:12]}", metadata=metadata
            )
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
                f"({metadata['drifted_objects']} object(s)); see diff and correction_sql"
            ),
            metadata=metadata,
        )

    return no_drift


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
