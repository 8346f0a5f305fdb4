"""`release/<env>`: plan against the environment, apply, verify that a re-plan is empty.

Built by one factory per environment. The first environment (test) releases whatever
`schema/state` holds. Every later environment (prod) needs a person's approval as REQUIRED
run config, bound to the commit the previous environment received, and re-checks the
gating checks itself before it touches the database (blocking checks only act in-run).
"""

from typing import Any

import dagster as dg
from pydantic import Field

from schema_pipeline import engine, review
from schema_pipeline.config import HAZARD_NAMES, EnvironmentConfig, ProjectConfig
from schema_pipeline.defs.backends import bytebase_release
from schema_pipeline.defs.common import (
    COMMIT_TAG,
    CONVERGED,
    ENV_TAG,
    KINDS,
    NO_ERROR_FINDINGS,
    REVIEW_KEY,
    changes_table,
    column_schema,
    describe_url,
    hazards_markdown,
    latest_materialization,
    materialization_tag,
    release_key,
    scrub,
    sql_markdown,
    state_at,
    state_base,
    tables_markdown,
    upstream_commit,
)
from schema_pipeline.defs.resources import GitRepoResource, resource_keys
from schema_pipeline.defs.targets import (
    TargetRun,
    env_targets,
    env_urls,
    raise_if_failed,
    run_each,
    targets_table,
)
from schema_pipeline.errors import HazardsNotAllowed, SchemaPipelineError
from schema_pipeline.git import GitError
from schema_pipeline.plan.render import render_sql

_UNCHANGED = ". Nothing was changed."


class ProdApproval(dg.Config):
    """A person's approval to release one tested commit. No defaults: the UI forces the Launchpad."""

    approved_by: str = Field(description="Who approves this release (name or e-mail); recorded in metadata.")
    expected_commit_sha: str = Field(
        description="The commit being approved; it must be the one the previous environment received."
    )
    reason: str = Field(description="Why (change ticket, summary); recorded in metadata.")
    allow_hazards: list[str] = Field(
        default=[],
        description="Hazards the approver accepts for this release on top of the environment's allow_hazards.",
    )


def release_resource_keys(env: EnvironmentConfig) -> set[str]:
    """git plus the environment's databases (native) or the Bytebase connection (bytebase)."""
    return {"git", "bytebase"} if env.backend == "bytebase" else {"git", *resource_keys(env)}


def build_release_asset(cfg: ProjectConfig, env: EnvironmentConfig) -> dg.AssetsDefinition:
    """`release/<env>` with its blocking `converged` check."""
    previous = cfg.previous(env)
    key = release_key(env)
    upstream = release_key(previous) if previous else REVIEW_KEY
    check_spec = dg.AssetCheckSpec(
        CONVERGED,
        asset=key,
        blocking=True,
        description="After the apply, planning again against the environment yields no step.",
    )
    common: dict[str, Any] = dict(
        key=key,
        deps=[upstream],
        group_name="release",
        kinds=KINDS,
        owners=list(cfg.owners),
        tags={"schema/env": env.name},
        pool=f"schema_release_{env.name}",
        required_resource_keys=release_resource_keys(env),
        check_specs=[check_spec],
    )

    if previous is None:

        @dg.asset(
            **common,
            description=(
                f"The desired state released to `{env.name}`: plan against the live database, apply "
                f"(hazards allowed: {', '.join(env.allow_hazards) or 'none'}), verify a re-plan is empty. "
                "Runs automatically for every new schema commit."
            ),
        )
        def release_first(context: dg.AssetExecutionContext):
            git: GitRepoResource = context.resources.git
            sha = upstream_commit(context)
            if env.backend == "bytebase":
                return bytebase_release(context, git, env, sha, None)
            return _release(context, cfg.review_config(), git, env, sha, None)

        return release_first

    @dg.asset(
        **common,
        description=gated_description(cfg, env, previous),
    )
    def release_gated(context: dg.AssetExecutionContext, config: ProdApproval):
        git: GitRepoResource = context.resources.git
        sha, previous_run = _guard_approval(context, git, env, previous, config)
        if env.backend == "bytebase":
            return bytebase_release(context, git, env, sha, config, previous_run)
        return _release(context, cfg.review_config(), git, env, sha, config, previous_run)

    return release_gated


def gated_description(cfg: ProjectConfig, env: EnvironmentConfig, previous: EnvironmentConfig) -> str:
    """What an approver of `release/<env>` needs to know, shown on the asset page."""
    prev = release_key(previous).to_user_string()
    hazards = ", ".join(env.allow_hazards) or "none"
    return (
        f"The tested state released to `{env.name}` after a person's approval.\n\n"
        f"**Before approving**, read the `{env.name}_plan_sql`, `{env.name}_changes` and "
        f"`{env.name}_hazards` entries of the latest `schema/review` materialization: the exact migration "
        f"`{env.name}` would get right now.\n\n"
        f"**To approve**, click *Materialize* (or launch job `release_{env.name}`, which carries the run tag "
        f"`schema/env: {env.name}`) and fill in `approved_by`, `reason` and `expected_commit_sha`: copy the "
        f"`commit` entry of `{prev}`'s latest materialization. Hazards allowed here without approval: "
        f"{hazards}; add others to `allow_hazards` only when you accept them.\n\n"
        f"**Status**: MISSING means `{env.name}` has never been released by the pipeline; STALE means "
        f"`{prev}` has received a newer commit than `{env.name}`: an approval is pending.\n\n"
        f"Before touching the database the run checks that commit, the gating checks "
        f"(`schema/review:no_error_findings`, `{prev}:converged`) and the plan's hazards; it then applies "
        f"and verifies (`converged`)."
    )


def build_release_jobs(cfg: ProjectConfig, drift_checks: list[dg.AssetChecksDefinition]) -> list:
    """`release_<env>` for every later environment: the release alone, with run tag `schema/env: <env>`.

    The run tag is what `dagster.yaml`'s `tag_concurrency_limits` counts (one prod run at a time).
    The asset page's Materialize button runs the implicit asset job instead (no run tag); the
    `schema_release_<env>` pool serialises those releases.
    """
    jobs = []
    for env in cfg.environments[1:]:
        selection = dg.AssetSelection.assets(release_key(env))
        if drift_checks:
            selection = selection - dg.AssetSelection.checks(*drift_checks)
        jobs.append(
            dg.define_asset_job(
                f"release_{env.name}",
                selection=selection,
                description=(
                    f"Release the commit {cfg.previous(env).name} received to {env.name}, with the "
                    f"approval config of `release/{env.name}`; run tag `schema/env: {env.name}`."
                ),
                tags={"schema/pipeline": "release", ENV_TAG: env.name},
            )
        )
    return jobs


def _guard_approval(
    context: dg.AssetExecutionContext,
    git: GitRepoResource,
    env: EnvironmentConfig,
    previous: EnvironmentConfig,
    approval: ProdApproval,
) -> tuple[str, str | None]:
    """Commit binding and gating checks, from the instance only (no database access)."""
    if not approval.approved_by.strip() or not approval.reason.strip():
        raise dg.Failure(
            f"release to {env.name} refused: approved_by and reason must not be empty{_UNCHANGED}"
        )
    unknown = [
        h for h in approval.allow_hazards if h.strip() != "all" and h.strip().upper() not in HAZARD_NAMES
    ]
    if unknown:
        raise dg.Failure(
            f"release to {env.name} refused: unknown hazard {unknown[0]!r} in allow_hazards; "
            f"known: all, {', '.join(HAZARD_NAMES)}{_UNCHANGED}"
        )
    expected = approval.expected_commit_sha.strip()
    if not expected:
        raise dg.Failure(f"release to {env.name} refused: expected_commit_sha is empty{_UNCHANGED}")
    try:
        expected = git.get_client().resolve(expected)
    except GitError as exc:
        raise dg.Failure(f"release to {env.name} refused: {exc}{_UNCHANGED}") from None
    prev_key = release_key(previous)
    prev_event = latest_materialization(context.instance, prev_key)
    tested = materialization_tag(prev_event)
    if tested is None:
        raise dg.Failure(
            f"release to {env.name} refused: {previous.name} has never been released "
            f"(no materialization of {prev_key.to_user_string()}); nothing can be approved until it is{_UNCHANGED}"
        )
    if tested != expected:
        raise dg.Failure(
            f"release to {env.name} refused: the approval is for commit {expected[:12]} but "
            f"{previous.name} last received {tested[:12]}; approve {tested} or release {expected[:12]} "
            f"to {previous.name} first{_UNCHANGED}"
        )
    _check_gate(context, env, dg.AssetCheckKey(REVIEW_KEY, NO_ERROR_FINDINGS), tested, None)
    _check_gate(
        context, env, dg.AssetCheckKey(prev_key, CONVERGED), tested, prev_event.run_id if prev_event else None
    )
    context.log.info(
        f"approval by {approval.approved_by} for {expected[:12]} passed the commit and check guards"
    )
    return expected, prev_event.run_id if prev_event else None


def _check_gate(
    context: dg.AssetExecutionContext,
    env: EnvironmentConfig,
    check_key: dg.AssetCheckKey,
    tested: str,
    run_id: str | None,
) -> None:
    """The latest evaluation of a gating check that concerns `tested` must exist and have passed.

    Evaluations recorded for another commit (reviews of other branches) are skipped; manual
    reports without a commit count (fail closed). With `run_id`, it must come from that run.
    """
    name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
    records = context.instance.event_log_storage.get_asset_check_execution_history(check_key, limit=200)
    rec = evaluation = None
    for candidate in records:
        ev = candidate.event.asset_check_evaluation if candidate.event else None
        if ev is None:
            continue
        commit = ev.metadata.get("commit")
        commit = getattr(commit, "value", commit)
        if commit and commit != tested:
            continue
        rec, evaluation = candidate, ev
        break
    if evaluation is None:
        raise dg.Failure(
            f"release to {env.name} refused: gating check {name} has never been evaluated for "
            f"{tested[:12]}{_UNCHANGED}"
        )
    if not evaluation.passed:
        raise dg.Failure(
            f"release to {env.name} refused: the latest evaluation of gating check {name} failed "
            f"(run {rec.run_id or 'reported manually'}){_UNCHANGED}"
        )
    if run_id and rec.run_id and rec.run_id != run_id:
        raise dg.Failure(
            f"release to {env.name} refused: the latest {name} evaluation (run {rec.run_id}) is not "
            f"from the run that released {tested[:12]} to the previous environment (run {run_id}){_UNCHANGED}"
        )


def _guard_hazards(
    env: EnvironmentConfig, url: str, state: Any, plan_db_url: str | None, allowed: set[str] | str
) -> Any:
    """Plan (read-only) and refuse hazards that neither the config nor the approval allows."""
    where = describe_url(url)
    try:
        planned = engine.plan(url, state, scope=env.scope(), plan_db_url=plan_db_url)
    except SchemaPipelineError as exc:
        raise dg.Failure(scrub(f"planning {env.name} ({where}) failed: {exc}", url, plan_db_url)) from None
    hazards = set(planned.plan.hazard_types())
    refused = [] if allowed == "all" else sorted(hazards - set(allowed))
    if refused:
        raise dg.Failure(
            f"release to {env.name} refused: the plan has hazards not allowed here: {', '.join(refused)}. "
            f"Add them to environments.{env.name}.allow_hazards in the project configuration "
            f"or to the approval's allow_hazards{_UNCHANGED}",
            metadata={"plan_sql": dg.MetadataValue.md(sql_markdown(render_sql(planned.plan)))},
        )
    return planned


def _apply_one(
    env: EnvironmentConfig,
    url: str,
    state: Any,
    allowed: set[str] | str,
    planned: Any,
    plan_db_url: str | None,
    release_info: dict[str, Any],
    progress: Any,
) -> Any:
    """Apply to one database (exactly the checked plan when there is one); a dg.Failure on error."""
    try:
        if planned is not None:  # apply exactly the plan whose hazards were checked (refused if outdated)
            return engine.apply_plan(
                url,
                planned.plan,
                desired=planned.desired,
                state=state,
                allow_hazards=allowed,
                scope=env.scope(),
                plan_db_url=plan_db_url,
                progress=progress,
                release_info=release_info,
            )
        return engine.apply(
            url,
            state,
            allow_hazards=allowed,
            scope=env.scope(),
            plan_db_url=plan_db_url,
            progress=progress,
            release_info=release_info,
        )
    except HazardsNotAllowed as exc:
        raise dg.Failure(
            f"release to {env.name} refused: {str(exc).split(' (')[0]}; allow them in "
            f"environments.{env.name}.allow_hazards of the project configuration{_UNCHANGED}"
        ) from None
    except SchemaPipelineError as exc:
        raise dg.Failure(
            scrub(f"applying to {env.name} ({describe_url(url)}) failed: {exc}", url, plan_db_url)
        ) from None


def release_info_for(
    context: dg.AssetExecutionContext, env: EnvironmentConfig, sha: str, approval: ProdApproval | None
) -> dict[str, Any]:
    """What the target's `schema_pipeline.releases` bookkeeping row records about this release."""
    return {
        "commit": sha,
        "approved_by": approval.approved_by if approval else None,
        "reason": approval.reason if approval else "automatic release of a new schema commit",
        "environment": env.name,
        "run_id": context.run.run_id,
    }


def _release(
    context: dg.AssetExecutionContext,
    rules: Any,
    git: GitRepoResource,
    env: EnvironmentConfig,
    sha: str,
    approval: ProdApproval | None,
    approval_run: str | None = None,
) -> dg.MaterializeResult:
    targets = env_targets(context.resources, env)
    urls = env_urls(context.resources, env)
    plan_db = targets[0].plan_database_url
    multi = len(urls) > 1
    extra = tuple(
        h.strip().upper() if h.strip() != "all" else "all"
        for h in (approval.allow_hazards if approval else [])
    )
    allowed = env.hazards_allowed(extra)
    info = release_info_for(context, env, sha, approval)
    client = git.get_client()
    with state_at(client, git.state_path, sha) as state:
        planned: dict[str, Any] = {}
        if approval is not None:  # every database is planned and checked before any is changed
            checks = run_each(
                urls,
                lambda u: (_guard_hazards(env, u, state, plan_db, allowed), 0),
                env.max_parallel,
                secrets=(plan_db,),
            )
            if not multi and checks[0].exc is not None:
                raise checks[0].exc
            raise_if_failed(checks, f"release to {env.name} refused (nothing was changed): planning")
            planned = {r.url: r.value for r in checks}
        first = urls[0]
        try:
            desired = (
                planned[first].desired
                if planned
                else engine.desired_catalog(state, first, scope=env.scope(), plan_db_url=plan_db)
            )
        except SchemaPipelineError as exc:
            raise dg.Failure(
                scrub(f"loading the desired state for {env.name} failed: {exc}", first, plan_db)
            ) from None

        def apply(url: str) -> tuple[Any, int]:
            def progress(msg: str) -> None:
                context.log.info(scrub(str(msg), url, plan_db))

            result = _apply_one(env, url, state, allowed, planned.get(url), plan_db, info, progress)
            context.log.info(
                f"{env.name} ({describe_url(url)}): applied {result.applied_steps} step(s) for {sha[:12]}"
                + (f", release #{result.release_id}" if result.release_id is not None else "")
            )
            return result, int(result.applied_steps)

        runs = run_each(urls, apply, env.max_parallel, secrets=(plan_db,))
        if not multi and runs[0].exc is not None:
            raise runs[0].exc
        done = [r for r in runs if r.ok]
        shown = done[0].value if done else None
        findings = (
            list(review.review_plan(shown.plan.steps, env.name, state=state, config=rules)) if shown else []
        )
    if multi:
        raise_if_failed(
            runs,
            f"release of {sha[:12]} to {env.name}",
            {"commit": dg.MetadataValue.text(sha), "environment": env.name},
        )
    return _release_result(git, env, sha, approval, approval_run, runs, desired, findings)


def approval_metadata(sha: str, approval: Any, approval_run: str | None) -> dict[str, Any]:
    """Who approved which commit and why, first in the metadata; a link to the tested run."""
    if approval is None:
        return {}
    md: dict[str, Any] = {
        "approved_by": dg.MetadataValue.text(approval.approved_by),
        "approval_reason": dg.MetadataValue.text(approval.reason),
        "approved_commit": dg.MetadataValue.text(sha),
    }
    if approval_run:
        md["previous_release_run"] = dg.MetadataValue.dagster_run(approval_run)
    else:
        md["previous_release_run"] = dg.MetadataValue.text("(released without a run: reported manually)")
    return md


def _release_result(
    git: GitRepoResource,
    env: EnvironmentConfig,
    sha: str,
    approval: ProdApproval | None,
    approval_run: str | None,
    runs: list[TargetRun],
    desired: Any,
    findings: list,
) -> dg.MaterializeResult:
    """Materialization metadata (per-database table when there are several) and the converged check."""
    result = runs[0].value
    results = [r.value for r in runs]
    applied_sql = render_sql(result.plan)
    metadata: dict[str, Any] = {
        **approval_metadata(sha, approval, approval_run),
        "commit": dg.MetadataValue.text(sha),
        "environment": env.name,
        "database": ", ".join(r.database for r in runs),
        "steps_applied": sum(int(x.applied_steps) for x in results),
        "plan_sql": dg.MetadataValue.md(sql_markdown(applied_sql)),
        "changes": changes_table(result.plan),
        "hazards": ", ".join(sorted(set().union(*(x.plan.hazard_types() for x in results)))) or "none",
        "hazard_details": dg.MetadataValue.md(hazards_markdown(result.plan)),
        "review": dg.MetadataValue.md(
            review.render(findings, "markdown", path_prefix=state_base(git.state_path))
        ),
        "duration_s": float(round(max(x.duration_s for x in results), 3)),
        "tables": dg.MetadataValue.md(tables_markdown(desired)),
    }
    ids = {r.database: r.value.release_id for r in runs if r.value.release_id is not None}
    if len(runs) == 1:
        if result.release_id is not None:
            metadata["release_id"] = int(result.release_id)
    else:
        metadata["databases"] = targets_table(runs)
        if ids:
            metadata["release_ids"] = dg.MetadataValue.json(ids)
    schema = column_schema(desired)
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    remaining = [f"-- {r.database}\n{r.value.remaining}" for r in runs if getattr(r.value, "remaining", None)]
    converged = all(bool(x.converged) for x in results)
    check = dg.AssetCheckResult(
        check_name=CONVERGED,
        passed=converged,
        severity=dg.AssetCheckSeverity.ERROR,
        description="re-plan is empty" if converged else "steps remain after the apply",
        metadata={
            "commit": dg.MetadataValue.text(sha),
            "remaining": dg.MetadataValue.md(
                "```\n" + "\n".join(remaining) + "\n```" if remaining else "_none_"
            ),
        },
    )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[check],
        data_version=dg.DataVersion(sha),
        tags={COMMIT_TAG: sha, ENV_TAG: env.name},
    )
