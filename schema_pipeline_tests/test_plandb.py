"""Loading the desired state into the throw-away plan database (real PostgreSQL)."""

from __future__ import annotations

import psycopg
import pytest

from schema_pipeline import plandb
from schema_pipeline.errors import StateError
from schema_pipeline.state.model import DesiredState, Statement


def _state(*stmts: tuple[str, str, int], session: set[int] = frozenset()) -> DesiredState:
    statements = [Statement(sql=s, file=f, line=ln, session_only=i in session) for i, (s, f, ln) in enumerate(stmts)]
    files = sorted({f for _, f, _ in stmts})
    return DesiredState(root="/x", files=files, statements=statements, fingerprint=str(hash(tuple(stmts))))


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT schemaname || '.' || tablename FROM pg_tables "
                            "WHERE schemaname NOT IN ('pg_catalog','information_schema')").fetchall()
    return {r[0] for r in rows}


def test_out_of_order_statements_load(fresh_db: str) -> None:
    state = _state(
        ("CREATE VIEW app.v AS SELECT id FROM app.t", "a.sql", 1),
        ("CREATE TABLE app.t (id int PRIMARY KEY, d int DEFAULT app.f())", "a.sql", 2),
        ("CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'select 1'", "b.sql", 1),
        ("CREATE SCHEMA app", "b.sql", 3),
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        plandb.load_state_into(conn, state)
    assert _tables(fresh_db) == {"app.t"}


def test_search_path_of_a_deferred_statement_is_restored(fresh_db: str) -> None:
    state = _state(
        ("SET search_path = other", "a.sql", 1),
        ("CREATE TABLE t2 (id int REFERENCES t1)", "a.sql", 2),
        ("CREATE TABLE t1 (id int PRIMARY KEY)", "a.sql", 3),
        ("CREATE SCHEMA other", "0.sql", 1),
        session={0},
    )
    # 0.sql sorts first in a real state; here statement order is what we test
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        plandb.load_state_into(conn, state)
    assert _tables(fresh_db) == {"other.t1", "other.t2"}


def test_search_path_does_not_leak_across_files(fresh_db: str) -> None:
    state = _state(
        ("CREATE SCHEMA s", "a.sql", 1),
        ("SELECT pg_catalog.set_config('search_path', 's', false)", "a.sql", 2),
        ("CREATE TABLE t (id int)", "b.sql", 1),
        session={1},
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        plandb.load_state_into(conn, state)
    assert _tables(fresh_db) == {"public.t"}


def test_error_is_located_at_file_and_line(fresh_db: str) -> None:
    state = _state(
        ("CREATE TABLE ok (id int)", "a.sql", 1),
        ("CREATE TABLE bad (\n  id int,\n  x nosuchtype\n)", "b.sql", 10),
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn, pytest.raises(StateError) as info:
        plandb.load_state_into(conn, state)
    err = info.value
    assert (err.file, err.line) == ("b.sql", 12)
    assert "nosuchtype" in str(err) and str(err).startswith("b.sql:12: ")


def test_temporary_database_is_dropped(admin_url: str) -> None:
    with plandb.temporary_database(admin_url) as url, psycopg.connect(url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
    with psycopg.connect(admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0


def test_temporary_database_dropped_in_background(admin_url: str) -> None:
    import threading

    with plandb.temporary_database(admin_url, drop_in_background=True) as url, psycopg.connect(url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
    dropping = [t for t in threading.enumerate() if t.name == f"drop-{name}"]
    assert dropping and not dropping[0].daemon  # the interpreter waits for it at exit
    dropping[0].join(timeout=60)
    with psycopg.connect(admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0


def test_desired_catalog_is_cached_on_disk(admin_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    state = _state(("CREATE TABLE cached_t (id int PRIMARY KEY)", "a.sql", 1))
    first = plandb.desired_catalog(state, admin_url)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    plandb._cache.clear()  # a new process: only the disk cache is left

    def no_database(*args, **kwargs):
        raise AssertionError("the plan database must not be loaded again")

    monkeypatch.setattr(plandb, "plan_database", no_database)
    second = plandb.desired_catalog(state, admin_url)
    assert second.fingerprint() == first.fingerprint()
    # another state is not served from the cache
    other = _state(("CREATE TABLE other_t (id int)", "a.sql", 1))
    with pytest.raises(AssertionError, match="must not be loaded"):
        plandb.desired_catalog(other, admin_url)


def test_disk_cache_can_be_turned_off(admin_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", "off")
    state = _state(("CREATE TABLE uncached_t (id int)", "a.sql", 1))
    plandb.desired_catalog(state, admin_url)
    assert plandb._cache_dir() is None


def test_the_plan_database_is_dropped_even_when_the_target_database_is_gone(admin_url: str) -> None:
    """The drop runs from the target's database; when that session cannot serve it (the target was dropped
    WITH (FORCE) meanwhile, which terminates the drop), a maintenance database does."""
    from schema_pipeline.db import database_name
    from schema_pipeline_tests.conftest import create_database, drop_database

    target = create_database()
    with plandb.temporary_database(target) as url:
        name = database_name(url)
        drop_database(target)
        plandb._drop_database(target, name)  # what leaving the context does, now with the target gone
        with psycopg.connect(admin_url) as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0


def test_temporary_databases_left_by_a_killed_process_are_dropped_by_the_next(admin_url: str) -> None:
    import time
    import uuid

    prefix = f"sp_left_{uuid.uuid4().hex[:6]}_"
    old = f"{prefix}{int(time.time()) - plandb.LEFTOVER_AGE_S - 60:x}_{uuid.uuid4().hex[:8]}"
    recent = f"{prefix}{int(time.time()) - 60:x}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in (old, recent):
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with plandb.temporary_database(admin_url, prefix=prefix):
            pass
        with psycopg.connect(admin_url, autocommit=True) as conn:
            left = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                               (prefix,)).fetchall()}
        assert left == {recent}  # the old one is gone, the recent one (maybe still in use) kept, ours dropped
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in (old, recent):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
