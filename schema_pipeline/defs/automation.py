"""The git-polling sensor and the job it launches (`schema/state` -> `schema/review` -> first release).

An idle tick asks git for the branch head and nothing else. The cursor is the last head
seen; the run key is the commit released, so a commit is never released twice by the sensor.
"""

import dagster as dg

from schema_pipeline.config import ProjectConfig
from schema_pipeline.defs.common import COMMIT_TAG, REVIEW_KEY, STATE_KEY, release_key
from schema_pipeline.defs.resources import GitRepoResource
from schema_pipeline.git import GitError, GitRepo

SENSOR_NAME = "schema_commit_sensor"
SENSOR_INTERVAL_S = 30  # default of git.poll_interval_seconds


def first_job_name(cfg: ProjectConfig) -> str:
    return f"schema_to_{cfg.environments[0].name}"


def build_first_release_job(cfg: ProjectConfig, drift_checks: list[dg.AssetChecksDefinition]):
    """`schema_to_test`: state, review and the first environment's release with their gating checks."""
    first = cfg.environments[0]
    selection = dg.AssetSelection.assets(STATE_KEY, REVIEW_KEY, release_key(first))
    if drift_checks:
        selection = selection - dg.AssetSelection.checks(*drift_checks)
    return dg.define_asset_job(
        first_job_name(cfg),
        selection=selection,
        description=f"Load and review the desired state at one commit and release it to {first.name}.",
        tags={"schema/pipeline": "release", "schema/env": first.name},
    )


def build_schema_commit_sensor(cfg: ProjectConfig, job) -> dg.SensorDefinition:
    """Launch the first-release job for the newest commit that touches the state."""

    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=cfg.git.poll_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Polls the head of `{cfg.git.branch}` every {cfg.git.poll_interval_seconds} s "
            "(git.poll_interval_seconds); "
            f"when new commits touch `{cfg.state}`, releases the "
            f"newest one to {cfg.environments[0].name}. Cursor: last head seen. Run key: the commit."
        ),
    )
    def schema_commit_sensor(context: dg.SensorEvaluationContext, git: GitRepoResource):
        last = (context.cursor or "").strip() or None
        try:
            client = GitRepo(git.repo, branch=git.branch, timeout_s=git.timeout_s)
            head = client.head_sha()
        except GitError as exc:
            return dg.SkipReason(f"cannot read the head of {git.branch}: {exc}")
        if head == last:
            return dg.SkipReason(f"no new commit on {git.branch} (head {head[:12]})")
        try:
            commits = client.schema_commits_since(last, git.branch, git.state_path)
        except GitError as exc:
            return dg.SkipReason(f"cannot read the history of {git.branch}: {exc}")
        if not commits:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    f"new head {head[:12]} does not change {git.state_path} since {(last or '')[:12] or 'start'}"
                ),
                cursor=head,
            )
        sha = commits[-1]
        context.log.info(
            f"releasing {sha[:12]} ({len(commits)} new schema commit(s); state-based: newest wins)"
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=sha,
                    run_config=dg.RunConfig(ops={"schema__state": {"config": {"commit_sha": sha}}}),
                    tags={COMMIT_TAG: sha, "schema/skipped_commits": str(len(commits) - 1)},
                )
            ],
            cursor=head,
        )

    return schema_commit_sensor
