"""The executor and the engine's apply path: groups, timeouts, retries, bookkeeping (real PostgreSQL)."""

from __future__ import annotations

import pytest

from schema_pipeline import engine
from schema_pipeline.apply import history
from schema_pipeline.apply.executor import ApplyOptions, execute_plan, run_plan, step_groups
from schema_pipeline.errors import ApplyError, ConfigError, HazardsNotAllowed
from schema_pipeline.plan.model import Hazard, HazardType, Plan
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import Collect, relations, scalar, step, write_state


def test_groups_split_at_non_transactional_steps() -> None:
    p = Plan([step("a"), step("b"), step("c", transactional=False), step("d"), step("e", transactional=False),
              step("f", transactional=False)])
    assert [(g.transactional, g.indices) for g in p.groups()] == [
        (True, [0, 1]), (False, [2]), (True, [3]), (False, [4]), (False, [5])]
    assert [(tx, [i for i, _ in g]) for tx, g in step_groups(p)] == [
        (True, [0, 1]), (False, [2]), (True, [3]), (False, [4]), (False, [5])]


def test_transactional_and_concurrent_steps_run(make_db) -> None:
    url = make_db("CREATE TABLE t (id int)")
    p = Plan([step("CREATE TABLE a (id int)"), step("ALTER TABLE t ADD COLUMN v int"),
              step("CREATE INDEX CONCURRENTLY t_v ON public.t (v)", "public.t_v", "index", "create",
                   transactional=False)])
    timings = execute_plan(url, p, ApplyOptions())
    assert len(timings) == 3
    assert {"public.a", "public.t", "public.t_v"} <= relations(url)
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass") is True


def test_each_step_runs_with_the_configured_timeouts(make_db) -> None:
    url = make_db()
    p = Plan([step("CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lt, "
                   "current_setting('statement_timeout') AS st")])
    execute_plan(url, p, ApplyOptions(lock_timeout="1234ms", statement_timeout="5min"))
    with __import__("psycopg").connect(url) as conn:
        assert conn.execute("SELECT lt, st FROM seen").fetchone() == ("1234ms", "5min")


def test_statement_timeout_is_reported_with_the_step(make_db) -> None:
    url = make_db()
    p = Plan([step("CREATE TABLE a (id int)"), step("SELECT pg_sleep(5)", "public.slow")])
    with pytest.raises(ApplyError) as info:
        execute_plan(url, p, ApplyOptions(statement_timeout="100ms"))
    assert "step 2/2 failed" in str(info.value) and "statement timeout" in str(info.value)
    assert "public.a" not in relations(url)


def test_invalid_timeouts_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        ApplyOptions(lock_timeout="soon")
    with pytest.raises(ConfigError):
        ApplyOptions(statement_timeout="1; DROP TABLE x")
    assert ApplyOptions().backoff(10) == ApplyOptions().max_backoff_s


def test_report_keeps_partial_progress(make_db) -> None:
    from schema_pipeline.apply.executor import ExecutionReport

    url = make_db()
    p = Plan([step("CREATE TABLE a (id int)"), step("CREATE INDEX CONCURRENTLY a_id ON a (id)", transactional=False),
              step("CREATE TABLE b (x nosuchtype)")])
    report = ExecutionReport()
    with pytest.raises(ApplyError) as info:
        run_plan(url, p, ApplyOptions(), report=report)
    assert len(report.timings) == 2 and report.attempts == [1, 1]
    assert "Steps 1-2 were applied (committed) before" in str(info.value)


def test_engine_apply_records_the_release(make_db, tmp_path) -> None:
    url = make_db()
    state = load_state(str(write_state(tmp_path / "s", {"t.sql": "CREATE TABLE public.t (id int PRIMARY KEY);"})))
    progress = Collect()
    result = engine.apply(url, state, allow_hazards="all", progress=progress,
                          release_info={"commit": "abc123", "approved_by": "alice", "environment": "test"})
    assert result.converged and result.applied_steps >= 1 and result.release_id
    rows = history.releases(url)
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "succeeded" and row["error"] is None
    assert (row["commit"], row["approved_by"]) == ("abc123", "alice")
    assert row["plan_fingerprint"] == result.plan.fingerprint()
    assert row["desired_fingerprint"] == result.plan.desired_fingerprint
    assert row["steps"][0]["sql"] == result.plan.steps[0].sql
    assert row["info"]["environment"] == "test" and row["info"]["converged"] is True
    assert len(row["timings"]["steps_s"]) == result.applied_steps and row["finished_at"] >= row["started_at"]
    # the bookkeeping schema is invisible to the diff: the next plan is empty, and a no-op apply adds no row
    assert engine.plan(url, state).plan.is_empty
    assert engine.apply(url, state, release_info={"commit": "abc123"}).plan.is_empty
    assert len(history.releases(url)) == 1


def test_engine_apply_without_release_info_leaves_no_bookkeeping(make_db, tmp_path) -> None:
    url = make_db()
    state = load_state(str(write_state(tmp_path / "s", {"t.sql": "CREATE TABLE public.t (id int PRIMARY KEY);"})))
    assert engine.apply(url, state, allow_hazards="all").converged
    assert scalar(url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'schema_pipeline'") == 0


def test_engine_apply_refuses_hazards_without_touching_the_target(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE public.t (id int PRIMARY KEY, old text)")
    state = load_state(str(write_state(tmp_path / "s", {"t.sql": "CREATE TABLE public.t (id int PRIMARY KEY);"})))
    with pytest.raises(HazardsNotAllowed):
        engine.apply(url, state)
    assert scalar(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'") == 2
    assert history.releases(url) == []


def test_check_hazards_accepts_listed_types() -> None:
    p = Plan([step("x")])
    p.steps[0].hazards = [Hazard(HazardType.INDEX_BUILD, "builds")]
    engine.check_hazards(p, {"index_build"})
    engine.check_hazards(p, "all")
    with pytest.raises(HazardsNotAllowed, match="INDEX_BUILD"):
        engine.check_hazards(p, set())
