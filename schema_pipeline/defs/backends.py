"""Environments with `backend: bytebase`: release, drift and review through Bytebase's API.

The assets keep their shape (same keys, checks, approval guards); only the work is done
by `schema_pipeline.backends.bytebase`. Secrets come from `BytebaseResource` (dg.EnvVar) and
every message is scrubbed before it reaches logs or metadata. Terminating the Dagster run
raises an interrupt in the step: the backend cancels Bytebase's running task runs, and the
`cancel_event` we pass is set as well.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from schema_pipeline.backends.base import DriftOutcome, ReleaseOutcome, StateFiles
from schema_pipeline.backends.bytebase import BytebaseBackend, BytebaseConfigError, BytebaseSettings
from schema_pipeline.config import EnvironmentConfig
from schema_pipeline.db import redact
from schema_pipeline.defs.common import COMMIT_TAG, CONVERGED, ENV_TAG, sql_markdown
from schema_pipeline.defs.resources import BytebaseResource, GitRepoResource
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.git import GitError, GitRepo
from schema_pipeline.review.finding import Finding


def bytebase_settings(resource: BytebaseResource) -> BytebaseSettings:
    """Settings from the resource's EnvVar-bound values; a clear dg.Failure when some are missing."""
    try:
        return BytebaseSettings.from_env(environ=resource.environ())
    except BytebaseConfigError as exc:
        raise dg.Failure(f"bytebase backend: {exc} (set them where the code location runs)") from None


class Scrubber:
    """Removes Bytebase secrets from text bound for logs and metadata."""

    def __init__(self, settings: BytebaseSettings):
        self.secrets = settings.secrets()

    def __call__(self, text: Any) -> str:
        return redact(str(text), *self.secrets)


@contextlib.contextmanager
def state_files_at(git: GitRepo, state_path: str, sha: str,
                   pattern: str | None = None) -> Iterator[tuple[StateFiles, Path]]:
    """The state files of commit `sha` (repository-relative paths) and the directory they sit in.

    `pattern` is STATE_FILE_PATTERN when set: the files sent are always those of `state_path`, so a
    pattern that selects other files is an error rather than silently ignored."""
    try:
        root = git.materialize_state(sha, state_path)
    except GitError as exc:
        raise dg.Failure(f"cannot read the state at commit {sha[:12]}: {exc}") from None
    try:
        files = StateFiles.load(root, state_path)
        if not files.files:
            raise dg.Failure(f"no state files match {state_path!r} at commit {sha[:12]}")
        if pattern and [f.path for f in StateFiles.load(root, pattern).files] != [f.path for f in files.files]:
            raise dg.Failure(
                f"STATE_FILE_PATTERN={pattern!r} selects other files than state: {state_path!r} in "
                f"schema_pipeline.yaml at commit {sha[:12]}; the pipeline sends the files of `state` to "
                "Bytebase: make both select the same files, or unset STATE_FILE_PATTERN")
        yield files, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def open_backend(resource: BytebaseResource, root: Path | None = None) -> Iterator[BytebaseBackend]:
    """A BytebaseBackend for one step, closed afterwards."""
    backend = BytebaseBackend(bytebase_settings(resource), root=str(root) if root else None)
    try:
        yield backend
    finally:
        backend.close()


def custom_rules_at(git: GitRepo, sha: str, settings: BytebaseSettings) -> str | None:
    """The custom rules (standards) file of the same commit as the state, when configured."""
    path = settings.custom_rules_file
    if not path:
        return None
    if Path(path).is_absolute():
        return settings.custom_rules()
    text = git.read_file(sha, path)
    if text is None:
        raise dg.Failure(f"BYTEBASE_CUSTOM_RULES_FILE={path!r} does not exist at commit {sha[:12]}: add it to "
                         "the repository, or unset the variable to review without custom rules")
    return text


def _tasks_table(outcome: ReleaseOutcome, clean: Scrubber) -> dg.TableMetadataValue:
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("task", "string"),
            dg.TableColumn("database", "string"),
            dg.TableColumn("status", "string"),
            dg.TableColumn("duration_s", "float"),
            dg.TableColumn("detail", "string"),
        ]
    )
    records = [
        dg.TableRecord(
            {
                "task": t.name.rsplit("/", 1)[-1],
                "database": t.target,
                "status": str(t.status),
                "duration_s": float(round(t.duration_s or 0.0, 3)),
                "detail": clean(t.detail)[:500],
            }
        )
        for t in outcome.tasks
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def outcome_metadata(outcome: ReleaseOutcome | None, clean: Scrubber) -> dict[str, Any]:
    """Rollout/plan/release links, the task table, the steps and the duration."""
    if outcome is None:
        return {}
    md: dict[str, Any] = {
        "backend": "bytebase",
        "bytebase_status": outcome.status,
        "duration_s": float(round(outcome.duration_s, 3)),
        "tasks": _tasks_table(outcome, clean),
        "steps": dg.MetadataValue.md(
            "\n".join(
                f"- {s.name}: **{s.status}**"
                + (f" ({s.duration_s:.1f}s)" if s.duration_s is not None else "")
                + (f" — {clean(s.detail)}" if s.detail else "")
                + (f" [open]({s.link})" if s.link else "")
                for s in outcome.steps
            )
            or "_none_"
        ),
    }
    for name, link in outcome.links.items():
        if link:
            md[f"bytebase_{name}"] = dg.MetadataValue.url(link)
    return md


def bytebase_release(
    context: dg.AssetExecutionContext,
    git: GitRepoResource,
    env: EnvironmentConfig,
    sha: str,
    approval: Any,
    approval_run: str | None = None,
) -> dg.MaterializeResult:
    """Release `sha` to `env` through Bytebase, then verify with a drift check (the `converged` check)."""
    resource: BytebaseResource = context.resources.bytebase
    settings = bytebase_settings(resource)
    clean = Scrubber(settings)
    cancel = threading.Event()
    with (
        state_files_at(git.get_client(), git.state_path, sha, resource.state_file_pattern) as (files, root),
        open_backend(resource, root) as bb,
    ):
        try:
            outcome = bb.release(
                env.name, files, sha, progress=lambda m: context.log.info(clean(m)), cancel_event=cancel
            )
        except SchemaPipelineError as exc:
            partial = getattr(exc, "outcome", None)
            raise dg.Failure(
                description=clean(f"release of {sha[:12]} to {env.name} through Bytebase failed: {exc}"),
                metadata={"commit": dg.MetadataValue.text(sha), **outcome_metadata(partial, clean)},
            ) from None
        except BaseException:
            cancel.set()  # run terminated (Dagster's interrupt): the backend cancels Bytebase's task runs
            raise
        try:
            verify = bb.drift(env.name, files)
        except SchemaPipelineError as exc:
            context.log.warning(clean(f"could not verify {env.name} after the release: {exc}"))
            verify = None
    from schema_pipeline.defs.release import approval_metadata  # release imports this module

    metadata: dict[str, Any] = {
        **approval_metadata(sha, approval, approval_run),
        "commit": dg.MetadataValue.text(sha),
        "environment": env.name,
        "database": ", ".join(settings.targets_for(env.name)),
        **outcome_metadata(outcome, clean),
    }
    converged = verify is not None and not verify.has_drift
    check = dg.AssetCheckResult(
        check_name=CONVERGED,
        passed=converged,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "Bytebase's diffSchema is empty after the rollout"
            if converged
            else "Bytebase still reports differences after the rollout"
        ),
        metadata={
            "commit": dg.MetadataValue.text(sha),
            "remaining": dg.MetadataValue.md(
                sql_markdown(clean(verify.diff), "_none_") if verify else "_not verified_"
            ),
        },
    )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[check],
        data_version=dg.DataVersion(sha),
        tags={COMMIT_TAG: sha, ENV_TAG: env.name},
    )


def bytebase_drift(
    context: dg.AssetCheckExecutionContext, git: GitRepoResource, env: EnvironmentConfig, sha: str
) -> tuple[DriftOutcome, Scrubber]:
    """Sync + diffSchema for every database of `env` against the state of `sha`."""
    resource: BytebaseResource = context.resources.bytebase
    settings = bytebase_settings(resource)
    clean = Scrubber(settings)
    with (
        state_files_at(git.get_client(), git.state_path, sha, resource.state_file_pattern) as (files, root),
        open_backend(resource, root) as bb,
    ):
        try:
            return bb.drift(env.name, files), clean
        except SchemaPipelineError as exc:
            raise dg.Failure(clean(f"drift check of {env.name} through Bytebase failed: {exc}")) from None


def bytebase_review(
    resource: BytebaseResource, git: GitRepo, state_path: str, sha: str, envs: list[EnvironmentConfig]
) -> list[Finding]:
    """Bytebase's `releases:check` advices for the bytebase environments, as findings."""
    settings = bytebase_settings(resource)
    clean = Scrubber(settings)
    rules = custom_rules_at(git, sha, settings)
    names = [e.name for e in envs]
    findings: list[Finding] = []
    with (
        state_files_at(git, state_path, sha, resource.state_file_pattern) as (files, root),
        open_backend(resource, root) as bb,
    ):
        try:
            if set(names) == set(settings.targets):
                return bb.review(files, custom_rules=rules)
            for name in names:
                for finding in bb.review(files, environment=name, custom_rules=rules):
                    if finding not in findings:
                        findings.append(finding)
        except SchemaPipelineError as exc:
            raise dg.Failure(clean(f"Bytebase review (releases:check) failed: {exc}")) from None
    return findings
