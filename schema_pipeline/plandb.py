"""The throw-away plan database: load the desired state into it and read it back.

PostgreSQL is the semantic authority (DESIGN.md §4): the state files are executed into a temporary
database in the plan sandbox (a PostgreSQL cluster of the target's major version that the pipeline runs on
its own host, schema_pipeline/sandbox) or on an operator's dedicated planning server, by a role that is not
a superuser, then introspected with the same code as the target. An environment's server is only read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schema_pipeline.catalog.model import Catalog, node_id
from schema_pipeline.db import connect, database_name, describe, password_of, redact, with_database
from schema_pipeline.diff.owners import rendered_role
from schema_pipeline.errors import ConnectionFailed, PlanLoadError, StateError
from schema_pipeline.progress import Counter, ProgressFn, report
from schema_pipeline.sandbox.settings import LOADER
from schema_pipeline.state.loadtime import matview_without_data
from schema_pipeline.state.model import DesiredState, Statement
from schema_pipeline.state.policy import EXTENSION, LAST, RETRY

# Session settings from pg_dump's preamble that we must not let the state change:
# our own timeouts protect the server the plan database lives on.
_IGNORED_SESSION_SETTINGS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
                             "transaction_timeout")
PLAN_STATEMENT_TIMEOUT = "120s"
# Untrusted extensions (dblink, file_fdw, ...) the operator allows the plan sandbox to create for the state,
# comma-separated; trusted ones (pg_trgm, hstore, ...) need nothing: the loader creates them itself.
EXTENSIONS_ENV = "SCHEMA_PIPELINE_SANDBOX_EXTENSIONS"

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
def temporary_database(server_url: str, *, drop_in_background: bool = False,
                       prefix: str = "schema_pipeline_plan_") -> Iterator[str]:
    """Create an empty database on the server of `server_url`; drop it afterwards.

    With `drop_in_background`, the drop (a tenth of a second or more: PostgreSQL checkpoints) runs in a
    non-daemon thread while the caller goes on; the interpreter waits for it before the process exits.
    The name carries its creation time: databases of this prefix that a killed process left behind (older
    than `LEFTOVER_AGE_S`, nobody connected) are dropped before a new one is created."""
    name = f"{prefix}{int(time.time()):x}_{uuid.uuid4().hex[:8]}"
    with connect(server_url) as conn:
        _drop_leftovers(conn, prefix)
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


LEFTOVER_AGE_S = 6 * 3600
_STAMPED = re.compile(r"_([0-9a-f]{8,})_[0-9a-f]{8}$")


def _drop_leftovers(conn: psycopg.Connection, prefix: str) -> None:
    """Drop temporary databases of `prefix` older than LEFTOVER_AGE_S that nobody is connected to."""
    rows = conn.execute(
        "SELECT d.datname FROM pg_catalog.pg_database d WHERE starts_with(d.datname, %s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid)", (prefix,)).fetchall()
    now = time.time()
    for (dbname,) in rows:
        m = _STAMPED.search(dbname)
        if m and now - int(m.group(1), 16) > LEFTOVER_AGE_S:
            with suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))


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


# Untrusted contrib extensions the sandbox creates by default: inspection and maintenance modules whose
# functions reach no file, program, network or other database (most are not even executable by the loader).
# dblink, postgres_fdw, file_fdw, adminpack, xml2 (libxslt fetches URLs) and the untrusted languages are not
# among them: they need SCHEMA_PIPELINE_SANDBOX_EXTENSIONS.
SANDBOX_SAFE_EXTENSIONS = frozenset({
    "amcheck", "old_snapshot", "pageinspect", "pg_buffercache", "pg_freespacemap", "pg_prewarm",
    "pg_stat_statements", "pg_surgery", "pg_visibility", "pg_walinspect", "pgrowlocks", "pgstattuple", "sslinfo",
})


def allowed_extensions() -> set[str]:
    """Untrusted extensions the sandbox's administrator creates for the state: the safe contrib modules, and
    the ones the operator allows."""
    return set(SANDBOX_SAFE_EXTENSIONS) | {e.strip() for e in os.environ.get(EXTENSIONS_ENV, "").split(",")
                                           if e.strip()}


class _Loader:
    """Runs the state's statements: as the loader role (not a superuser), and the few kinds that need more
    (state/policy.py LAST and RETRY: event triggers, publications for all tables, binary casts, comments on
    extensions) on the administrator's session, which runs nothing else of the state."""

    def __init__(self, conn: psycopg.Connection, admin_url: str | None) -> None:
        self.conn = conn
        self.admin_url = admin_url
        self._admin: psycopg.Connection | None = None
        self.matviews: set[int] = set()  # every materialized view seen so far (oids)
        self.populated: set[int] = set()  # those declared WITH DATA

    def admin(self) -> psycopg.Connection | None:
        if self._admin is None and self.admin_url is not None:
            self._admin = connect(self.admin_url)
            _reset_session(self._admin)
        return self._admin

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()

    def execute(self, stmt: Statement, search_path: str | None = None) -> LoadFailure | None:
        text = matview_without_data(stmt)
        failure = _execute(self.conn, stmt, text.sql if text else None)
        if failure is None:
            if text is not None:
                self._note_matviews(text.populated)
            return None
        if failure.sqlstate != "42501" or not (stmt.privileged == RETRY or (
                stmt.privileged.startswith(EXTENSION) and stmt.privileged[len(EXTENSION):] in allowed_extensions())):
            return _explain(failure, stmt, self.conn.info.user)
        return self.execute_as_admin(stmt, search_path or _search_path(self.conn))

    def _note_matviews(self, populated: bool) -> None:
        rows = self.conn.execute("SELECT oid FROM pg_catalog.pg_class WHERE relkind = 'm'").fetchall()
        new = {r[0] for r in rows} - self.matviews
        self.matviews |= new
        if populated:
            self.populated |= new

    def result(self) -> LoadResult:
        result = LoadResult()
        if self.populated:
            rows = self.conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND c.oid = ANY(%s)",
                (sorted(self.populated),)).fetchall()
            result.populated_matviews = {r[0] for r in rows}
        return result

    def execute_as_admin(self, stmt: Statement, search_path: str) -> LoadFailure | None:
        admin = self.admin()
        if admin is None:
            failure = _execute(self.conn, stmt)
            return _explain(failure, stmt, self.conn.info.user)
        admin.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (search_path,))
        failure = _execute(admin, stmt)
        if failure is None:
            self._give_back_routines(admin)
        return failure

    def _give_back_routines(self, admin: psycopg.Connection) -> None:
        """Routines the administrator just created or changed for the state (a LEAKPROOF function) belong to the
        loader, so that none, SECURITY DEFINER or not, ever runs with the administrator's privileges."""
        rows = admin.execute(
            "SELECT p.oid::pg_catalog.regprocedure::text FROM pg_catalog.pg_proc p "
            "WHERE p.proowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) "
            "AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) "
            "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass "
            "AND d.objid = p.oid AND d.deptype = 'e')").fetchall()
        for (signature,) in rows:
            admin.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature),
                                                                         sql.Identifier(self.conn.info.user)))


def _explain(failure: LoadFailure | None, stmt: Statement, role: str) -> LoadFailure | None:
    """The loader's privilege errors, said with what to do about them."""
    if failure is not None and failure.sqlstate == "42501":
        failure.message += (f" (the plan database loads the state as {role}, which is not a superuser, so "
                            "PostgreSQL refuses what only a superuser may do: C or untrusted-language functions, "
                            "file and program access, untrusted extensions unless the operator allows them "
                            "(SCHEMA_PIPELINE_SANDBOX_EXTENSIONS))")
    return failure


def load_state_into(conn: psycopg.Connection, state: DesiredState, progress: ProgressFn | None = None,
                    *, admin_url: str | None = None) -> LoadResult:
    """Execute the state's statements on `conn` (autocommit), in any dependency order.

    A statement that fails is retried after the others (a view written before its table, a table before
    its schema); the search_path in effect where it was written is restored for the retry. Raises
    StateError located at file:line when statements still fail after no further progress is possible.

    `conn` is the loader's session: a role that is not a superuser, in the plan sandbox, so PostgreSQL's own
    privilege checks decide what the state's statements and functions may do. Materialized views are created
    WITH NO DATA (their queries are not run; whether the state declared them populated is kept). Event
    triggers are created last, on the administrator's session (`admin_url`), so none fires during the load.
    """
    loader = _Loader(conn, admin_url)
    pending: list[tuple[Statement, str]] = []
    deferred: list[tuple[Statement, str]] = []  # event-trigger statements: run last
    failures: dict[int, LoadFailure] = {}
    current_file = None
    counter = Counter(progress, "loading the state", len(state.statements), unit="statements")
    try:
        for n, stmt in enumerate(state.statements):
            counter.update(n)
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
            if stmt.run_once:  # a DROP, or a definition replaced later: once, in order; a failure is no error
                loader.execute(stmt, search_path)
                continue
            if stmt.privileged == LAST:
                deferred.append((stmt, search_path))
                continue
            failure = loader.execute(stmt, search_path)
            if failure:
                pending.append((stmt, search_path))
                failures[id(stmt)] = failure
        counter.finish(f"{len(pending)} to retry" if pending else "")
        if pending:
            _reset_session(conn)
        _settle(loader, pending, failures, progress)
        # Event triggers are created (and altered, commented) after every other statement: no DDL runs after
        # them, so none of them fires during the load. Event-trigger DDL itself never fires event triggers.
        _settle(loader, deferred, failures, None, admin=True)
        # The catalog is read next, on this session: PostgreSQL's default search_path again, and no temporary
        # objects (a temporary view named pg_class would come first).
        _reset_session(conn)
        conn.execute("DISCARD TEMP")
        return loader.result()
    finally:
        loader.close()


def _settle(loader: _Loader, pending: list[tuple[Statement, str]], failures: dict[int, LoadFailure],
            progress: ProgressFn | None, *, admin: bool = False) -> None:
    """Run `pending` (statement, search_path) until all succeed; StateError when no progress is made."""
    conn = loader.conn
    current_path = None
    while pending:
        if progress:
            progress(f"retrying {len(pending)} statement(s) that depend on later ones")
        still: list[tuple[Statement, str]] = []
        for stmt, search_path in pending:
            if admin:
                failure = loader.execute_as_admin(stmt, search_path)
            else:
                if search_path != current_path:
                    conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (search_path,))
                    current_path = search_path
                failure = loader.execute(stmt, search_path)
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
    # One round trip. synchronous_commit off: the plan database is thrown away, so its commits need not wait
    # for the WAL flush.
    conn.execute("RESET ALL; SET check_function_bodies = off; SET synchronous_commit = off; "
                 f"SET statement_timeout = '{PLAN_STATEMENT_TIMEOUT}'")


def _search_path(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()[0]


def _execute(conn: psycopg.Connection, stmt: Statement, text: str | None = None) -> LoadFailure | None:
    """Run `text` (default: the statement's own text) for `stmt`; the failure, if any.

    The extended query protocol (binary=True) makes the server refuse a text that holds more than one
    statement: what runs is exactly the one statement libpg_query parsed."""
    try:
        with conn.cursor() as cur:  # bytes: no %-placeholders
            cur.execute((stmt.sql if text is None else text).encode(), prepare=False, binary=True)
        return None
    except psycopg.Error as exc:
        diag = exc.diag
        message = diag.message_primary or str(exc).strip()
        if diag.message_detail:
            message += f" ({diag.message_detail})"
        pos = int(diag.statement_position) if diag.statement_position else None
        return LoadFailure(stmt, message, pos, exc.sqlstate)


def server_major(url: str) -> int:
    """The major version of the server at `url` (15 for 15.4)."""
    with connect(url) as conn:
        return conn.info.server_version // 10000


def _target_major_checking_roles(state: DesiredState, target_url: str) -> int:
    """The target's major version, on one connection that also checks the roles the state names: StateError
    at file:line for the first the target's server does not have (the plan sandbox creates every named role,
    so only the target can tell)."""
    with connect(target_url) as conn:
        major = conn.info.server_version // 10000
        if not state.roles:
            return major
        rows = conn.execute("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)",
                            (sorted(state.roles),)).fetchall()
    missing = sorted(set(state.roles) - {r[0] for r in rows}, key=lambda r: state.roles[r])
    if missing:
        file, line = state.roles[missing[0]]
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:6])})" if len(missing) > 1 else ""
        raise StateError(f"role {missing[0]!r} does not exist on the target's server{more}; roles are managed "
                         "outside the state: create it there first", file, line)
    return major


@contextmanager
def plan_database(major: int, roles: Iterable[str], plan_server_url: str | None = None,
                  progress: ProgressFn | None = None) -> Iterator[tuple[str, str | None]]:
    """A fresh plan database: (the loader's URL, the administrator's URL of the same database or None).

    By default in the plan sandbox of `major` (schema_pipeline/sandbox); with `plan_server_url`, on that
    dedicated planning server, loaded by a role that is not a superuser all the same."""
    if plan_server_url is None:
        from schema_pipeline.sandbox import private_sandbox

        with private_sandbox(major) as sandbox:
            url = sandbox.create_database(roles)
            user = f", user {sandbox.user.name}" if getattr(sandbox, "user", None) else ""
            report(progress, f"plan database created in the PostgreSQL {sandbox.version} sandbox "
                             f"(Unix socket only, {sandbox.network}{user})")
            yield url, sandbox.admin_url(database_name(url))
        return
    with temporary_database(plan_server_url) as admin_url:
        report(progress, f"plan database created: {describe(admin_url)}")
        with connect(admin_url) as conn:
            superuser = conn.info.parameter_status("is_superuser") == "on"
            if superuser:
                loader, password, created = _dedicated_loader(conn, database_name(admin_url), roles)
        if not superuser:  # the operator's role already cannot do what only a superuser can
            yield admin_url, None
            return
        try:
            yield make_conninfo(admin_url, user=loader, password=password), admin_url
        finally:
            with connect(plan_server_url) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database_name(admin_url))))
                for role in [loader, *created]:
                    with suppress(psycopg.Error):
                        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _dedicated_loader(conn: psycopg.Connection, dbname: str, roles: Iterable[str]) -> tuple[str, str, list[str]]:
    """On a dedicated planning server, as its superuser: a throw-away login role (no superuser, no CREATEDB,
    no CREATEROLE) that owns the plan database and is a member of the roles the state names (created
    NOLOGIN when missing). Returns (loader, password, roles created)."""
    loader, password = f"{LOADER}_{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(24)
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
        sql.Identifier(loader), sql.Literal(password)))
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(loader)))
    supers = dict(conn.execute("SELECT rolname, rolsuper FROM pg_catalog.pg_roles").fetchall())
    created = []
    for role in sorted(set(roles)):
        if role.startswith("pg_") or supers.get(role):
            continue  # predefined roles and superusers are never granted to the loader
        if role not in supers:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            created.append(role)
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(loader)))
    return loader, password, created


def desired_catalog(
    state: DesiredState,
    target_url: str,
    *,
    plan_server_url: str | None = None,
    include_schemas: list[str] | None = None,
    exclude_schemas: list[str] | None = None,
    progress: ProgressFn | None = None,
):
    """Load `state` into a plan database of the target's major version and introspect it.

    The plan database lives in the plan sandbox (or on `plan_server_url`), never on the target's server,
    which is only read (its version, the roles the state names). Cached by content, in memory and on disk:
    the key is the state's fingerprint, the scope, the plan server's version and the catalog code itself,
    so an unchanged state is never loaded twice.
    """
    from schema_pipeline.catalog import Catalog, introspect

    major = _target_major_checking_roles(state, target_url)
    key = _cache_key(state, major, plan_server_url, include_schemas, exclude_schemas)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    cached = _disk_get(key)
    if cached is not None:
        catalog = Catalog.from_dict(cached)
        catalog._fingerprint = cached.get("fingerprint")  # computed when it was cached (same catalog code)
        with _cache_lock:
            _cache[key] = catalog
        return catalog
    if plan_server_url is not None and (plan_major := server_major(plan_server_url)) != major:
        raise PlanLoadError(f"the plan database server {describe(plan_server_url)} runs PostgreSQL {plan_major}, "
                            f"the target {major}: plan on a server of the target's major version (or leave out the "
                            "plan database URL to use the sandbox)")
    if progress:
        progress(f"loading {len(state.statements)} statement(s) from {len(state.files)} file(s) into a plan database")
    secret = password_of(plan_server_url) if plan_server_url else None
    try:
        with plan_database(major, state.roles, plan_server_url, progress) as (url, admin_url), connect(url) as conn:
            loaded = load_state_into(conn, state, progress, admin_url=admin_url)
            catalog = introspect(conn, include_schemas=include_schemas, exclude_schemas=exclude_schemas,
                                 progress=progress, phase="reading the desired catalog")
            loaded.apply_to(catalog)
            # What the administrator created for the state (event triggers, publications for all tables) is owned
            # as if the loader had: "unspecified" (diff/owners.py), like everything the loader created.
            if admin_url is not None and (admin := conninfo_to_dict(admin_url).get("user")):
                catalog = _renamed_role(catalog, admin, LOADER)
            catalog = _renamed_role(catalog, conn.info.user, LOADER)
    except psycopg.Error as exc:
        raise PlanLoadError(redact(f"plan database failed: {exc}", secret)) from None
    with _cache_lock:
        _cache[key] = catalog
    _disk_put(key, {**catalog.to_dict(), "fingerprint": catalog.fingerprint()})
    return catalog


def _renamed_role(catalog: Catalog, old: str, new: str) -> Catalog:
    """The catalog with role `old` as `new` wherever the catalog names it: owners, privileges (grantee and
    grantor), default privileges, the reading role.

    Whatever role loaded the state (the sandbox's loader, a dedicated planning server's throw-away login
    role or the operator's own role), the same state gives the same desired catalog and fingerprint, so a
    plan saved with one plan server is applied with another."""
    if old == new:
        return catalog
    old_r, new_r = rendered_role(old), rendered_role(new)

    def acl(items: list[str]) -> list[str]:
        out = []
        for item in items:
            grantee, eq, rest = item.partition("=")
            privs, slash, grantor = rest.rpartition("/")
            out.append(f"{new_r if grantee == old_r else grantee}{eq}{privs}{slash}"
                       f"{new_r if slash and grantor == old_r else grantor}")
        return sorted(out)

    renamed = Catalog(server_version=catalog.server_version, role=new)
    for obj in catalog.objects.values():
        attrs, key = obj.attrs, obj.key
        if attrs.get("owner") == old:
            attrs = {**attrs, "owner": new}
        if isinstance(attrs.get("acl"), list) and any(old_r in item for item in attrs["acl"]):
            attrs = {**attrs, "acl": acl(attrs["acl"])}
        if obj.kind == "defacl" and attrs.get("role") == old:
            attrs, key = {**attrs, "role": new}, new + key[len(old):]
        renamed.add(obj if attrs is obj.attrs and key == obj.key else replace(obj, attrs=attrs, key=key))
    return renamed


def _cache_key(state: DesiredState, major: int, plan_server_url: str | None, include: list[str] | None,
               exclude: list[str] | None) -> str:
    if plan_server_url is None:
        from schema_pipeline.sandbox import find_server_binaries

        server = f"sandbox {find_server_binaries(major).version} {os.environ.get(EXTENSIONS_ENV, '')}"
    else:
        server = describe(plan_server_url)
    parts = [state.fingerprint, server, ",".join(include or []), ",".join(exclude or []), _code_version()]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _code_version() -> str:
    """A hash of the code that loads and reads a plan database (catalog/, state/, this module): a cached
    catalog is only valid for the code that made it."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        package = Path(__file__).parent
        h = hashlib.sha256()
        for path in [*sorted((package / "catalog").glob("*.py")), *sorted((package / "state").glob("*.py")),
                     Path(__file__)]:
            h.update(path.read_bytes())
        _CODE_VERSION = h.hexdigest()[:16]
    return _CODE_VERSION


_CODE_VERSION: str | None = None


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
