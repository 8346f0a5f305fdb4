"""The throw-away plan database: load the desired state into it and read it back.

PostgreSQL is the semantic authority (DESIGN.md §4): the state files are executed into
a temporary database on the target's own server (or an explicit plan server, or the
embedded one), then introspected with the same code as the target.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from schema_pipeline.db import connect, describe, password_of, redact, with_database
from schema_pipeline.errors import ConnectionFailed, PlanLoadError, StateError
from schema_pipeline.state.model import DesiredState, Statement

# Session settings from pg_dump's preamble that we must not let the state change:
# our own timeouts protect the server the plan database lives on.
_IGNORED_SESSION_SETTINGS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
                             "transaction_timeout")
PLAN_STATEMENT_TIMEOUT = "120s"

_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()


class PlanDatabaseUnavailable(PlanLoadError):
    """The server refused to create the plan database (no CREATEDB privilege, ...)."""


@dataclass
class LoadFailure:
    statement: Statement
    message: str
    position: int | None


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server of `server_url`; drop it afterwards."""
    name = f"schema_pipeline_plan_{uuid.uuid4().hex[:12]}"
    with connect(server_url) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise PlanDatabaseUnavailable(
                f"cannot create the plan database on the target's server: {exc.diag.message_primary or exc}; "
                "grant CREATEDB to the pipeline's role or configure a plan database URL"
            ) from None
    try:
        yield with_database(server_url, name)
    finally:
        with suppress(psycopg.Error, ConnectionFailed), connect(server_url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _is_ignored(stmt: Statement) -> bool:
    if not stmt.session_only:
        return False
    text = stmt.sql.lstrip()
    if text.startswith("\\"):
        return True
    lowered = text.lower()
    return any(lowered.startswith(f"set {s}") for s in _IGNORED_SESSION_SETTINGS)


def _error_line(stmt: Statement, position: int | None) -> int:
    if not position:
        return stmt.line
    return stmt.line + stmt.sql[: position - 1].count("\n")


def load_state_into(conn: psycopg.Connection, state: DesiredState, progress: Callable[[str], None] | None = None) -> None:
    """Execute the state's statements on `conn` (autocommit), in any dependency order.

    A statement that fails is retried after the others (a view written before its
    table, a table before its schema); the search_path in effect where it was written
    is restored for the retry. Raises PlanLoadError/StateError located at file:line
    when statements still fail after no further progress is possible.
    """
    pending: list[tuple[Statement, str]] = []
    failures: dict[int, LoadFailure] = {}
    current_file = None
    for stmt in state.statements:
        if _is_ignored(stmt):
            continue
        if stmt.file != current_file:  # session settings (search_path, ...) do not leak across files
            _reset_session(conn)
            current_file = stmt.file
            search_path = _search_path(conn)
        if stmt.session_only:
            _execute(conn, stmt)
            search_path = _search_path(conn)
            continue
        failure = _execute(conn, stmt)
        if failure:
            pending.append((stmt, search_path))
            failures[id(stmt)] = failure
    if pending:
        _reset_session(conn)
    current_path = None
    while pending:
        if progress:
            progress(f"retrying {len(pending)} statement(s) that depend on later ones")
        still: list[tuple[Statement, str]] = []
        for stmt, search_path in pending:
            if search_path != current_path:
                conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (search_path,))
                current_path = search_path
            failure = _execute(conn, stmt)
            if failure:
                still.append((stmt, search_path))
                failures[id(stmt)] = failure
        if len(still) == len(pending):
            errors = [failures[id(s)] for s, _ in still]
            first = errors[0]
            raise StateError(
                f"PostgreSQL rejected this statement: {first.message}"
                + (f" (and {len(errors) - 1} more statement(s) failed)" if len(errors) > 1 else ""),
                first.statement.file, _error_line(first.statement, first.position),
            )
        pending = still


def _reset_session(conn: psycopg.Connection) -> None:
    # One round trip. synchronous_commit off: the plan database is thrown away, so its commits need not
    # wait for the WAL flush (that wait dominated loading: one fsync per statement).
    conn.execute("RESET ALL; SET check_function_bodies = off; SET synchronous_commit = off; "
                 f"SET statement_timeout = '{PLAN_STATEMENT_TIMEOUT}'")


def _search_path(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT current_setting('search_path')").fetchone()[0]


def _execute(conn: psycopg.Connection, stmt: Statement) -> LoadFailure | None:
    try:
        conn.execute(stmt.sql.encode(), prepare=False)  # bytes: no client-side %-placeholder parsing
        return None
    except psycopg.Error as exc:
        diag = exc.diag
        message = diag.message_primary or str(exc).strip()
        if diag.message_detail:
            message += f" ({diag.message_detail})"
        pos = int(diag.statement_position) if diag.statement_position else None
        return LoadFailure(stmt, message, pos)


def desired_catalog(
    state: DesiredState,
    server_url: str,
    *,
    include_schemas: list[str] | None = None,
    exclude_schemas: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
):
    """Load `state` into a temporary database on `server_url` and introspect it.

    Cached by content, in memory and on disk: the key is the state's fingerprint, the
    scope, the server (system identifier, version, connecting role, existing roles) and
    the catalog code itself, so an unchanged state is never loaded twice.
    """
    from schema_pipeline.catalog import Catalog, introspect

    key = _cache_key(state, server_url, include_schemas, exclude_schemas)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    cached = _disk_get(key)
    if cached is not None:
        catalog = Catalog.from_dict(cached)
        with _cache_lock:
            _cache[key] = catalog
        return catalog
    if progress:
        progress(f"loading {len(state.statements)} statement(s) from {len(state.files)} file(s) into a plan database")
    try:
        with temporary_database(server_url) as url, connect(url) as conn:
            load_state_into(conn, state, progress)
            catalog = introspect(conn, include_schemas=include_schemas, exclude_schemas=exclude_schemas)
    except psycopg.Error as exc:
        raise PlanLoadError(redact(f"plan database failed: {exc}", password_of(server_url))) from None
    with _cache_lock:
        _cache[key] = catalog
    _disk_put(key, catalog.to_dict())
    return catalog


_SERVER_IDENTITY = """
SELECT (SELECT system_identifier FROM pg_catalog.pg_control_system())::text,
       current_setting('server_version_num'), current_user,
       md5(string_agg(rolname, ',' ORDER BY rolname)), md5(coalesce((SELECT string_agg(name || default_version, ','
           ORDER BY name) FROM pg_catalog.pg_available_extensions), ''))
FROM pg_catalog.pg_roles
"""


def _code_version() -> str:
    """A hash of the catalog code: a cached catalog is only valid for the code that read it."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        from schema_pipeline import catalog as catalog_pkg

        h = hashlib.sha256()
        for path in sorted(Path(catalog_pkg.__file__).parent.glob("*.py")):
            h.update(path.read_bytes())
        _CODE_VERSION = h.hexdigest()[:16]
    return _CODE_VERSION


_CODE_VERSION: str | None = None


def _cache_key(state: DesiredState, server_url: str, include: list[str] | None, exclude: list[str] | None) -> str:
    with connect(server_url) as probe:
        try:
            identity = probe.execute(_SERVER_IDENTITY).fetchone()
        except psycopg.Error:  # pg_control_system() may be revoked: fall back to the address
            identity = (describe(server_url), probe.info.server_version, probe.info.user)
    parts = [state.fingerprint, *map(str, identity), ",".join(include or []), ",".join(exclude or []), _code_version()]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _cache_dir() -> Path | None:
    setting = os.environ.get("SCHEMA_PIPELINE_CACHE_DIR", "")
    if setting.lower() in ("off", "none", "0", "false"):
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "schema_pipeline" / "catalogs"


def _disk_get(key: str) -> dict | None:
    directory = _cache_dir()
    if directory is None:
        return None
    try:
        return json.loads((directory / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def _disk_put(key: str, data: dict) -> None:
    directory = _cache_dir()
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, directory / f"{key}.json")
    except OSError:
        pass  # the cache is an optimisation; never fail a plan because of it
