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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql

from schema_pipeline.catalog.model import Catalog, node_id
from schema_pipeline.db import connect, describe, password_of, redact, with_database
from schema_pipeline.errors import ConnectionFailed, PlanLoadError, StateError
from schema_pipeline.progress import Counter, ProgressFn, report
from schema_pipeline.state.loadtime import is_event_trigger_statement, matview_without_data, statement_kind
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
    sqlstate: str | None = None


@dataclass
class LoadResult:
    """What the state declared that the plan database does not show by itself."""

    # Materialized views declared WITH DATA (the default), as "schema.name": the plan database creates
    # every materialized view WITH NO DATA so that it never runs a query of the state.
    populated_matviews: set[str] = field(default_factory=set)

    def apply_to(self, catalog: Catalog) -> None:
        """Give the introspected plan-database catalog the populated-ness the state declared."""
        for key in self.populated_matviews:
            obj = catalog.objects.get(node_id("matview", key))
            if obj is not None:  # a copy, added again: the catalog forgets anything it derived from the old one
                catalog.add(replace(obj, attrs={**obj.attrs, "populated": True}))


@contextmanager
def temporary_database(server_url: str, *, drop_in_background: bool = False) -> Iterator[str]:
    """Create an empty database on the server of `server_url`; drop it afterwards.

    With `drop_in_background`, the drop (a tenth of a second or more: PostgreSQL checkpoints) runs in a
    non-daemon thread while the caller goes on; the interpreter waits for it before the process exits."""
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
        if drop_in_background:
            threading.Thread(target=_drop_database, args=(server_url, name), name=f"drop-{name}").start()
        else:
            _drop_database(server_url, name)


# Where the drop may run when the database of the server URL cannot serve it.
_MAINTENANCE_DATABASES = ("postgres", "template1")


def _drop_database(server_url: str, name: str) -> None:
    """Drop the plan database, from the database of `server_url` or, when that session fails (the target
    database itself was dropped WITH (FORCE) meanwhile, terminating the drop), from a maintenance database."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for url in (server_url, *(with_database(server_url, db) for db in _MAINTENANCE_DATABASES)):
        try:
            with connect(url) as conn:
                conn.execute(drop)
            return
        except (psycopg.Error, ConnectionFailed):
            continue


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


def load_state_into(conn: psycopg.Connection, state: DesiredState, progress: ProgressFn | None = None) -> LoadResult:
    """Execute the state's statements on `conn` (autocommit), in any dependency order.

    A statement that fails is retried after the others (a view written before its
    table, a table before its schema); the search_path in effect where it was written
    is restored for the retry. Raises PlanLoadError/StateError located at file:line
    when statements still fail after no further progress is possible.

    No code of the state runs here (see `_LoadGuard`): materialized views are created WITH NO
    DATA, the state's functions cannot be called while it loads, and event triggers are created
    after everything else, so they never fire.
    """
    guard = _LoadGuard(conn)
    pending: list[tuple[Statement, str]] = []
    deferred: list[tuple[Statement, str]] = []  # event-trigger statements: run last
    failures: dict[int, LoadFailure] = {}
    current_file = None
    counter = Counter(progress, "loading the state", len(state.statements),
                      unit="statements")
    for n, stmt in enumerate(state.statements):
        counter.update(n)
        if _is_ignored(stmt):
            continue
        if stmt.file != current_file:  # session settings (search_path, ...) do not leak across files
            guard.reset_session()
            current_file = stmt.file
            search_path = _search_path(conn)
        if stmt.session_only:
            guard.execute_session(stmt)
            search_path = _search_path(conn)
            continue
        if is_event_trigger_statement(stmt):
            deferred.append((stmt, search_path))
            continue
        failure = guard.execute(stmt)
        if failure:
            pending.append((stmt, search_path))
            failures[id(stmt)] = failure
    counter.finish(f"{len(pending)} to retry" if pending else "")
    if pending or deferred:
        guard.reset_session()
    _settle(guard, pending, failures, progress)
    # Event triggers are created (and altered, commented) after every other statement: no DDL runs
    # after them, so none of them fires during the load, whatever its enabled state. Disabling them
    # instead would not do: ENABLE ALWAYS fires in every session_replication_role, ENABLE REPLICA
    # fires precisely in the replica role the guard sets, and the declared state would have to be
    # restored afterwards. Event-trigger DDL itself never fires event triggers.
    _settle(guard, deferred, failures, None)
    return guard.finish()


def _settle(guard: _LoadGuard, pending: list[tuple[Statement, str]], failures: dict[int, LoadFailure],
            progress: ProgressFn | None) -> None:
    """Run `pending` (statement, search_path) until all succeed; StateError when no progress is made."""
    conn = guard.conn
    current_path = None
    while pending:
        if progress:
            progress(f"retrying {len(pending)} statement(s) that depend on later ones")
        still: list[tuple[Statement, str]] = []
        for stmt, search_path in pending:
            if search_path != current_path:
                conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (search_path,))
                current_path = search_path
            failure = guard.execute(stmt)
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


def _reset_session(conn: psycopg.Connection, guarded: bool = False) -> None:
    # One round trip. synchronous_commit off: the plan database is thrown away, so its commits need not
    # wait for the WAL flush (that wait dominated loading: one fsync per statement).
    # `guarded` (a superuser session, see _LoadGuard): session_replication_role = replica keeps ordinary
    # (ENABLE) event triggers from firing, a second line behind creating them last; read committed makes
    # the seal on the state's functions fail whatever the server's default isolation level is. The state
    # can change neither setting (the policy refuses both SETs).
    guard = ("SET session_replication_role = replica; SET default_transaction_isolation = 'read committed'; "
             if guarded else "")
    conn.execute(f"RESET ALL; {guard}SET check_function_bodies = off; SET synchronous_commit = off; "
                 f"SET statement_timeout = '{PLAN_STATEMENT_TIMEOUT}'")


def _search_path(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()[0]


def _execute(conn: psycopg.Connection, stmt: Statement, text: str | None = None) -> LoadFailure | None:
    """Run `text` (default: the statement's own text) for `stmt`; the failure, if any."""
    try:
        conn.execute((stmt.sql if text is None else text).encode(), prepare=False)  # bytes: no %-placeholders
        return None
    except psycopg.Error as exc:
        diag = exc.diag
        message = diag.message_primary or str(exc).strip()
        if diag.message_detail:
            message += f" ({diag.message_detail})"
        pos = int(diag.statement_position) if diag.statement_position else None
        return LoadFailure(stmt, message, pos, exc.sqlstate)


# Appended to the proconfig of each function of the state while the state loads (superuser sessions).
# A function with a SET clause is never inlined, and calling it applies the clause first: changing the
# isolation level after the statement took its snapshot fails, so the function's body never runs. The
# state cannot declare this setting itself (PostgreSQL refuses it in ALTER FUNCTION ... SET).
_SEAL = "transaction_isolation=serializable"
_SEALED_MESSAGE = (
    "this statement makes PostgreSQL call a function of the state while it is created (a constant "
    "expression in an index, a generated column, a partition key or bound, a CHECK added by ALTER TABLE, "
    "a DEFAULT added with ADD COLUMN, an aggregate's INITCOND, a cast, an operator or an event trigger); the "
    "plan database never runs code from the state files: write the value as a constant, or declare the object "
    "so that PostgreSQL does not evaluate it at creation (for example the default in CREATE TABLE)")
# The plain functions of the state: not built in, not in a system schema, not part of an extension.
_STATE_FUNCTIONS = """
p.prokind = 'f' AND p.oid >= 16384
AND p.pronamespace NOT IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema'))
AND p.oid NOT IN (SELECT objid FROM pg_catalog.pg_depend WHERE classid = 'pg_catalog.pg_proc'::regclass AND deptype = 'e')
"""
_SEAL_SQL = ("UPDATE pg_catalog.pg_proc p SET proconfig = array_append(coalesce(p.proconfig, '{}'), %(seal)s) "
             f"WHERE NOT coalesce(p.proconfig @> ARRAY[%(seal)s], false) AND {_STATE_FUNCTIONS}")
_UNSEAL_SQL = ("UPDATE pg_catalog.pg_proc SET proconfig = nullif(array_remove(proconfig, %(seal)s), '{}') "
               "WHERE proconfig @> ARRAY[%(seal)s]")
# Statements after which new or reset functions of the state may exist.
_FUNCTION_KINDS = frozenset({"CREATE FUNCTION", "ALTER FUNCTION", "ALTER ROUTINE", "ALTER EXTENSION"})
# Statements that never call a function: a run of them (functions are usually declared together) is
# sealed once, before the next statement that could call one.
_NO_CALL_KINDS = frozenset({"CREATE FUNCTION", "ALTER FUNCTION", "ALTER ROUTINE", "COMMENT", "GRANT", "REVOKE"})
# Domain CHECK constraints and DEFAULTs are evaluated while the state loads (a CHECK through an aggregate's
# INITCOND or a partition bound of a domain-typed key, a DEFAULT when ALTER TABLE ADD COLUMN uses the domain).
# Functions of the state are sealed then; built-in and extension functions are not, and one that reads the
# server (current_setting, version, pg_stat_*, inet_server_addr, ...) or acts on it (pg_terminate_backend,
# pg_read_file, ...) could put what it read into an error message. So such an expression may call immutable
# functions, stable ones that only format, convert or compare their arguments (the stable functions
# implementing an operator or a cast, and the list below: they are stable because they follow TimeZone,
# DateStyle or the text search configuration), and in a DEFAULT the clock, random values, UUIDs and sequences.
_STABLE_ARGUMENT_FUNCTIONS = [
    "age", "date_part", "date_trunc", "extract", "timezone", "make_timestamptz", "timestamptz", "to_char",
    "to_date", "to_number", "to_timestamp", "now", "statement_timestamp", "transaction_timestamp", "overlaps",
    "length", "concat", "concat_ws", "format", "quote_literal", "quote_nullable", "convert", "convert_from",
    "convert_to", "array_to_string", "array_to_json", "row_to_json", "to_json", "to_jsonb", "json_build_array",
    "json_build_object", "jsonb_build_array", "jsonb_build_object", "json_populate_record", "jsonb_populate_record",
    "json_to_record", "jsonb_to_record", "jsonb_path_exists_tz", "jsonb_path_match_tz",
    "jsonb_path_query_first_tz", "json_to_tsvector", "jsonb_to_tsvector", "to_tsvector", "to_tsquery",
    "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery", "enum_first", "enum_last", "enum_range",
    "pg_typeof", "pg_collation_for", "format_type", "in_range", "xml_is_well_formed", "pg_column_size"]
_HARMLESS_DEFAULT_FUNCTIONS = [
    "clock_timestamp", "timeofday", "random", "random_normal", "gen_random_uuid", "uuidv4", "uuidv7",
    "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4", "nextval"]
_DOMAIN_EXPRESSION_CALLS = """
WITH expr AS (
  SELECT k.contypid AS typ, 'the CHECK constraint ' || quote_ident(k.conname::text) AS part, k.conbin::text AS bin,
         false AS is_default
  FROM pg_catalog.pg_constraint k WHERE k.contype = 'c' AND k.contypid <> 0
  UNION ALL
  SELECT t.oid, 'the DEFAULT', t.typdefaultbin::text, true
  FROM pg_catalog.pg_type t WHERE t.typtype = 'd' AND t.typdefaultbin IS NOT NULL
)
SELECT format('%%I.%%I', n.nspname, t.typname), e.part, f.oid::regprocedure::text,
       CASE f.provolatile WHEN 's' THEN 'a stable' ELSE 'a volatile' END
FROM expr e JOIN pg_catalog.pg_type t ON t.oid = e.typ
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
CROSS JOIN LATERAL regexp_matches(e.bin, ':(?:funcid|opfuncid) (\\d+)', 'g') AS m(ids)
JOIN pg_catalog.pg_proc f ON f.oid = m.ids[1]::oid
WHERE f.provolatile <> 'i'
  AND NOT (f.provolatile = 's' AND (f.proname::text = ANY(%(stable)s)
                                   OR f.oid IN (SELECT oprcode FROM pg_catalog.pg_operator)
                                   OR f.oid IN (SELECT castfunc FROM pg_catalog.pg_cast)))
  AND NOT (e.is_default AND f.proname::text = ANY(%(harmless)s))
  AND (f.oid < 16384 OR f.oid IN (SELECT objid FROM pg_catalog.pg_depend
                                  WHERE classid = 'pg_catalog.pg_proc'::regclass AND deptype = 'e'))
  AND t.oid NOT IN (SELECT objid FROM pg_catalog.pg_depend WHERE classid = 'pg_catalog.pg_type'::regclass
                    AND deptype = 'e')
ORDER BY 1, 2 LIMIT 1
"""

class _LoadGuard:
    """Runs the state's statements in the plan database so that no code of the state runs there.

    The plan command runs on untrusted branches, usually as a superuser, and whatever PostgreSQL
    executes while the state loads runs with the connecting role's privileges. So:

    - a materialized view is created WITH NO DATA (its query is neither planned nor run); whether the
      state declared it populated is recorded and given back to the desired catalog (`LoadResult`);
    - (superuser) each function of the state is sealed while the state loads (`_SEAL`), so the
      constant folding, fast defaults, partition bounds, INITCOND input and casts that PostgreSQL
      evaluates during DDL cannot call it; the seal is removed before the catalog is read;
    - (superuser) session_replication_role = replica, and event triggers are created last
      (load_state_into), so none fires during the load;
    - a domain CHECK or DEFAULT (evaluated at load time through INITCOND, partition bounds or ADD COLUMN)
      may not call a built-in or extension function that reads or acts on the server
      (`_STABLE_ARGUMENT_FUNCTIONS`, `_HARMLESS_DEFAULT_FUNCTIONS`). Partition bounds and ADD COLUMN defaults that call
      functions are refused earlier, by the policy (state/policy.py).

    A non-superuser cannot seal (the seal writes pg_proc) but cannot run anything beyond its own
    privileges either; it cannot create event triggers at all (a located error says so).
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.superuser = conn.info.parameter_status("is_superuser") == "on"
        self.unsealed = False  # functions of the state may have been created (or reset) since the last seal
        self.sealed = self.superuser and self._can_seal()
        self.matviews: set[int] = set()  # every materialized view seen so far (oids)
        self.populated: set[int] = set()  # those declared WITH DATA

    def reset_session(self) -> None:
        _reset_session(self.conn, guarded=self.superuser)

    def _query(self, query: str, params: dict[str, object] | tuple[object, ...] | None = None) -> list[tuple]:
        """Run one of the guard's own queries with a search_path the state cannot hijack (a function or
        operator of the state named like a built-in one, placed before pg_catalog in the path)."""
        with self.conn.transaction():
            self.conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            cur = self.conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def _can_seal(self) -> bool:
        try:
            self._seal()
            return True
        except psycopg.Error:  # pg_proc not writable: not a superuser after all
            return False

    def _seal(self) -> None:
        self._query(_SEAL_SQL, {"seal": _SEAL})
        self.unsealed = False

    def execute_session(self, stmt: Statement) -> None:
        """A session statement (SET, set_config): its failure is not the state's concern here, but it may
        call a function named set_config that the state put before pg_catalog in the search_path."""
        if self.unsealed:
            self._seal()
        _execute(self.conn, stmt)

    def execute(self, stmt: Statement) -> LoadFailure | None:
        kind = statement_kind(stmt)
        text = matview_without_data(stmt, kind)
        if self.unsealed and kind not in _NO_CALL_KINDS:
            self._seal()  # an error here ends the load: never run a statement with an unsealed function
        failure = _execute(self.conn, stmt, text.sql if text else None)
        if failure is not None:
            if self.sealed and failure.sqlstate == "25001" and "ISOLATION LEVEL" in failure.message:
                failure.message, failure.position = _SEALED_MESSAGE, None
            elif kind == "CREATE EVENT TRIGGER" and failure.sqlstate == "42501":
                failure.message += (f"; event triggers can only be created by a superuser, and the plan database "
                                    f"is loaded as {self.conn.info.user}, which is not one: plan as a superuser, "
                                    "or leave event triggers out of the state")
            return failure
        if text is not None:
            self._note_matviews(text.populated)
        if self.sealed and kind in _FUNCTION_KINDS:
            self.unsealed = True
        if kind in ("CREATE DOMAIN", "ALTER DOMAIN"):
            rows = self._query(_DOMAIN_EXPRESSION_CALLS, {"stable": _STABLE_ARGUMENT_FUNCTIONS,
                                                         "harmless": _HARMLESS_DEFAULT_FUNCTIONS})
            if rows:
                domain, part, function, volatility = rows[0]
                raise StateError(
                    f"{part} of domain {domain} calls {function}, {volatility} function: PostgreSQL evaluates "
                    "a domain's CHECK (an aggregate's INITCOND, a partition bound) and DEFAULT (ALTER TABLE ... "
                    "ADD COLUMN) while the state loads, and the plan database does not evaluate built-in functions "
                    "that read or act on the server there; use immutable functions, formatting, conversions and "
                    "comparisons (a DEFAULT may also read the clock, random values, UUIDs or nextval()), or wrap "
                    "the call in a function of the state",
                    stmt.file, stmt.line)
        return None

    def _note_matviews(self, populated: bool) -> None:
        rows = self._query("SELECT oid FROM pg_class WHERE relkind = 'm'")
        new = {r[0] for r in rows} - self.matviews
        self.matviews |= new
        if populated:
            self.populated |= new

    def finish(self) -> LoadResult:
        # The catalog is read next, on this session and unsealed: give it back PostgreSQL's default
        # search_path (the state's could put a function named like a built-in one before pg_catalog), and
        # drop the session's temporary objects (a temporary view named pg_class would come first).
        self.reset_session()
        self.conn.execute("DISCARD TEMP")
        if self.sealed:
            self._query(_UNSEAL_SQL, {"seal": _SEAL})
        result = LoadResult()
        if self.populated:
            rows = self._query(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'm' AND c.oid = ANY(%s)", (sorted(self.populated),))
            result.populated_matviews = {r[0] for r in rows}
        return result


def desired_catalog(
    state: DesiredState,
    server_url: str,
    *,
    include_schemas: list[str] | None = None,
    exclude_schemas: list[str] | None = None,
    progress: ProgressFn | None = None,
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
        with temporary_database(server_url, drop_in_background=True) as url, connect(url) as conn:
            report(progress, f"plan database created: {describe(url)}")
            loaded = load_state_into(conn, state, progress)
            catalog = introspect(conn, include_schemas=include_schemas, exclude_schemas=exclude_schemas,
                                 progress=progress, phase="reading the desired catalog")
            loaded.apply_to(catalog)
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
