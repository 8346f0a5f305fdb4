"""Reviews of open branches before merge: a sensor, a review-only job and GitHub reporting.

`schema_branch_review_sensor` lists the heads of the branches matching `git.review_branches`
(`git for-each-ref` locally, `git ls-remote --heads` for a remote; never a fetch on an idle tick)
and launches the `schema_review` job (`schema/state` + `schema/review` only: nothing is released)
for every head it has not seen. Cursor: JSON of branch -> head. Run key: `review:<branch>:<sha>`.
With `review.github` configured, the review posts a commit status and one sticky PR comment.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from typing import Any

import dagster as dg

from schema_pipeline.config import ProjectConfig
from schema_pipeline.defs.common import BRANCH_TAG, COMMIT_TAG, REVIEW_KEY, STATE_KEY
from schema_pipeline.defs.resources import GitHubResource, GitRepoResource
from schema_pipeline.git import GitError, GitRepo
from schema_pipeline.review.github import DEFAULT_API_URL, GitHubError, GitHubReporter, commit_status_for

__all__ = ["BRANCH_TAG", "build_branch_review_sensor", "build_review_job", "parse_cursor", "report_to_github"]

REVIEW_JOB = "schema_review"
BRANCH_SENSOR = "schema_branch_review_sensor"
SENSOR_INTERVAL_S = 30  # default of git.poll_interval_seconds
_SHA = re.compile(r"^[0-9a-f]{40}$")


def build_review_job(cfg: ProjectConfig):
    """`schema_review`: load and review one commit; no release asset is selected."""
    return dg.define_asset_job(
        REVIEW_JOB,
        selection=dg.AssetSelection.assets(STATE_KEY, REVIEW_KEY),
        description="Review the desired state at one commit (e.g. a pull request's head) without releasing it.",
        tags={"schema/pipeline": "review"},
    )


def parse_cursor(text: str | None) -> dict[str, str]:
    """The branch -> head map of the cursor; anything malformed counts as an empty map."""
    try:
        data = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(b): s for b, s in data.items() if isinstance(s, str) and _SHA.match(s)}


def selected_heads(heads: dict[str, str], main: str, patterns: tuple[str, ...]) -> dict[str, str]:
    """Branches matching a pattern, except the main branch and branches sitting at the main head."""
    main_head = heads.get(main)
    return {
        b: sha
        for b, sha in heads.items()
        if b != main and sha != main_head and any(fnmatchcase(b, p) for p in patterns)
    }


def build_branch_review_sensor(cfg: ProjectConfig, job) -> dg.SensorDefinition:
    """One review-only run per new head of a matching branch."""
    patterns = tuple(cfg.git.review_branches)

    @dg.sensor(
        name=BRANCH_SENSOR,
        job=job,
        minimum_interval_seconds=cfg.git.poll_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Polls the heads of branches matching {', '.join(patterns) or '(none)'} (not `{cfg.git.branch}`) "
            "and reviews each new head without releasing it. Cursor: branch -> head (JSON). "
            "Run key: review:<branch>:<sha>."
        ),
    )
    def schema_branch_review_sensor(context: dg.SensorEvaluationContext, git: GitRepoResource):
        if not patterns:
            return dg.SkipReason("git.review_branches is empty: branch reviews are off")
        seen = parse_cursor(context.cursor)
        try:
            heads = GitRepo(git.repo, branch=git.branch, timeout_s=git.timeout_s).branch_heads()
        except GitError as exc:
            return dg.SkipReason(f"cannot list the branches: {exc}")
        selected = selected_heads(heads, git.branch, patterns)
        cursor = json.dumps(selected, sort_keys=True)
        new = {b: sha for b, sha in sorted(selected.items()) if seen.get(b) != sha}
        if not new:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no new branch head ({len(selected)} branch(es) watched)"),
                cursor=cursor,
            )
        context.log.info("reviewing " + ", ".join(f"{b}@{sha[:12]}" for b, sha in new.items()))
        requests = [
            dg.RunRequest(
                run_key=f"review:{branch}:{sha}",
                run_config=dg.RunConfig(ops={"schema__state": {"config": {"commit_sha": sha}}}),
                tags={BRANCH_TAG: branch, COMMIT_TAG: sha, "schema/pipeline": "review"},
            )
            for branch, sha in new.items()
        ]
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return schema_branch_review_sensor


def report_to_github(
    context: dg.AssetExecutionContext,
    gh: GitHubResource,
    sha: str,
    branch: str | None,
    counts: dict[str, int],
    report: str,
) -> dict[str, Any]:
    """Commit status for `sha`; for a branch with an open PR, the sticky comment. Never fails the review."""
    if not gh.configured:
        return {"github": f"not reported: set {gh.token_env} and GITHUB_REPOSITORY (or review.github.repo)"}
    errors, warnings, infos = (counts.get(k, 0) for k in ("ERROR", "WARNING", "INFO"))
    out: dict[str, Any] = {}
    try:
        with GitHubReporter(str(gh.token), str(gh.repo), gh.api_url or DEFAULT_API_URL) as reporter:
            state, description = commit_status_for(errors, warnings, infos)
            reporter.set_commit_status(sha, state, description, context=gh.context)
            out["github_status"] = f"{state}: {description}"
            if branch:
                number = reporter.open_pull_request_for(branch)
                if number is None:
                    out["pull_request"] = f"no open pull request for {branch}"
                else:
                    body = f"## Schema review of `{sha[:12]}` ({branch})\n\n{report}"
                    result = reporter.upsert_sticky_comment(number, body)
                    out["pull_request"] = number
                    out["github_comment"] = f"{result.action}: {result.html_url}"
    except GitHubError as exc:
        context.log.warning(f"GitHub reporting failed: {exc}")
        out["github"] = f"reporting failed: {exc}"
    return out
