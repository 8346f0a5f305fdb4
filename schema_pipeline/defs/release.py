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
from schema_pipeline.defs.common import (
    COMMIT_TAG,
    CONVERGED,
    ENV_TAG,
    KINDS,
    NO_ERROR_FINDINGS,
    REVIEW_KEY,
    changes_table,
    column_schema,
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
from schema_pipeline.defs.resources import GitRepoResource, PostgresTarget, resource_key
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


def build_release_asset(cfg: ProjectConfig, env: EnvironmentConfig) -> dg.AssetsDefinition:
    """`release/<env>` with its blocking `converged` check."""
    previous = cfg.previous(env)
    key = release_key(env)
    db_key = resource_key(env)
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
        required_resource_keys={db_key, "git"},
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
            return _release(
                context, cfg.review_config(), git, getattr(context.resources, db_key), env, sha, None
            )

        return release_first

    @dg.asset(
        **common,
        description=(
            f"The tested state released to `{env.name}` after approval. Launch it with the approver's "
            f"name, the commit `{previous.name}` received and a reason. Before touching the database it "
            f"checks that commit, the gating checks and the plan's hazards; it then applies and verifies."
        ),
    )
    def release_gated(context: dg.AssetExecutionContext, config: ProdApproval):
        git: GitRepoResource = context.resources.git
        target: PostgresTarget = getattr(context.resources, db_key)
        sha, previous_run = _guard_approval(context, git, env, previous, config)
        return _release(context, cfg.review_config(), git, target, env, sha, config, previous_run)

    return release_gated


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
    gates = [
        (dg.AssetCheckKey(REVIEW_KEY, NO_ERROR_FINDINGS), None),
        (dg.AssetCheckKey(prev_key, CONVERGED), prev_event.run_id if prev_event else None),
    ]
    for check_key, run_id in gates:
        rec = context.instance.get_latest_asset_check_evaluation_record(check_key)
        evaluation = rec.event.asset_check_evaluation if rec and rec.event else None
        name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        if evaluation is None:
            raise dg.Failure(
                f"release to {env.name} refused: gating check {name} has never been evaluated{_UNCHANGED}"
            )
        if not evaluation.passed:
            raise dg.Failure(
                f"release to {env.name} refused: the latest evaluation of gating check {name} failed "
                f"(run {rec.run_id or 'reported manually'}){_UNCHANGED}"
            )
        if run_id and rec.run_id and rec.run_id != run_id:
            raise dg.Failure(
                f"release to {env.name} refused: the latest {name} evaluation (run {rec.run_id}) is not "
                f"from the run that released {tested[:12]} to {previous.name} (run {run_id}){_UNCHANGED}"
            )
    context.log.info(
        f"approval by {approval.approved_by} for {expected[:12]} passed the commit and check guards"
    )
    return expected, prev_event.run_id if prev_event else None


def _guard_hazards(env: EnvironmentConfig, url: str, state: Any, target: PostgresTarget, allowed) -> Any:
    """Plan (read-only) and refuse hazards that neither the config nor the approval allows."""
    try:
        planned = engine.plan(url, state, scope=env.scope(), plan_db_url=target.plan_database_url)
    except SchemaPipelineError as exc:
        raise dg.Failure(scrub(f"planning {env.name} ({target.display()}) failed: {exc}", url)) from None
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


def _release(
    context: dg.AssetExecutionContext,
    rules: Any,
    git: GitRepoResource,
    target: PostgresTarget,
    env: EnvironmentConfig,
    sha: str,
    approval: ProdApproval | None,
    approval_run: str | None = None,
) -> dg.MaterializeResult:
    url = target.url()
    where = target.display()
    extra = tuple(
        h.strip().upper() if h.strip() != "all" else "all"
        for h in (approval.allow_hazards if approval else [])
    )
    allowed = env.hazards_allowed(extra)
    client = git.get_client()
    with state_at(client, git.state_path, sha) as state:
        planned = _guard_hazards(env, url, state, target, allowed) if approval is not None else None
        try:
            desired = (
                planned.desired
                if planned is not None
                else engine.desired_catalog(
                    state, url, scope=env.scope(), plan_db_url=target.plan_database_url
                )
            )
        except SchemaPipelineError as exc:
            raise dg.Failure(scrub(f"loading the desired state for {env.name} failed: {exc}", url)) from None

        def progress(msg: str) -> None:
            context.log.info(scrub(str(msg), url))

        try:
            if planned is not None:  # apply exactly the plan whose hazards were checked (refused if outdated)
                result = engine.apply_plan(
                    url,
                    planned.plan,
                    desired=planned.desired,
                    state=state,
                    allow_hazards=allowed,
                    scope=env.scope(),
                    plan_db_url=target.plan_database_url,
                    progress=progress,
                )
            else:
                result = engine.apply(
                    url,
                    state,
                    allow_hazards=allowed,
                    scope=env.scope(),
                    plan_db_url=target.plan_database_url,
                    progress=progress,
                )
        except HazardsNotAllowed as exc:
            raise dg.Failure(
                f"release to {env.name} refused: {str(exc).split(' (')[0]}; allow them in "
                f"environments.{env.name}.allow_hazards of the project configuration{_UNCHANGED}"
            ) from None
        except SchemaPipelineError as exc:
            raise dg.Failure(scrub(f"applying to {env.name} ({where}) failed: {exc}", url)) from None
        context.log.info(f"{env.name} ({where}): applied {result.applied_steps} step(s) for {sha[:12]}")
        findings = list(review.review_plan(result.plan.steps, env.name, state=state, config=rules))
    applied_sql = render_sql(result.plan)
    metadata: dict[str, Any] = {
        "commit": dg.MetadataValue.text(sha),
        "environment": env.name,
        "database": where,
        "steps_applied": int(result.applied_steps),
        "plan_sql": dg.MetadataValue.md(sql_markdown(applied_sql)),
        "changes": changes_table(result.plan),
        "hazards": ", ".join(sorted(result.plan.hazard_types())) or "none",
        "review": dg.MetadataValue.md(
            review.render(findings, "markdown", path_prefix=state_base(git.state_path))
        ),
        "duration_s": float(round(result.duration_s, 3)),
        "tables": dg.MetadataValue.md(tables_markdown(desired)),
    }
    schema = column_schema(desired)
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    if approval is not None:
        metadata.update(
            approved_by=approval.approved_by,
            approval_reason=approval.reason,
            approved_commit=dg.MetadataValue.text(sha),
            previous_release_run=approval_run or "",
        )
    check = dg.AssetCheckResult(
        check_name=CONVERGED,
        passed=bool(result.converged),
        severity=dg.AssetCheckSeverity.ERROR,
        description="re-plan is empty" if result.converged else "steps remain after the apply",
        metadata={
            "commit": dg.MetadataValue.text(sha),
            "remaining": dg.MetadataValue.md(
                f"```\n{result.remaining}\n```" if getattr(result, "remaining", None) else "_none_"
            ),
        },
    )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[check],
        data_version=dg.DataVersion(sha),
        tags={COMMIT_TAG: sha, ENV_TAG: env.name},
    )
