"""`correct_drift_<env>`: re-apply the state last released to an environment, with an approval.

When `release/<env>:no_drift` fails, someone changed the database by hand. Either commit the
change (it then goes through test and approval like any other), or run this job: it restores
the state at the commit `release/<env>` last received, gated like a prod release:

- REQUIRED run config under `ops: restore_<env>: config:` (the Launchpad always opens): `approved_by`, `reason`, and
  `expected_drift` = the `drift_fingerprint` of the latest failed `no_drift` check (the approval
  then covers exactly that correction; if the database changed again since, the run refuses),
  or the released commit (`released_commit`: whatever differs from it now is corrected);
- every hazard of the correction (dropping a column added by hand is DELETES_DATA) must be
  listed in the approval's `allow_hazards` (or `all`); the environment's own `allow_hazards`
  do not count here, because a correction undoes changes nobody reviewed;
- the plan that was checked is the plan applied (`engine.apply_plan` refuses it when the
  database changed in between), and the release is recorded in `schema_pipeline.releases`.

Afterwards the job records an observation on `release/<env>` (who corrected what and why) and a
fresh `no_drift` evaluation, so the asset's check turns green without waiting for the schedule.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from schema_pipeline import engine
from schema_pipeline.config import HAZARD_NAMES, EnvironmentConfig, ProjectConfig
from schema_pipeline.defs.common import (
    COMMIT_TAG,
    ENV_TAG,
    NO_DRIFT,
    change_lines,
    changes_table,
    describe_url,
    hazards_markdown,
    latest_materialization,
    materialization_tag,
    release_key,
    scrub,
    sql_markdown,
    state_at,
)
from schema_pipeline.defs.drift import drift_fingerprint
from schema_pipeline.defs.resources import GitRepoResource, resource_keys
from schema_pipeline.defs.targets import env_targets, env_urls, raise_if_failed, run_each, targets_table
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.git import GitError
from schema_pipeline.plan.render import render_sql

_UNCHANGED = ". Nothing was changed."


def correction_job_name(env: EnvironmentConfig | str) -> str:
    return f"correct_drift_{env if isinstance(env, str) else env.name}"


def correction_op_name(env: EnvironmentConfig | str) -> str:
    """The op of `correct_drift_<env>`; its run config goes under `ops: restore_<env>: config:`."""
    return f"restore_{env if isinstance(env, str) else env.name}"


class DriftCorrectionApproval(dg.Config):
    """A person's approval to restore the released state. No defaults: the UI forces the Launchpad."""

    approved_by: str = Field(description="Who approves the correction (name or e-mail); recorded.")
    reason: str = Field(description="Why (incident, ticket); recorded.")
    expected_drift: str = Field(
        description=(
            "`drift_fingerprint` of the latest failed no_drift check (approves exactly that correction), "
            "or the commit the environment last received (`released_commit`)."
        )
    )
    allow_hazards: list[str] = Field(
        default=[],
        description="Hazards of the correction the approver accepts (e.g. DELETES_DATA), or [all].",
    )


def build_correction_jobs(cfg: ProjectConfig) -> list[dg.JobDefinition]:
    """One `correct_drift_<env>` job per natively released environment."""
    return [build_correction_job(env) for env in cfg.backend_envs("native")]


def build_correction_job(env: EnvironmentConfig) -> dg.JobDefinition:
    key = release_key(env)

    @dg.op(
        name=correction_op_name(env),
        required_resource_keys={"git", *resource_keys(env)},
        pool=f"schema_release_{env.name}",
        description=f"Restore the state last released to {env.name} (approval required).",
    )
    def correct_drift(context: dg.OpExecutionContext, config: DriftCorrectionApproval) -> None:
        _correct(context, env, key, config)

    @dg.job(
        name=correction_job_name(env),
        description=(
            f"Re-apply the state last released to `{env.name}` (undo hand-made changes that "
            f"`release/{env.name}:no_drift` found). Requires approved_by, reason and expected_drift "
            "(the check's `drift_fingerprint`, or its `released_commit`); every hazard of the correction "
            "must be accepted in allow_hazards. Refuses, changing nothing, when anything does not match."
        ),
        tags={"schema/pipeline": "correction", ENV_TAG: env.name},
    )
    def correction_job() -> None:
        correct_drift()

    return correction_job


def _refuse(env: EnvironmentConfig, message: str, **metadata: Any) -> dg.Failure:
    return dg.Failure(f"drift correction of {env.name} refused: {message}{_UNCHANGED}", metadata=metadata)


def _correct(
    context: dg.OpExecutionContext,
    env: EnvironmentConfig,
    key: dg.AssetKey,
    approval: DriftCorrectionApproval,
) -> None:
    if not approval.approved_by.strip() or not approval.reason.strip():
        raise _refuse(env, "approved_by and reason must not be empty")
    accepted = {h.strip().upper() for h in approval.allow_hazards if h.strip()}
    unknown = sorted(h for h in accepted if h != "ALL" and h not in HAZARD_NAMES)
    if unknown:
        raise _refuse(
            env, f"unknown hazard {unknown[0]!r} in allow_hazards; known: all, {', '.join(HAZARD_NAMES)}"
        )
    expected = approval.expected_drift.strip()
    if not expected:
        raise _refuse(env, "expected_drift is empty")
    sha = materialization_tag(latest_materialization(context.instance, key))
    if not sha:
        raise _refuse(env, f"{key.to_user_string()} has never been released; there is no state to restore")

    git: GitRepoResource = context.resources.git
    client = git.get_client()
    urls = env_urls(context.resources, env)
    plan_db = env_targets(context.resources, env)[0].plan_database_url
    multi = len(urls) > 1
    with state_at(client, git.state_path, sha) as state:

        def plan_one(url: str) -> tuple[Any, int]:
            try:
                result = engine.drift(url, state, scope=env.scope(), plan_db_url=plan_db)
            except SchemaPipelineError as exc:
                raise dg.Failure(
                    scrub(f"planning the correction of {describe_url(url)} failed: {exc}", url, plan_db)
                ) from None
            return result, len(result.plan.steps)

        checks = run_each(urls, plan_one, env.max_parallel, secrets=(plan_db,))
        if not multi and checks[0].exc is not None:
            raise checks[0].exc
        raise_if_failed(checks, f"drift correction of {env.name} refused (nothing was changed): planning")
        drifted = [r for r in checks if not r.value.plan.is_empty]
        if not drifted:
            context.log.info(f"{env.name} matches commit {sha[:12]}: nothing to correct")
            _record_check(context, key, sha, passed=True, note="no drift: nothing was corrected")
            return
        plans = [r.value.plan for r in drifted]
        fingerprint = drift_fingerprint(plans, [r.database for r in drifted] if multi else None)
        correction_sql = "\n\n".join(
            (f"-- {r.database}\n" if multi else "") + render_sql(r.value.plan).strip() for r in drifted
        )
        shown = {"correction_sql": dg.MetadataValue.md(sql_markdown(correction_sql))}
        if expected != fingerprint and not _is_commit(client, expected, sha):
            raise _refuse(
                env,
                f"the approval is for {expected!r}, but the drift now has fingerprint {fingerprint} "
                f"(released commit {sha[:12]}); review the correction below and approve {fingerprint}",
                drift_fingerprint=fingerprint,
                **shown,
            )
        hazards = sorted(set().union(*(p.hazard_types() for p in plans)))
        refused = [] if "ALL" in accepted else [h for h in hazards if h not in accepted]
        if refused:
            raise _refuse(
                env,
                f"the correction has hazards the approval does not accept: {', '.join(refused)}; "
                "add them to allow_hazards if you accept them",
                hazards=dg.MetadataValue.md("\n\n".join(hazards_markdown(p) for p in plans)),
                **shown,
            )
        info = {
            "commit": sha,
            "approved_by": approval.approved_by,
            "reason": f"drift correction: {approval.reason}",
            "environment": env.name,
            "run_id": context.run.run_id,
            "kind": "drift correction",
        }

        def apply(url: str) -> tuple[Any, int]:
            planned = next(r.value for r in drifted if r.url == url)
            try:
                result = engine.apply_plan(
                    url,
                    planned.plan,
                    desired=planned.desired,
                    state=state,
                    allow_hazards="all",  # exactly the hazards checked above
                    scope=env.scope(),
                    plan_db_url=plan_db,
                    progress=lambda msg: context.log.info(scrub(str(msg), url, plan_db)),
                    release_info=info,
                )
            except SchemaPipelineError as exc:
                raise dg.Failure(
                    scrub(f"correcting {describe_url(url)} failed: {exc}", url, plan_db)
                ) from None
            context.log.info(
                f"{env.name} ({describe_url(url)}): corrected with {result.applied_steps} step(s)"
            )
            return result, int(result.applied_steps)

        runs = run_each([r.url for r in drifted], apply, env.max_parallel, secrets=(plan_db,))
        if not multi and runs[0].exc is not None:
            raise runs[0].exc
        raise_if_failed(runs, f"drift correction of {env.name}", {"commit": dg.MetadataValue.text(sha)})

    converged = all(bool(r.value.converged) for r in runs)
    metadata: dict[str, Any] = {
        "approved_by": dg.MetadataValue.text(approval.approved_by),
        "approval_reason": dg.MetadataValue.text(approval.reason),
        "restored_commit": dg.MetadataValue.text(sha),
        "drift_fingerprint": dg.MetadataValue.text(fingerprint),
        "corrected": dg.MetadataValue.text("; ".join(line for p in plans for line in change_lines(p))),
        **shown,
        "changes": changes_table(plans[0]),
        "hazards": ", ".join(hazards) or "none",
        "steps_applied": sum(int(r.steps) for r in runs),
        "converged": converged,
    }
    if multi:
        metadata["databases"] = targets_table(runs)
    context.log_event(
        dg.AssetObservation(
            asset_key=key,
            description=f"drift corrected: {env.name} restored to {sha[:12]} by {approval.approved_by}",
            metadata=metadata,
            tags={COMMIT_TAG: sha, ENV_TAG: env.name},
        )
    )
    _record_check(
        context,
        key,
        sha,
        passed=converged,
        note=f"restored by {correction_job_name(env)} (approved by {approval.approved_by})"
        if converged
        else "steps remain after the correction",
    )
    if not converged:
        raise dg.Failure(f"the correction of {env.name} left differences; run the drift check for details")


def _is_commit(client: Any, expected: str, sha: str) -> bool:
    """True when `expected` names the released commit (full or abbreviated SHA, or a ref)."""
    try:
        return client.resolve(expected) == sha
    except GitError:
        return False


def _record_check(
    context: dg.OpExecutionContext, key: dg.AssetKey, sha: str, passed: bool, note: str
) -> None:
    """A `no_drift` evaluation right after the correction (the schedule will confirm it)."""
    context.log_event(
        dg.AssetCheckEvaluation(
            asset_key=key,
            check_name=NO_DRIFT,
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=note,
            metadata={"released_commit": dg.MetadataValue.text(sha), "correction_run": context.run.run_id},
        )
    )
