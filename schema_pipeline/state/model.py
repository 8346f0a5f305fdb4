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
    # `-- schema-pipeline: ...` comment directives attached to this statement (the comment block
    # directly above it, comments inside it, a trailing comment on its last line), e.g.
    # ("ignore naming.table", "renamed from people").
    directives: tuple[str, ...] = field(default=(), compare=False)
    # libpg_query's node type of the statement ("CreateStmt", "VariableSetStmt", ...): what it is.
    node: str = field(default="", compare=False)
    # How the plan sandbox runs it when the loader's privileges do not suffice (state/policy.py LAST/RETRY).
    privileged: str = field(default="", compare=False)
    # Run once by the plan database, where it is written, as psql would run it; a failure is no error and is
    # not retried after the other statements (state/identity.py Declarations): every DROP and ALTER TABLE that
    # only drops (pg_dump --clean: what they drop does not exist yet, and a retry would drop what the state
    # declares), and a definition that a later statement replaces (pg_dump's placeholder views) or drops.
    run_once: bool = field(default=False, compare=False)


@dataclass
class DesiredState:
    """Every statement of the state files, in load order (files in lexicographic order)."""

    root: str
    files: list[str]
    statements: list[Statement]
    fingerprint: str
    # Declared renames, e.g. {("table", "public.new_name"): "old_name"}; filled by the parser.
    renames: dict[tuple[str, str], str] = field(default_factory=dict)
    # Declared conversions of column values for type changes ("schema.table.column" -> USING expression), from
    # `-- schema-pipeline: using ...` comments (state/conversions.py).
    conversions: dict[str, str] = field(default_factory=dict)
    # Roles the statements name (OWNER TO, GRANT ... TO, AUTHORIZATION, ...): role -> (file, line) of first use.
    roles: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeclaredObject:
    """One object the state declares: kind ("table", "index", ...), qualified name, location."""

    kind: str
    name: str
    file: str
    line: int
