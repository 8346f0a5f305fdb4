"""Rehearsal: run the plan on a throw-away, data-free copy of the target's schema first.

The copy is made with `pg_dump --schema-only` of the target loaded by `psql` into a temporary
database on the plan server. If the tools or the temporary database are unavailable, the
rehearsal is skipped with a progress message (the real apply is still transactional).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schema_pipeline import plandb
from schema_pipeline.apply.executor import ApplyOptions, run_plan
from schema_pipeline.apply.history import BOOKKEEPING_SCHEMA
from schema_pipeline.db import connect, password_of, redact
from schema_pipeline.errors import ApplyError, ConnectionFailed, PlanLoadError
from schema_pipeline.plan.model import Plan
from schema_pipeline.progress import ProgressFn, report, stop

# Given the rehearsal copy's URL: None when it converged, else a description of what is left.
VerifyFn = Callable[[str], str | None]
TOOL_TIMEOUT_S = 300
REHEARSAL_PHASE = "rehearsal"  # counted progress: copy, run, verify


class RehearsalFailed(ApplyError):
    """The plan failed on the copy of the target, or did not converge there; the target is untouched."""


@dataclass
class RehearsalResult:
    ran: bool
    duration_s: float
    note: str = ""


def _major(version_text: str) -> int:
    """'pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)' -> 15."""
    m = re.search(r"\)\s*(\d+)", version_text) or re.search(r"(\d+)", version_text)
    return int(m.group(1)) if m else 0


@functools.lru_cache(maxsize=8)
def find_tools(server_major: int) -> tuple[str, str] | None:
    """pg_dump and psql able to dump a server of `server_major` (PATH, then usual install places)."""
    dirs: list[str | None] = [None]
    dirs += [f"/usr/lib/postgresql/{server_major}/bin", f"/usr/pgsql-{server_major}/bin",
             f"/opt/homebrew/opt/postgresql@{server_major}/bin", f"/usr/local/opt/postgresql@{server_major}/bin"]
    path_dump = shutil.which("pg_dump")
    if path_dump:
        dirs[0] = str(Path(path_dump).parent)
    for d in dict.fromkeys(x for x in dirs if x):
        found = _tools_in(d, server_major)
        if found:
            return found
    embedded = _embedded_bin()
    if embedded and embedded not in dirs:
        return _tools_in(embedded, server_major)
    return None


def _embedded_bin() -> str | None:
    """The bin directory of the embedded PostgreSQL (pgserver), if installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError:  # pragma: no cover
            return None
    return str(Path(pgserver.__file__).parent / "pginstall" / "bin")


def _tools_in(directory: str, server_major: int) -> tuple[str, str] | None:
    pg_dump, psql = shutil.which("pg_dump", path=directory), shutil.which("psql", path=directory)
    if not (pg_dump and psql):
        return None
    try:
        out = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (pg_dump, psql) if _major(out) >= server_major else None


def _tool_args(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password (never on a command line) and the env carrying it."""
    params = {k: v for k, v in conninfo_to_dict(url).items() if v is not None}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**params), env


def copy_schema(target_url: str, copy_url: str, tools: tuple[str, str], lock_wait_timeout: str = "10s") -> None:
    """Dump the target's schema (no data, no bookkeeping, no subscriptions; publications are managed,
    so they are copied) into `copy_url`.

    pg_dump's share locks on the target wait at most `lock_wait_timeout` ("0": no limit)."""
    pg_dump, psql = tools
    secrets = [password_of(target_url), password_of(copy_url)]
    src, src_env = _tool_args(target_url)
    wait = [f"--lock-wait-timeout={lock_wait_timeout}"] if lock_wait_timeout.strip() not in ("0", "") else []
    dump = subprocess.run([pg_dump, "--schema-only", "--no-subscriptions", *wait,
                           f"--exclude-schema={BOOKKEEPING_SCHEMA}", f"--dbname={src}"],
                          capture_output=True, env=src_env, timeout=TOOL_TIMEOUT_S)
    if dump.returncode != 0:
        raise PlanLoadError(redact("pg_dump failed: " + dump.stderr.decode(errors="replace").strip(), *secrets))
    _preinstall_extensions(target_url, copy_url)
    dst, dst_env = _tool_args(copy_url)
    load = subprocess.run([psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", f"--dbname={dst}"],
                          input=dump.stdout, capture_output=True, env=dst_env, timeout=TOOL_TIMEOUT_S)
    if load.returncode != 0:
        raise PlanLoadError(redact("psql failed: " + load.stderr.decode(errors="replace").strip(), *secrets))
    _populate_matviews(target_url, copy_url)


def _populate_matviews(target_url: str, copy_url: str) -> None:
    """pg_dump --schema-only leaves every materialized view unpopulated; populate in the copy
    those that are populated in the target (on empty tables this is instant)."""
    query = ("SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews WHERE ispopulated "
             "ORDER BY 1")
    with connect(target_url) as src:
        names = [r[0] for r in src.execute(query).fetchall()]
    if not names:
        return
    with connect(copy_url) as dst:
        pending = names
        while pending:  # a view may read another one: retry until no progress
            failed = []
            for name in pending:
                try:
                    dst.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(name)))
                except psycopg.Error:
                    failed.append(name)
            if len(failed) == len(pending):
                return
            pending = failed


def _preinstall_extensions(target_url: str, copy_url: str) -> None:
    """Create the target's extensions in the copy at the target's versions.

    pg_dump writes `CREATE EXTENSION IF NOT EXISTS` without a version, which would install
    the default version; a plan that moves an extension to another version must be
    rehearsed from the version the target really has. Extensions whose schema the dump
    creates itself are left to the dump.
    """
    with connect(target_url) as src:
        rows = src.execute("SELECT e.extname, e.extversion, n.nspname FROM pg_extension e "
                           "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'").fetchall()
    if not rows:
        return
    with connect(copy_url) as dst:
        schemas = {r[0] for r in dst.execute("SELECT nspname FROM pg_namespace").fetchall()}
        for name, version, schema in rows:
            if schema not in schemas:
                continue
            with contextlib.suppress(psycopg.Error):
                dst.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {} VERSION {}").format(
                    sql.Identifier(name), sql.Identifier(schema), sql.Literal(version)))


def rehearse(target_url: str, plan: Plan, verify: VerifyFn, *, plan_server_url: str | None = None,
             options: ApplyOptions | None = None, progress: ProgressFn | None = None,
             target_fingerprint: Callable[[str], str] | None = None) -> RehearsalResult:
    """Apply `plan` to a schema-only copy of the target; raise RehearsalFailed when it fails.

    `verify(copy_url)` re-plans the copy against the desired catalog. `target_fingerprint(url)`
    (optional) checks that the copy is faithful; a mismatch is reported, not fatal.
    """
    started = time.monotonic()

    def skip(reason: str) -> RehearsalResult:
        stop(progress, REHEARSAL_PHASE)
        if progress:
            progress(f"rehearsal skipped: {reason}")
        return RehearsalResult(False, time.monotonic() - started, reason)

    if plan.is_empty:
        return RehearsalResult(False, 0.0, "empty plan")
    with connect(target_url) as conn:
        major = conn.info.server_version // 10000
    tools = find_tools(major)
    if tools is None:
        return skip(f"no pg_dump/psql for PostgreSQL {major} found on PATH or next to the server")
    server = plan_server_url or target_url
    if progress:
        progress("rehearsing the plan on a schema-only copy of the target")
    try:
        with plandb.temporary_database(server, prefix="schema_pipeline_rehearsal_") as copy_url:
            rehearsal_options = options or ApplyOptions()
            report(progress, REHEARSAL_PHASE, 0, 3, unit="phases", detail="copying the target's schema")
            try:
                copy_schema(target_url, copy_url, tools, rehearsal_options.lock_timeout)
            except (PlanLoadError, subprocess.TimeoutExpired, OSError) as exc:
                return skip(f"could not copy the target's schema: {_first_lines(str(exc))}")
            note = ""
            if target_fingerprint and plan.target_fingerprint and \
                    target_fingerprint(copy_url) != plan.target_fingerprint:
                note = "the schema-only copy differs from the target's catalog; rehearsal is approximate"
                if progress:
                    progress(note)
            report(progress, REHEARSAL_PHASE, 1, 3, unit="phases",
                   detail=f"running {len(plan.steps)} step(s) on the copy")
            try:
                run_plan(copy_url, plan, rehearsal_options)
            except ApplyError as exc:
                raise RehearsalFailed(f"rehearsal failed, the target was not touched: {exc}",
                                      step_index=exc.step_index, sql=exc.sql) from None
            report(progress, REHEARSAL_PHASE, 2, 3, unit="phases", detail="verifying the copy")
            try:
                left = verify(copy_url)
            except psycopg.Error as exc:  # the copy's connection was lost while reading it back
                raise RehearsalFailed("rehearsal failed, the target was not touched: the connection to the "
                                      f"rehearsal copy failed while verifying it: {_first_lines(str(exc))}") from None
            if left:
                raise RehearsalFailed("rehearsal failed, the target was not touched: after the plan ran on a "
                                      f"copy of the target, a re-plan is not empty:\n{left}")
    except (plandb.PlanDatabaseUnavailable, ConnectionFailed) as exc:
        return skip(str(exc))
    report(progress, REHEARSAL_PHASE, 3, 3, unit="phases", detail="the plan converged on the copy")
    return RehearsalResult(True, time.monotonic() - started, note)


def _first_lines(text: str, n: int = 3) -> str:
    return " / ".join(text.strip().splitlines()[:n])
