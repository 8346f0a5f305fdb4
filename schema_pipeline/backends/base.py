"""The contract every backend offers the Dagster layer, one environment at a time.

A backend reviews the desired state, releases it to an environment and checks an
environment for drift. The Dagster assets only see the types in this module, so the
native engine and the Bytebase backend are interchangeable per environment.
Plain Python: nothing here imports Dagster.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.progress import ProgressFn
from schema_pipeline.review.finding import Finding, Severity

__all__ = [
    "Backend",
    "DriftOutcome",
    "Finding",
    "ProgressFn",
    "ReleaseCancelled",
    "ReleaseOutcome",
    "Severity",
    "StateFile",
    "StateFiles",
    "StepOutcome",
    "TaskOutcome",
]

Status = Literal["SUCCEEDED", "FAILED", "CANCELED", "SKIPPED", "RUNNING", "PENDING", "NOT_STARTED"]


class ReleaseCancelled(SchemaPipelineError):
    """The caller asked to stop (e.g. the Dagster run was terminated); running work was cancelled."""


@dataclass(frozen=True)
class StateFile:
    """One desired-state file: its path relative to the repository root (POSIX) and its text."""

    path: str
    content: str


@dataclass(frozen=True)
class StateFiles:
    """The desired state as files: what a backend that talks to a remote service sends.

    `pattern` is the glob (or directory) the files were selected with; `files` are in
    lexicographic order of their relative paths.
    """

    pattern: str
    files: tuple[StateFile, ...]

    @classmethod
    def load(cls, root: str | Path, pattern: str) -> StateFiles:
        """Read every file matching `pattern` under `root` (a directory means `dir/**/*.sql`)."""
        base = Path(root)
        glob = pattern
        if (base / pattern).is_dir():
            glob = pattern.rstrip("/") + "/**/*.sql"
        paths = sorted(
            (p for p in base.glob(glob) if p.is_file()), key=lambda p: p.relative_to(base).as_posix()
        )
        files = tuple(
            StateFile(path=p.relative_to(base).as_posix(), content=p.read_text(encoding="utf-8"))
            for p in paths
        )
        return cls(pattern=pattern, files=files)

    def concatenated(self) -> str:
        """All files joined with a newline, in order (what a declarative release executes)."""
        return "\n".join(f.content for f in self.files)

    @property
    def fingerprint(self) -> str:
        """sha256 over paths and contents."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f.path.encode() + b"\0" + f.content.encode() + b"\0")
        return digest.hexdigest()


@dataclass
class StepOutcome:
    """One step of a release (create release, create plan, run a stage, ...)."""

    name: str
    status: Status
    detail: str = ""
    link: str | None = None
    duration_s: float | None = None


@dataclass
class TaskOutcome:
    """One unit of work against one database (a Bytebase task, a native apply)."""

    name: str
    target: str
    status: Status | str
    detail: str = ""
    link: str | None = None
    duration_s: float | None = None


@dataclass
class ReleaseOutcome:
    """What a release did. `status` is SUCCEEDED when every task is done or skipped."""

    environment: str
    backend: str
    commit: str
    status: Status
    steps: list[StepOutcome] = field(default_factory=list)
    tasks: list[TaskOutcome] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DriftOutcome:
    """Live versus desired for one environment. `diff` is the SQL that restores the desired state."""

    environment: str
    backend: str
    has_drift: bool
    diff: str = ""
    per_target: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """What the Dagster layer calls. Implementations raise SchemaPipelineError subclasses."""

    name: str

    def review(self, state: StateFiles) -> list[Finding]:
        """Findings about the desired state (ERROR findings block the release)."""
        ...

    def release(
        self,
        environment: str,
        state: StateFiles,
        commit: str,
        *,
        progress: ProgressFn | None = None,
        cancel_event: threading.Event | None = None,
    ) -> ReleaseOutcome:
        """Bring `environment` to `state`; raise on failure, ReleaseCancelled when cancelled."""
        ...

    def drift(self, environment: str, state: StateFiles) -> DriftOutcome:
        """Compare the live schema of `environment` with `state`."""
        ...
