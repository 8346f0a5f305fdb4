"""Helpers shared by the apply, fault, plan-artifact, CLI and secrets tests (no tests here)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from schema_pipeline.apply.executor import APPLY_APPLICATION_NAME
from schema_pipeline.plan.model import Step

REPO = Path(__file__).resolve().parents[1]
CLI = str(REPO / ".venv" / "bin" / "schema-pipeline")


def write_state(root: Path, files: dict[str, str]) -> Path:
    """Write state files under `root` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def step(sql: str, name: str = "public.t", kind: str = "table", action: str = "alter",
         transactional: bool = True) -> Step:
    return Step(sql=sql, object_kind=kind, object_name=name, action=action, transactional=transactional)


def scalar(url: str, sql: str, params: tuple = ()) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        if cur.description is None:  # a command, not a query
            return None
        row = cur.fetchone()
        return row[0] if row else None


def relations(url: str) -> set[str]:
    """Tables, views and indexes outside the system and bookkeeping schemas."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'v', 'i', 'p', 'm') AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast', 'schema_pipeline')").fetchall()
    return {r[0] for r in rows}


def columns(url: str, table: str, schema: str = "public") -> set[str]:
    """Column names of `schema.table` in the database at `url`."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = %s AND table_name = %s", (schema, table))
        return {r[0] for r in rows}


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def apply_backend(url: str, *, waiting_on_lock: bool = False, query_prefix: str | None = None) -> int | None:
    """pid of the apply's backend (optionally: only while it waits on a lock / runs a given query)."""
    sql = ("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database() "
           "AND state = 'active'")
    params: list = [APPLY_APPLICATION_NAME]
    if waiting_on_lock:
        sql += " AND wait_event_type = 'Lock'"
    if query_prefix:
        sql += " AND query LIKE %s"
        params.append(query_prefix + "%")
    return scalar(url, sql, tuple(params))  # type: ignore[return-value]


def kill_when(url: str, find: Callable[[], int | None], timeout: float = 30.0) -> threading.Thread:
    """Start a thread that terminates the backend `find()` returns, as soon as it appears."""
    def run() -> None:
        pid = wait_for(find, timeout)
        scalar(url, "SELECT pg_terminate_backend(%s)", (pid,))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class Collect:
    """A progress callback that keeps the messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)

    def text(self) -> str:
        return "\n".join(self.messages)
