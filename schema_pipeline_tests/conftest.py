"""Shared fixtures: a real PostgreSQL server and throw-away databases on it.

The server is `SCHEMA_PIPELINE_TEST_DSN` (default: the local server on 127.0.0.1:5432).
No database is mocked anywhere in this suite.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from schema_pipeline.db import database_name, with_database

# Keep the suite's desired-catalog cache out of the user's home and fresh for every run.
os.environ.setdefault("SCHEMA_PIPELINE_CACHE_DIR", tempfile.mkdtemp(prefix="schema_pipeline_cache_"))

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pick_server() -> str:
    """SCHEMA_PIPELINE_TEST_DSN, else the local server on 5432, else the embedded PostgreSQL."""
    if os.environ.get("SCHEMA_PIPELINE_TEST_DSN"):
        return os.environ["SCHEMA_PIPELINE_TEST_DSN"]
    try:
        with psycopg.connect(LOCAL_SERVER, connect_timeout=3):
            return LOCAL_SERVER
    except psycopg.OperationalError:
        from schema_pipeline.embedded import embedded_server_url

        return embedded_server_url()


ADMIN_URL = _pick_server()


def db_url(name: str) -> str:
    """URL of database `name` on the test server."""
    return with_database(ADMIN_URL, name)


def create_database(name: str | None = None, sql_text: str | None = None) -> str:
    name = name or f"sp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    url = db_url(name)
    if sql_text:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql_text)
    return url


def drop_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def admin_url() -> str:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.exit(f"test PostgreSQL server not reachable at SCHEMA_PIPELINE_TEST_DSN: {exc}", returncode=1)
    return ADMIN_URL


@pytest.fixture
def fresh_db(admin_url: str) -> Iterator[str]:
    """URL of a new empty database, dropped after the test."""
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def make_db(admin_url: str) -> Iterator:
    """Factory: make_db(sql_text) -> URL of a new database loaded with sql_text."""
    urls: list[str] = []

    def _make(sql_text: str | None = None) -> str:
        url = create_database(sql_text=sql_text)
        urls.append(url)
        return url

    yield _make
    for url in urls:
        drop_database(url)
