"""The plan database: materialized-view queries are not run, functions PostgreSQL does not call at creation
load and read back, the loader's catalog read is not hijacked by temporary objects; the rehearsal survives
losing its copy. What the state may do while it loads is decided by PostgreSQL's privileges in the plan
sandbox (test_plan_canaries.py). Real servers, nothing mocked.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from schema_pipeline import engine, plandb
from schema_pipeline.apply import history, rehearsal
from schema_pipeline.apply.executor import APPLY_APPLICATION_NAME
from schema_pipeline.apply.rehearsal import RehearsalFailed
from schema_pipeline.catalog import introspect
from schema_pipeline.errors import ApplyError
from schema_pipeline.plan.model import Plan
from schema_pipeline.state import load_state
from schema_pipeline.state.model import DesiredState
from schema_pipeline_tests.test_apply_support import kill_when, relations, scalar, step, write_state

BOOM = "CREATE FUNCTION {name}() RETURNS int LANGUAGE plpgsql {volatility} AS $$ BEGIN RAISE EXCEPTION 'executed'; END $$;\n"


def _state(tmp_path: Path, text: str, name: str = "s") -> DesiredState:
    return load_state(str(write_state(tmp_path / name, {"state.sql": text})))


def _load(url: str, state: DesiredState) -> plandb.LoadResult:
    with psycopg.connect(url, autocommit=True) as conn:
        return plandb.load_state_into(conn, state)


# --- materialized views -------------------------------------------------------------------------------------

MATVIEWS = (BOOM.format(name="boom", volatility="VOLATILE")
            + "CREATE MATERIALIZED VIEW mv AS SELECT boom() AS x;\n"
            + "CREATE MATERIALIZED VIEW mv_with AS SELECT boom() AS x WITH DATA;\n"
            + "CREATE MATERIALIZED VIEW mv_empty AS SELECT boom() AS x WITH NO DATA;\n"
            + "CREATE MATERIALIZED VIEW mv_read AS SELECT pg_read_file('/etc/hostname') AS host; -- note\n")


def test_matview_query_is_not_run_by_plan_and_keeps_its_populatedness(make_db, tmp_path) -> None:
    state = _state(tmp_path, MATVIEWS)
    url = make_db()
    result = engine.plan(url, state)  # loading would fail with 'executed' if the queries ran
    populated = {o.key: o.attrs["populated"] for o in result.desired.of_kind("matview")}
    assert populated == {"public.mv": True, "public.mv_with": True, "public.mv_empty": False, "public.mv_read": True}
    creates = {s.object_name: s.sql for s in result.plan.steps if s.object_kind == "matview" and s.action == "create"}
    assert "WITH NO DATA" not in creates["public.mv"] and "WITH NO DATA" not in creates["public.mv_read"]
    assert creates["public.mv_empty"].rstrip(";").endswith("WITH NO DATA")


def test_the_target_runs_the_matview_query_and_the_apply_fails_cleanly(make_db, tmp_path) -> None:
    state = _state(tmp_path, BOOM.format(name="boom", volatility="VOLATILE")
                   + "CREATE MATERIALIZED VIEW mv AS SELECT boom() AS x;\n")
    for rehearse in (True, False):
        url = make_db("CREATE TABLE keep (id int)")
        before = engine.current_catalog(url)
        with pytest.raises(ApplyError) as info:
            engine.apply(url, state, allow_hazards="all", rehearse=rehearse)
        message = str(info.value)
        assert "executed" in message and "create matview public.mv" in message
        assert message.startswith("rehearsal failed, the target was not touched") == rehearse
        assert engine.current_catalog(url) == before


def test_populated_and_unpopulated_matviews_converge(make_db, tmp_path) -> None:
    state = _state(tmp_path, "CREATE TABLE t (a int);\n"
                   "CREATE MATERIALIZED VIEW full_mv AS SELECT a FROM t;\n"
                   "CREATE MATERIALIZED VIEW empty_mv AS SELECT a FROM t WITH NO DATA;\n"
                   "CREATE UNIQUE INDEX empty_mv_a ON empty_mv (a);\n")
    url = make_db()
    assert engine.apply(url, state, allow_hazards="all").converged
    assert engine.plan(url, state).plan.is_empty
    with psycopg.connect(url) as conn:
        rows = dict(conn.execute("SELECT matviewname, ispopulated FROM pg_matviews").fetchall())
    assert rows == {"full_mv": True, "empty_mv": False}
    # a target where the declared-populated view is not populated converges to populated, and back
    other = make_db("CREATE TABLE t (a int); CREATE MATERIALIZED VIEW full_mv AS SELECT a FROM t WITH NO DATA;"
                    "CREATE MATERIALIZED VIEW empty_mv AS SELECT a FROM t; CREATE UNIQUE INDEX empty_mv_a ON empty_mv (a);")
    assert not engine.plan(other, state).plan.is_empty
    assert engine.apply(other, state, allow_hazards="all").converged
    assert engine.plan(other, state).plan.is_empty


# --- functions called while a statement is created -------------------------------------------------------------


# (state, line of the statement PostgreSQL would evaluate it in)

NOT_EVALUATED = (BOOM.format(name="fold", volatility="IMMUTABLE") + BOOM.format(name="vol", volatility="VOLATILE")
                 + "CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';\n"
                 + "CREATE FUNCTION guarded() RETURNS int LANGUAGE sql STABLE SET search_path = public "
                 + "AS 'SELECT 1';\n"
                 + "CREATE TABLE t (a int DEFAULT vol() CHECK (a > fold()), b int GENERATED ALWAYS AS (twice(a)) STORED);\n"
                 + "CREATE VIEW v AS SELECT fold(), vol(), guarded();\n"
                 + "CREATE INDEX t_twice ON t (twice(a));\n"
                 + "CREATE POLICY p ON t USING (a > vol());\n"
                 + "ALTER TABLE t ADD COLUMN c int;\nALTER TABLE t ALTER COLUMN c SET DEFAULT fold();\n"
                 + "CREATE AGGREGATE sum2(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0');\n")


def test_functions_that_postgresql_does_not_call_load_and_read_back_unsealed(make_db, tmp_path) -> None:
    state = _state(tmp_path, NOT_EVALUATED)
    url = make_db()
    desired = engine.desired_catalog(state, url)
    for f in desired.of_kind("function"):
        assert "transaction_isolation" not in f.attrs["definition"], f.attrs["definition"]
    assert "SET search_path TO 'public'" in desired.objects["function:public.guarded()"].attrs["definition"]
    # the same SQL run directly (functions callable) gives the same catalog: an empty plan
    direct = make_db(NOT_EVALUATED)
    assert engine.plan(direct, state).plan.is_empty


def test_functions_are_callable_again_once_the_state_is_loaded(fresh_db, tmp_path) -> None:
    _load(fresh_db, _state(tmp_path, "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
                           "ALTER FUNCTION one() SET work_mem = '1MB';\nALTER FUNCTION one() RESET ALL;\n"
                           "CREATE FUNCTION two() RETURNS int LANGUAGE sql SET work_mem = '1MB' AS 'SELECT 2';\n"))
    assert scalar(fresh_db, "SELECT one() + two()") == 3
    assert scalar(fresh_db, "SELECT array_agg(proname::text || '=' || coalesce(proconfig::text, '') ORDER BY proname) FROM pg_proc "
                            "WHERE oid >= 16384") == ["one=", "two={work_mem=1MB}"]


ACCEPTED_CONSTANTS = (
    "CREATE TABLE p (k numeric, d date) PARTITION BY RANGE (k, d);\n"
    "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (-1, '2020-01-01'::date) TO (CAST('1.5' AS numeric(10, 2)), MAXVALUE)"
    " WITH (fillfactor = 70);\n"
    "CREATE TABLE h (k int) PARTITION BY HASH (k);\nCREATE TABLE h0 PARTITION OF h FOR VALUES WITH (MODULUS 2, REMAINDER 0);\n"
    "CREATE TABLE t (a int DEFAULT abs(-1));\n"
    "ALTER TABLE t ADD COLUMN b numeric(10, 2) DEFAULT 0::numeric(10, 2) CHECK (b >= abs(0)), "
    "ADD COLUMN c timestamptz DEFAULT CURRENT_TIMESTAMP NOT NULL, ADD COLUMN d text COLLATE \"C\";\n"
    "ALTER TABLE t ALTER COLUMN d SET DEFAULT md5('x');\n")


def test_constant_partition_bounds_and_defaults_pass_the_policy_and_load(fresh_db, tmp_path) -> None:
    _load(fresh_db, _state(tmp_path, ACCEPTED_CONSTANTS))
    assert scalar(fresh_db, "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'p1'") == (
        "FOR VALUES FROM ('-1', '2020-01-01') TO (1.50, MAXVALUE)")



DOMAINS_THAT_LOAD = (
    "CREATE DOMAIN sd AS timestamp CHECK (VALUE >= CURRENT_TIMESTAMP);\n"
    "CREATE DOMAIN dd AS timestamptz DEFAULT now() CHECK (date_part('year', VALUE) > 2000);\n"
    "CREATE DOMAIN u AS uuid DEFAULT gen_random_uuid();\n"
    "CREATE DOMAIN born AS date CHECK (VALUE > '1900-01-01'::date AND VALUE < CURRENT_DATE);\n"
    "CREATE DOMAIN label AS text DEFAULT to_char(now(), 'YYYY') CHECK (length(VALUE) < 10 AND VALUE = lower(VALUE));\n"
    "CREATE SEQUENCE s;\nCREATE DOMAIN n AS bigint DEFAULT nextval('s');\n"
    "CREATE TABLE t (a int);\n"
    "ALTER TABLE t ADD COLUMN b dd, ADD COLUMN c u, ADD COLUMN e sd, ADD COLUMN f born, ADD COLUMN g label, ADD COLUMN h n;\n")


def test_domains_that_format_compare_or_read_the_clock_load_and_converge(make_db, tmp_path) -> None:
    state = _state(tmp_path, DOMAINS_THAT_LOAD)
    url = make_db()
    assert not engine.plan(url, state).plan.is_empty
    assert engine.plan(make_db(DOMAINS_THAT_LOAD), state).plan.is_empty


def test_temporary_objects_of_the_state_do_not_reach_the_catalog_read(fresh_db, tmp_path) -> None:
    state = _state(tmp_path, "CREATE TABLE public.calls (name text);\n"
                   "CREATE FUNCTION public.note() RETURNS oid LANGUAGE plpgsql AS $$ BEGIN "
                   "INSERT INTO public.calls VALUES ('note'); RETURN 0; END $$;\n"
                   "CREATE TEMP VIEW pg_namespace AS SELECT n.*, public.note() AS x FROM pg_catalog.pg_namespace n;\n")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        plandb.load_state_into(conn, state)
        catalog = introspect(conn)
    assert "function:public.note()" in catalog.objects
    assert scalar(fresh_db, "SELECT string_agg(name, ', ') FROM public.calls") is None


# --- the rehearsal loses its copy -------------------------------------------------------------------------------

def _rehearsal_backend(admin_url: str, seen: dict[str, str]) -> int | None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid, datname FROM pg_stat_activity WHERE application_name = %s AND state = 'active' "
            "AND datname LIKE 'schema\\_pipeline\\_rehearsal\\_%%' AND query LIKE 'SELECT pg_sleep(60)%%'",
            (APPLY_APPLICATION_NAME,)).fetchone()
    if row is None:
        return None
    seen["database"] = row[1]
    return int(row[0])


def test_connection_to_the_rehearsal_copy_killed_mid_rehearsal(make_db, admin_url) -> None:
    if rehearsal.find_tools(15) is None:
        pytest.skip("no pg_dump/psql")
    url = make_db("CREATE TABLE keep (id int)")
    before = engine.current_catalog(url)
    p = Plan([step("CREATE TABLE a (id int)", "public.a", action="create"),
              step("ALTER TABLE keep ADD COLUMN v int", "public.keep"),
              step("SELECT pg_sleep(60)", "public.slow"),
              step("CREATE TABLE b (id int)", "public.b", action="create")],
             target_fingerprint=before.fingerprint(), desired_fingerprint="unused")
    seen: dict[str, str] = {}
    killer = kill_when(admin_url, lambda: _rehearsal_backend(admin_url, seen))
    with pytest.raises(RehearsalFailed) as info:
        engine.apply_plan(url, p, allow_hazards="all", release_info={"commit": "c1"})
    killer.join(10)
    message = str(info.value)
    assert message.startswith("rehearsal failed, the target was not touched")
    assert "step 3/4 lost its database connection" in message
    assert engine.current_catalog(url) == before and relations(url) == {"public.keep"}
    row = history.releases(url)[0]
    assert row["status"] == "failed" and "rehearsal failed" in row["error"]
    assert seen["database"]
    assert scalar(admin_url, "SELECT count(*) FROM pg_database WHERE datname = %s", (seen["database"],)) == 0
