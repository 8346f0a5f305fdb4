"""Fault tolerance of the apply path, each against the real server (DESIGN.md §8, issue 4).

Timeouts here are generous upper bounds that only keep a broken build from hanging.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from schema_pipeline import engine
from schema_pipeline.apply import history
from schema_pipeline.apply.executor import ApplyOptions, execute_plan
from schema_pipeline.errors import ApplyError
from schema_pipeline.plan.artifact import PlanOutdated
from schema_pipeline.plan.model import Plan
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import (
    Collect,
    apply_backend,
    kill_when,
    relations,
    scalar,
    step,
    write_state,
)


def _saved_plan(url: str, steps) -> Plan:
    """A hand-made plan bound to the target's current catalog."""
    current = engine.current_catalog(url)
    return Plan(steps, target_fingerprint=current.fingerprint(), desired_fingerprint="unused")


def test_connection_killed_inside_a_transactional_group_leaves_target_as_before(make_db) -> None:
    url = make_db("CREATE TABLE keep (id int)")
    before = engine.current_catalog(url)
    p = _saved_plan(url, [step("CREATE TABLE a (id int)", "public.a", action="create"),
                          step("ALTER TABLE keep ADD COLUMN v int", "public.keep"),
                          step("SELECT pg_sleep(60)", "public.slow"),
                          step("CREATE TABLE b (id int)", "public.b", action="create")])
    killer = kill_when(url, lambda: apply_backend(url, query_prefix="SELECT pg_sleep(60)"))
    with pytest.raises(ApplyError) as info:
        engine.apply_plan(url, p, allow_hazards="all", rehearse=False, release_info={"commit": "c1"})
    killer.join(10)
    message = str(info.value)
    assert "step 3/4 lost its database connection" in message and "no step of this group was applied" in message
    assert engine.current_catalog(url) == before
    row = history.releases(url)[0]
    assert row["status"] == "failed" and "step 3/4" in row["error"] and row["info"]["applied_steps"] == 0


def _block_table_writes(url: str) -> psycopg.Connection:
    """An open transaction that wrote to public.t: CREATE INDEX CONCURRENTLY must wait for it."""
    blocker = psycopg.connect(url)
    blocker.execute("INSERT INTO t VALUES (0, 0)")
    return blocker


def test_interrupted_concurrent_index_build_leaves_an_invalid_index(make_db) -> None:
    url = make_db("CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
    blocker = _block_table_writes(url)
    p = Plan([step("CREATE TABLE a (id int)", "public.a", action="create"),
              step("CREATE INDEX CONCURRENTLY t_v ON public.t (v)", "public.t_v", "index", "create",
                   transactional=False)])
    try:
        killer = kill_when(url, lambda: apply_backend(url, waiting_on_lock=True))
        with pytest.raises(ApplyError) as info:
            execute_plan(url, p, ApplyOptions(lock_timeout="60s"))
        killer.join(10)
    finally:
        blocker.rollback()
        blocker.close()
    message = str(info.value)
    assert "step 2/2 lost its database connection" in message and "INVALID index" in message
    assert "Steps 1-1 were applied" in message and "public.a" in relations(url)
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass") is False


def test_next_plan_repairs_an_invalid_index(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
    blocker = _block_table_writes(url)
    p = Plan([step("CREATE INDEX CONCURRENTLY t_v ON public.t (v)", "public.t_v", "index", "create",
                   transactional=False)])
    try:
        killer = kill_when(url, lambda: apply_backend(url, waiting_on_lock=True))
        with pytest.raises(ApplyError):
            execute_plan(url, p, ApplyOptions(lock_timeout="60s"))
        killer.join(10)
    finally:
        blocker.rollback()
        blocker.close()
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass") is False
    state = load_state(str(write_state(tmp_path / "s", {
        "t.sql": "CREATE TABLE public.t (id int, v int);\nCREATE INDEX t_v ON public.t (v);\n"})))
    assert any(s.object_name == "public.t_v" for s in engine.plan(url, state).plan.steps)
    result = engine.apply(url, state, allow_hazards="all")
    assert result.converged
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass") is True


def test_lock_held_by_a_long_transaction(make_db) -> None:
    """Apply waits at most lock_timeout per attempt, never queues others for longer, names the blocker."""
    url = make_db("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    blocker = psycopg.connect(url, application_name="long_report")
    blocker.execute("SELECT count(*) FROM t")  # ACCESS SHARE held by an open transaction
    blocker_pid = blocker.info.backend_pid
    stop, durations, errors = threading.Event(), [], []

    def other_session() -> None:  # plain readers arriving while our ALTER is queued
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '20s'")
            while not stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute("SELECT count(*) FROM t")
                except psycopg.Error as exc:
                    errors.append(exc)
                durations.append(time.monotonic() - started)
                time.sleep(0.02)

    reader = threading.Thread(target=other_session, daemon=True)
    reader.start()
    progress = Collect()
    p = Plan([step("CREATE TABLE a (id int)", "public.a", action="create"),
              step("ALTER TABLE t ADD COLUMN v int", "public.t")])
    try:
        with pytest.raises(ApplyError) as info:
            execute_plan(url, p, ApplyOptions(lock_timeout="500ms", lock_retries=2, retry_backoff_s=0.2),
                         progress)
        blocker.execute("SELECT count(*) FROM t")  # the blocker itself was never waiting on us
    finally:
        stop.set()
        reader.join(30)
        blocker.rollback()
        blocker.close()
    message = str(info.value)
    assert f"pid {blocker_pid}" in message and "long_report" in message
    assert "step 2/2 could not get its lock" in message and "3 attempt(s)" in message
    assert "lock timeout" in message and "500ms" in message
    assert progress.text().count("retrying in") == 2
    assert not errors and durations
    assert max(durations) < 10  # bounded by lock_timeout (0.5s) per attempt, far from the readers' 20s
    assert "public.a" not in relations(url)
    assert scalar(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'") == 1


def test_lock_timeout_then_success_after_blocker_leaves(make_db) -> None:
    url = make_db("CREATE TABLE t (id int)")
    blocker = psycopg.connect(url)
    blocker.execute("SELECT count(*) FROM t")
    threading.Timer(0.8, blocker.rollback).start()
    progress = Collect()
    try:
        execute_plan(url, Plan([step("ALTER TABLE t ADD COLUMN v int")]),
                     ApplyOptions(lock_timeout="200ms", lock_retries=6, retry_backoff_s=0.1, max_backoff_s=0.4),
                     progress)
    finally:
        time.sleep(0.9)
        blocker.close()
    assert "retrying in" in progress.text()
    assert scalar(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'") == 2


def test_concurrent_index_retry_drops_its_invalid_leftover(make_db) -> None:
    url = make_db("CREATE TABLE t (id int, v int)")
    blocker = _block_table_writes(url)

    def release_blocker() -> None:  # after the first build attempt timed out and left an INVALID index
        time.sleep(1.0)
        blocker.rollback()

    threading.Thread(target=release_blocker, daemon=True).start()
    progress = Collect()
    try:
        execute_plan(url, Plan([step("CREATE INDEX CONCURRENTLY t_v ON public.t (v)", "public.t_v", "index",
                                     "create", transactional=False)]),
                     ApplyOptions(lock_timeout="300ms", lock_retries=8, retry_backoff_s=0.2, max_backoff_s=0.5),
                     progress)
    finally:
        time.sleep(0.2)
        blocker.close()
    assert "retrying in" in progress.text()
    assert "dropping the INVALID index" in progress.text(), progress.text()
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass") is True


def test_ten_concurrent_applies_serialize_and_converge(make_db, tmp_path) -> None:
    url = make_db()
    state = load_state(str(write_state(tmp_path / "s", {"a.sql": (
        "CREATE TABLE public.items (id bigint PRIMARY KEY, name text NOT NULL);\n"
        "CREATE INDEX items_name ON public.items (name);\n"
        "CREATE VIEW public.item_names AS SELECT name FROM public.items;\n")})))
    barrier = threading.Barrier(10)
    results, failures = [], []

    def worker() -> None:
        barrier.wait(30)
        try:
            results.append(engine.apply(url, state, allow_hazards="all", release_info={"commit": "c1"}))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not failures, failures
    assert len(results) == 10 and all(r.converged for r in results)
    assert sum(1 for r in results if not r.plan.is_empty) == 1  # the others found nothing left to do
    assert engine.plan(url, state).plan.is_empty
    rows = history.releases(url)
    assert [r["status"] for r in rows] == ["succeeded"]


def test_ten_concurrent_applies_of_one_saved_plan(make_db) -> None:
    """Serialized by the advisory lock: one applies, nine see the target changed and refuse cleanly."""
    url = make_db("CREATE TABLE t (id int)")
    p = _saved_plan(url, [step("ALTER TABLE t ADD COLUMN v int"),
                          step("CREATE TABLE audit (id int)", "public.audit", action="create")])
    barrier = threading.Barrier(10)
    outcomes: list[object] = []

    def worker() -> None:
        barrier.wait(30)
        try:
            outcomes.append(engine.apply_plan(url, p, allow_hazards="all", rehearse=False))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    refused = [o for o in outcomes if isinstance(o, PlanOutdated)]
    applied = [o for o in outcomes if isinstance(o, engine.ApplyResult)]
    assert len(outcomes) == 10 and len(applied) == 1 and len(refused) == 9, outcomes
    assert "public.audit" in relations(url)


def test_statement_failing_halfway_rolls_back_the_group(make_db) -> None:
    url = make_db("CREATE TABLE keep (id int)")
    before = engine.current_catalog(url)
    p = _saved_plan(url, [step("CREATE TABLE a (id int)", "public.a", action="create"),
                          step("ALTER TABLE keep ADD COLUMN broken nosuchtype", "public.keep"),
                          step("CREATE TABLE b (id int)", "public.b", action="create")])
    with pytest.raises(ApplyError) as info:
        engine.apply_plan(url, p, allow_hazards="all", rehearse=False, release_info={"commit": "c1"})
    message = str(info.value)
    assert "step 2/3 failed (alter table public.keep)" in message
    assert 'type "nosuchtype" does not exist' in message
    assert "ALTER TABLE keep ADD COLUMN broken nosuchtype" in message
    assert "rolled back" in message
    assert engine.current_catalog(url) == before
    row = history.releases(url)[0]
    assert row["status"] == "failed" and "nosuchtype" in row["error"]


def test_connection_killed_in_a_later_group_then_the_next_apply_completes(make_db, tmp_path) -> None:
    """Committed groups stay, the interrupted group is rolled back, and a re-apply of the state converges."""
    url = make_db("CREATE TABLE t (id int, v int)")
    p = _saved_plan(url, [step("CREATE TABLE a (id int)", "public.a", action="create"),
                          step("CREATE INDEX CONCURRENTLY t_v ON public.t (v)", "public.t_v", "index", "create",
                               transactional=False),
                          step("CREATE TABLE b (id int)", "public.b", action="create"),
                          step("SELECT pg_sleep(60)", "public.slow"),
                          step("CREATE TABLE c (id int)", "public.c", action="create")])
    killer = kill_when(url, lambda: apply_backend(url, query_prefix="SELECT pg_sleep(60)"))
    with pytest.raises(ApplyError) as info:
        engine.apply_plan(url, p, allow_hazards="all", rehearse=False, release_info={"commit": "c1"})
    killer.join(10)
    assert "step 4/5 lost its database connection" in str(info.value)
    assert "Steps 1-2 were applied (committed) before" in str(info.value)
    assert {"public.a", "public.t", "public.t_v"} <= relations(url) and "public.b" not in relations(url)
    # the advisory lock died with the connection: the next apply is not blocked
    state = load_state(str(write_state(tmp_path / "s", {"s.sql": (
        "CREATE TABLE public.t (id int, v int);\nCREATE INDEX t_v ON public.t (v);\n"
        "CREATE TABLE public.a (id int);\nCREATE TABLE public.b (id int);\nCREATE TABLE public.c (id int);\n")})))
    result = engine.apply(url, state, allow_hazards="all")
    assert result.converged and not result.plan.is_empty
    assert {"public.b", "public.c"} <= relations(url)
