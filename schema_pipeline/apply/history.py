"""Bookkeeping: one row per apply in `<BOOKKEEPING_SCHEMA>.releases` of the target.

The catalog code excludes that schema from every diff. Rows are written in their own
transaction after the apply (succeeded) or after its failure (failed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from schema_pipeline.db import connect

try:
    from schema_pipeline.catalog import BOOKKEEPING_SCHEMA
except ImportError:  # pragma: no cover - older catalog package
    BOOKKEEPING_SCHEMA = "schema_pipeline"

RELEASES_TABLE = "releases"

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.{table} (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    status              text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    error               text,
    commit              text,
    approved_by         text,
    plan_fingerprint    text NOT NULL,
    target_fingerprint  text,
    desired_fingerprint text,
    steps               jsonb NOT NULL,
    timings             jsonb NOT NULL DEFAULT '{{}}',
    info                jsonb NOT NULL DEFAULT '{{}}',
    applied_by          text NOT NULL DEFAULT current_user
);
"""


@dataclass
class ReleaseRecord:
    """One apply as recorded in the target."""

    started_at: datetime
    finished_at: datetime
    status: str
    plan_fingerprint: str
    steps: list[dict[str, Any]]
    target_fingerprint: str = ""
    desired_fingerprint: str = ""
    error: str | None = None
    commit: str | None = None
    approved_by: str | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def ensure_table(conn: psycopg.Connection) -> None:
    """Create the bookkeeping schema and table if missing (idempotent)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                          (f'"{BOOKKEEPING_SCHEMA}"."{RELEASES_TABLE}"',)).fetchone()[0]
    if not exists:
        conn.execute(sql.SQL(_DDL).format(schema=_ident(BOOKKEEPING_SCHEMA), table=_ident(RELEASES_TABLE)))


def record_release(url: str, record: ReleaseRecord) -> int:
    """Insert `record` in its own transaction; returns its id."""
    with connect(url, autocommit=False, application_name="schema_pipeline_history") as conn:
        conn.execute("SET LOCAL lock_timeout = '10s'")
        ensure_table(conn)
        row = conn.execute(
            sql.SQL("INSERT INTO {}.{} (started_at, finished_at, status, error, commit, approved_by, "
                    "plan_fingerprint, target_fingerprint, desired_fingerprint, steps, timings, info) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id")
            .format(_ident(BOOKKEEPING_SCHEMA), _ident(RELEASES_TABLE)),
            (record.started_at, record.finished_at, record.status, record.error, record.commit,
             record.approved_by, record.plan_fingerprint, record.target_fingerprint, record.desired_fingerprint,
             json.dumps(record.steps), json.dumps(record.timings), json.dumps(record.info, default=str)),
        ).fetchone()
        conn.commit()
        return int(row[0])


def releases(url: str, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent releases recorded in the target, newest first ([] when none)."""
    with connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                              (f'"{BOOKKEEPING_SCHEMA}"."{RELEASES_TABLE}"',)).fetchone()[0]
        if not exists:
            return []
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute(sql.SQL("SELECT * FROM {}.{} ORDER BY id DESC LIMIT %s")
                           .format(_ident(BOOKKEEPING_SCHEMA), _ident(RELEASES_TABLE)), (limit,)).fetchall()
