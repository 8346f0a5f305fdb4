"""Rehearsal: the plan runs on a schema-only copy of the target before the target is touched."""

from __future__ import annotations

import pytest

from schema_pipeline import engine
from schema_pipeline.apply import history, rehearsal
from schema_pipeline.apply.rehearsal import RehearsalFailed
from schema_pipeline.plan.model import Plan
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import Collect, relations, scalar, step, write_state


def _saved(url: str, steps, desired=None) -> Plan:
    current = engine.current_catalog(url)
    return Plan(steps, target_fingerprint=current.fingerprint(),
                desired_fingerprint=desired.fingerprint() if desired is not None else "unused")


def test_failing_rehearsal_stops_before_the_target_is_touched(make_db) -> None:
    url = make_db("CREATE TABLE t (id int, v int)")
    before = engine.current_catalog(url)
    # Without rehearsal the concurrent index (own group) would be built before step 2 fails.
    p = _saved(url, [step("CREATE INDEX CONCURRENTLY t_v ON public.t (v)", "public.t_v", "index", "create",
                          transactional=False),
                     step("CREATE VIEW w AS SELECT * FROM missing_table", "public.w", "view", "create")])
    with pytest.raises(RehearsalFailed) as info:
        engine.apply_plan(url, p, allow_hazards="all", release_info={"commit": "c1"})
    message = str(info.value)
    assert message.startswith("rehearsal failed, the target was not touched")
    assert "step 2/2 failed (create view public.w)" in message and 'relation "missing_table" does not exist' in message
    assert engine.current_catalog(url) == before and "public.t_v" not in relations(url)
    row = history.releases(url)[0]
    assert row["status"] == "failed" and "rehearsal failed" in row["error"]


def test_rehearsal_requires_an_empty_replan(make_db) -> None:
    url = make_db("CREATE TABLE t (id int)")
    desired = engine.current_catalog(make_db("CREATE TABLE t (id int); CREATE TABLE u (id int)"))
    p = _saved(url, [step("CREATE TABLE other (id int)", "public.other", action="create")], desired)
    with pytest.raises(RehearsalFailed, match="re-plan is not empty"):
        engine.apply_plan(url, p, desired=desired, allow_hazards="all")
    assert relations(url) == {"public.t"}


def test_rehearsal_runs_by_default_and_can_be_disabled(make_db, tmp_path) -> None:
    state = load_state(str(write_state(tmp_path / "s", {"t.sql": "CREATE TABLE public.t (id int PRIMARY KEY);"})))
    url = make_db()
    progress = Collect()
    assert engine.apply(url, state, allow_hazards="all", progress=progress).rehearsed
    assert "rehearsing the plan" in progress.text()
    url2 = make_db()
    result = engine.apply(url2, state, allow_hazards="all", rehearse=False)
    assert not result.rehearsed and result.converged


def test_rehearsal_copies_schema_not_data(make_db, admin_url) -> None:
    url = make_db("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)")
    tools = rehearsal.find_tools(15)
    if tools is None:
        pytest.skip("no pg_dump/psql")
    from schema_pipeline import plandb

    with plandb.temporary_database(admin_url) as copy:
        rehearsal.copy_schema(url, copy, tools)
        assert engine.current_catalog(copy) == engine.current_catalog(url)
        assert scalar(copy, "SELECT count(*) FROM t") == 0


def test_missing_tools_skip_the_rehearsal_with_a_message(make_db, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(rehearsal, "find_tools", lambda major: None)
    state = load_state(str(write_state(tmp_path / "s", {"t.sql": "CREATE TABLE public.t (id int);"})))
    url = make_db()
    progress = Collect()
    result = engine.apply(url, state, allow_hazards="all", progress=progress)
    assert result.converged and not result.rehearsed
    assert "rehearsal skipped: no pg_dump/psql" in progress.text()
