"""Who blocks us: watch `pg_blocking_pids` of the apply's backend from a second connection."""

from __future__ import annotations

import threading
from contextlib import suppress

import psycopg

from schema_pipeline.db import connect

_DETAILS_SQL = """
SELECT pid, usename, application_name, state,
       extract(epoch FROM now() - xact_start)::int AS xact_age_s
FROM pg_stat_activity WHERE pid = ANY(%s) ORDER BY pid
"""


def describe_pids(conn: psycopg.Connection, pids: list[int]) -> dict[int, str]:
    """Short, secret-free descriptions of sessions (never their query text)."""
    out = {pid: f"pid {pid}" for pid in pids}
    with suppress(psycopg.Error):
        for pid, user, app, state, age in conn.execute(_DETAILS_SQL, (pids,)).fetchall():
            bits = [f"user {user}"] if user else []
            if app:
                bits.append(f"application {app!r}")
            if state:
                bits.append(state + (f" in a transaction open for {age}s" if age is not None else ""))
            out[pid] = f"pid {pid} ({', '.join(bits)})" if bits else f"pid {pid}"
    return out


_SESSION_SQL = """
SELECT usename, application_name, state, extract(epoch FROM now() - backend_start)::int AS running_s,
       extract(epoch FROM now() - xact_start)::int AS xact_age_s
FROM pg_stat_activity WHERE pid = %s
"""


def describe_session(conn: psycopg.Connection, pid: int) -> str:
    """One session, for "who are we waiting for": pid, user, application, how long it has been
    connected (an apply's session lives as long as the apply), what it does now; never its query text."""
    try:
        row = conn.execute(_SESSION_SQL, (pid,)).fetchone()
    except psycopg.Error:
        row = None
    if row is None:
        return f"pid {pid}"
    user, app, state, running, xact_age = row
    bits = [f"user {user}"] if user else []
    if app:
        bits.append(f"application {app!r}")
    if running is not None:
        bits.append(f"running for {running}s")
    if state:
        bits.append(state + (f" in a transaction open for {xact_age}s" if xact_age is not None else ""))
    return f"pid {pid} ({', '.join(bits)})" if bits else f"pid {pid}"


class BlockerWatch:
    """Poll the backends blocking `pid` while steps run; remember who blocked during this attempt."""

    def __init__(self, url: str, pid: int, interval_s: float = 0.1):
        self.url, self.pid, self.interval_s = url, pid, interval_s
        self.seen: dict[int, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BlockerWatch:
        self._thread = threading.Thread(target=self._run, name="schema-pipeline-blockers", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        with self._lock:
            self.seen = {}

    def blockers(self) -> dict[int, str]:
        with self._lock:
            return dict(self.seen)

    def _run(self) -> None:
        try:
            conn = connect(self.url, application_name="schema_pipeline_watch")
        except Exception:  # watching is best effort; the step error is still reported
            return
        with conn, suppress(psycopg.Error):
            while not self._stop.wait(self.interval_s):
                pids = conn.execute("SELECT pg_blocking_pids(%s)", (self.pid,)).fetchone()[0] or []
                if pids:
                    details = describe_pids(conn, list(pids))
                    with self._lock:
                        self.seen.update(details)


def lock_holders(conn: psycopg.Connection, relations: list[tuple[str | None, str]]) -> list[int]:
    """Sessions holding a lock on any of `relations` (fallback when the watcher saw nothing)."""
    if not relations:
        return []
    sql = """
    SELECT DISTINCT l.pid FROM pg_locks l
    JOIN unnest(%s::text[], %s::text[]) AS t(sch, rel)
      ON l.relation = CASE WHEN t.sch IS NULL THEN to_regclass(quote_ident(t.rel))
                           ELSE to_regclass(quote_ident(t.sch) || '.' || quote_ident(t.rel)) END
    WHERE l.granted AND l.pid <> pg_backend_pid() AND l.database = (SELECT oid FROM pg_database
                                                                     WHERE datname = current_database())
    ORDER BY 1
    """
    with suppress(psycopg.Error):
        rows = conn.execute(sql, ([r[0] for r in relations], [r[1] for r in relations])).fetchall()
        return [r[0] for r in rows]
    return []
