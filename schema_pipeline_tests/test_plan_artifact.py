"""Plan artifacts: one plan object rendered as human/SQL/JSON; saved plans bound by fingerprints."""

from __future__ import annotations

import json
import subprocess

import pytest

from schema_pipeline import engine
from schema_pipeline.plan.artifact import PlanFileError, PlanOutdated, parse_plan_file, read_plan_file
from schema_pipeline.plan.model import Hazard, HazardType, Plan, Step, human_bytes, human_count
from schema_pipeline.plan.render import render, render_human, render_json, render_sql
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import relations, scalar, step, write_state


def _plan() -> Plan:
    s1 = step("ALTER TABLE public.events ALTER COLUMN v TYPE bigint", "public.events")
    s1.hazards = [Hazard(HazardType.TABLE_REWRITE, "rewrites public.events", "public.events", 41_000_000,
                         12 * 2**30)]
    s2 = step("CREATE INDEX CONCURRENTLY e_v ON public.events (v)", "public.e_v", "index", "create",
              transactional=False)
    s2.hazards = [Hazard(HazardType.INDEX_BUILD, "builds index public.e_v")]
    return Plan([s1, s2, step("CREATE TABLE x (id int)", "public.x", action="create")],
                target_fingerprint="aaaa", desired_fingerprint="bbbb", server_version=150004,
                created_at="2026-01-01T00:00:00+00:00")


def test_human_and_sql_show_groups_and_sizes() -> None:
    p = _plan()
    human = render_human(p)
    assert "group 1 (step 1): in one transaction" in human
    assert "group 2 (step 2): outside a transaction" in human
    assert "group 3 (step 3): in one transaction" in human
    assert "rewrites public.events (41 M rows, 12 GB)" in human
    sql = render_sql(p)
    assert sql.count("BEGIN;") == 2 and sql.count("COMMIT;") == 2
    assert "-- group 2 (step 2): outside a transaction" in sql
    assert "-- hazard TABLE_REWRITE: rewrites public.events (41 M rows, 12 GB)" in sql
    assert render(p, "human") == human and render(p, "sql") == sql


def test_json_is_a_complete_plan_file() -> None:
    p = _plan()
    doc = json.loads(render_json(p))
    for key in ("version", "target_fingerprint", "desired_fingerprint", "plan_fingerprint", "hazards", "steps",
                "server_version", "created_at", "groups", "kind"):
        assert key in doc
    assert doc["groups"] == [{"transactional": True, "steps": [1]}, {"transactional": False, "steps": [2]},
                             {"transactional": True, "steps": [3]}]
    hz = doc["steps"][0]["hazards"][0]
    assert (hz["relation"], hz["rows"], hz["bytes"]) == ("public.events", 41_000_000, 12 * 2**30)
    assert hz["size"] == "public.events (41 M rows, 12 GB)"
    back = parse_plan_file(doc).plan
    assert back.to_dict() == p.to_dict()


def test_old_plan_dicts_still_load_and_sizes_do_not_change_the_fingerprint() -> None:
    old = {"version": 1, "target_fingerprint": "t", "desired_fingerprint": "d",
           "steps": [{"sql": "SELECT 1", "object_kind": "table", "object_name": "public.t", "action": "alter",
                      "hazards": [{"type": "DELETES_DATA", "message": "drops"}]}]}
    p = Plan.from_dict(old)
    assert p.steps[0].hazards[0].relation is None and p.steps[0].transactional
    sized = Plan.from_dict(old)
    sized.steps[0].hazards = [Hazard(HazardType.DELETES_DATA, "drops", "public.t", 5, 8192)]
    assert sized.fingerprint() == p.fingerprint()
    assert Step.from_dict(p.steps[0].to_dict()) == p.steps[0]


def test_human_numbers() -> None:
    assert (human_count(999), human_count(41_234_567), human_count(1_500)) == ("999", "41 M", "1.5 k")
    assert (human_bytes(100), human_bytes(12 * 2**30), human_bytes(1536)) == ("100 bytes", "12 GB", "1.5 kB")
    assert Hazard(HazardType.INDEX_BUILD, "builds public.t_idx", "public.t", 10, None).text() == \
        "builds public.t_idx (public.t: 10 rows)"


@pytest.mark.parametrize("doc, match", [
    ([], "not a schema-pipeline plan"),
    ({"steps": [], "version": 2}, "unsupported"),
    ({"steps": [], "version": 1, "kind": "other"}, "unsupported"),
    ({"steps": [], "version": 1}, "no target/desired fingerprint"),
    ({"steps": [{"sql": "x"}], "version": 1, "target_fingerprint": "a", "desired_fingerprint": "b"}, "malformed"),
])
def test_bad_plan_files_are_rejected(doc, match) -> None:
    with pytest.raises(PlanFileError, match=match):
        parse_plan_file(doc)


def test_edited_plan_file_is_rejected(tmp_path) -> None:
    doc = _plan().to_dict()
    doc["steps"][2]["sql"] = "DROP TABLE important"
    with pytest.raises(PlanFileError, match="modified after planning"):
        parse_plan_file(doc)
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(PlanFileError, match="not valid JSON"):
        read_plan_file(path)
    with pytest.raises(PlanFileError, match="cannot read plan file"):
        read_plan_file(tmp_path / "missing.json")


STATE = {"a.sql": "CREATE TABLE public.events (id bigint PRIMARY KEY, v bigint);\n"
                  "CREATE INDEX events_v ON public.events (v);\n"}


def _events_db(make_db, rows: int = 1000) -> str:
    return make_db(f"CREATE TABLE public.events (id bigint PRIMARY KEY, v int); "
                   f"INSERT INTO public.events SELECT g, g FROM generate_series(1, {rows}) g; ANALYZE public.events")


def test_hazards_carry_target_sizes(make_db, tmp_path) -> None:
    url = _events_db(make_db)
    state = load_state(str(write_state(tmp_path / "s", STATE)))
    p = engine.plan(url, state).plan
    sized = [h for s in p.steps for h in s.hazards if h.relation]
    assert sized, render_human(p)
    for h in sized:
        assert h.relation == "public.events" and h.rows == 1000 and h.bytes and h.bytes > 0
    assert "(public.events: 1.0 k rows" in render_human(p) or "public.events (1.0 k rows" in render_human(p)
    assert "1.0 k rows" in render_sql(p)
    assert json.loads(render_json(p))["steps"][0]["hazards"]
    assert p.server_version >= 100000 and p.created_at


def test_sizes_for_index_drop_and_partitioned_table(make_db) -> None:
    from schema_pipeline.db import connect
    from schema_pipeline.plan.sizes import annotate_sizes, relation_candidates

    url = make_db("CREATE TABLE m (id int, k int) PARTITION BY RANGE (k);"
                  "CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);"
                  "CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (100) TO (200);"
                  "INSERT INTO m SELECT g, g % 200 FROM generate_series(1, 400) g; ANALYZE m1; ANALYZE m2;"
                  'CREATE TABLE "Odd Name" (id int); CREATE INDEX odd_idx ON "Odd Name" (id);')
    s1 = step("ALTER TABLE ONLY public.m ADD COLUMN z int", "public.m")
    s2 = step('DROP INDEX CONCURRENTLY public.odd_idx', "public.odd_idx", "index", "drop", transactional=False)
    s3 = step('ALTER TABLE "public"."Odd Name" ADD COLUMN z int', 'public.Odd Name')
    s4 = step("CREATE TABLE fresh (id int)", "public.fresh", action="create")
    for s in (s1, s2, s3, s4):
        s.hazards = [Hazard(HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK, "locks")]
    assert relation_candidates(s3)[0] == ("public", "Odd Name")
    p = Plan([s1, s2, s3, s4])
    with connect(url) as conn:
        annotate_sizes(conn, p)
    h1, h2, h3, h4 = (s.hazards[0] for s in p.steps)
    assert h1.relation == "public.m" and h1.rows == 400 and h1.bytes > 0
    assert h2.relation == "public.odd_idx" and h2.bytes > 0
    assert h3.relation == "public.Odd Name" and h3.rows == 0
    assert h4.relation is None and h4.text() == "locks"


def test_saved_plan_applies_when_nothing_changed(make_db, tmp_path) -> None:
    url = _events_db(make_db, 10)
    state = load_state(str(write_state(tmp_path / "s", STATE)))
    result = engine.plan(url, state)
    path = tmp_path / "plan.json"
    path.write_text(render_json(result.plan, result.desired))
    saved = read_plan_file(path)
    assert saved.desired == result.desired
    applied = engine.apply_plan(url, saved.plan, desired=saved.desired, state=state, allow_hazards="all")
    assert applied.converged and applied.applied_steps == len(result.plan.steps)
    assert engine.plan(url, state).plan.is_empty


def test_saved_plan_refused_when_target_changed(make_db, tmp_path) -> None:
    url = _events_db(make_db, 10)
    state = load_state(str(write_state(tmp_path / "s", STATE)))
    result = engine.plan(url, state)
    scalar(url, "CREATE TABLE sneaky (id int) -- changed after planning")
    before = engine.current_catalog(url)
    with pytest.raises(PlanOutdated, match="the target changed since the plan was made"):
        engine.apply_plan(url, result.plan, desired=result.desired, allow_hazards="all")
    assert engine.current_catalog(url) == before


def test_saved_plan_refused_when_state_changed(make_db, tmp_path) -> None:
    url = _events_db(make_db, 10)
    result = engine.plan(url, load_state(str(write_state(tmp_path / "s", STATE))))
    changed = load_state(str(write_state(tmp_path / "s2", {"a.sql": STATE["a.sql"] + "CREATE TABLE public.y (id int);"})))
    before = engine.current_catalog(url)
    with pytest.raises(PlanOutdated, match="the desired state changed"):
        engine.apply_plan(url, result.plan, state=changed, allow_hazards="all")
    assert engine.current_catalog(url) == before


def test_sql_rendering_runs_in_psql_and_converges(make_db, tmp_path) -> None:
    from schema_pipeline.apply.rehearsal import find_tools

    url = _events_db(make_db, 10)
    state = load_state(str(write_state(tmp_path / "s", {
        "a.sql": STATE["a.sql"] + "CREATE TABLE public.z (id int);\n"})))
    p = engine.plan(url, state).plan
    p.steps.append(step("CREATE INDEX CONCURRENTLY z_id ON public.z (id)", "public.z_id", "index", "create",
                        transactional=False))
    tools = find_tools(15)
    if tools is None:
        pytest.skip("no psql")
    out = subprocess.run([tools[1], "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
                         input=render_sql(p), text=True, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "public.z_id" in relations(url)
