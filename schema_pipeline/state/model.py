"""The desired state as read from disk: files and located statements."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a state file, with its 1-based location."""

    sql: str
    file: str
    line: int
    column: int = 1
    kind: str = ""
    # pg_dump preamble (SET ..., SELECT pg_catalog.set_config(...), \restrict): affects the
    # plan-database session only and declares no object.
    session_only: bool = False


@dataclass
class DesiredState:
    """Every statement of the state files, in load order (files in lexicographic order)."""

    root: str
    files: list[str]
    statements: list[Statement]
    fingerprint: str
    # Declared renames, e.g. {("table", "public.new_name"): "old_name"}; filled by the parser.
    renames: dict[tuple[str, str], str] = field(default_factory=dict)
