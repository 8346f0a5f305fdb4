"""Event triggers as an object kind: read, diffed, generated, applied; never fired in the plan database."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schema_pipeline import engine, plandb
from schema_pipeline.state import load_state
from schema_pipeline.state.model import DesiredState
from schema_pipeline_tests.engine_harness import assert_converges, read_catalog
from schema_pipeline_tests.test_apply_support import write_state

OWNER = ("DO $$ BEGIN CREATE ROLE sp_evt_owner SUPERUSER NOLOGIN; "
         "EXCEPTION WHEN duplicate_object THEN NULL; END $$;")
FN = "CREATE FUNCTION {name}() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;"
BASE = FN.format(name="audit") + " " + FN.format(name="audit2") + " "
ET = "CREATE EVENT TRIGGER et ON ddl_command_end EXECUTE FUNCTION audit();"

CASES = {
    "create": ("", BASE + ET + " COMMENT ON EVENT TRIGGER et IS 'audit ddl';"),
    "create_with_tags_always": ("", BASE + "CREATE EVENT TRIGGER et ON ddl_command_start WHEN TAG IN "
                                "('create table', 'DROP TABLE') EXECUTE FUNCTION audit(); "
                                "ALTER EVENT TRIGGER et ENABLE ALWAYS;"),
    "drop": (BASE + ET, BASE),
    "drop_with_its_function": (BASE + ET, FN.format(name="audit2")),
    "enable_always": (BASE + ET, BASE + ET + " ALTER EVENT TRIGGER et ENABLE ALWAYS;"),
    "always_to_disabled": (BASE + ET + " ALTER EVENT TRIGGER et ENABLE ALWAYS;",
                           BASE + ET + " ALTER EVENT TRIGGER et DISABLE;"),
    "disabled_to_replica": (BASE + ET + " ALTER EVENT TRIGGER et DISABLE;",
                            BASE + ET + " ALTER EVENT TRIGGER et ENABLE REPLICA;"),
    "replica_to_enabled": (BASE + ET + " ALTER EVENT TRIGGER et ENABLE REPLICA;", BASE + ET),
    "tags_change": (BASE + "CREATE EVENT TRIGGER et ON ddl_command_end WHEN TAG IN ('CREATE TABLE') "
                    "EXECUTE FUNCTION audit();",
                    BASE + "CREATE EVENT TRIGGER et ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE') "
                    "EXECUTE FUNCTION audit(); ALTER EVENT TRIGGER et DISABLE;"),
    "event_change": (BASE + ET, BASE + "CREATE EVENT TRIGGER et ON sql_drop EXECUTE FUNCTION audit();"),
    "function_change_old_one_dropped": (BASE + ET, FN.format(name="audit2")
                                        + " CREATE EVENT TRIGGER et ON ddl_command_end EXECUTE FUNCTION audit2();"),
    "comment_change": (BASE + ET + " COMMENT ON EVENT TRIGGER et IS 'a';",
                       BASE + ET + " COMMENT ON EVENT TRIGGER et IS 'b';"),
    "comment_removed": (BASE + ET + " COMMENT ON EVENT TRIGGER et IS 'a';", BASE + ET),
    "owner_change": (OWNER + BASE + ET, OWNER + BASE + ET + " ALTER EVENT TRIGGER et OWNER TO sp_evt_owner;"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_event_triggers_converge(case: str, make_db) -> None:
    steps = assert_converges(make_db, *CASES[case])
    assert any(s.object_kind == "event_trigger" for s in steps) or case == "drop_with_its_function"


def test_steps_in_place_and_recreate() -> None:
    from schema_pipeline.catalog.model import Catalog, DbObject
    from schema_pipeline.diff import diff_catalogs

    def cat(**attrs: object) -> Catalog:
        base = {"event": "ddl_command_end", "tags": None, "function": "public.audit", "function_schema": "public",
                "enabled": "O", "owner": "postgres", "comment": None}
        c = Catalog(role="postgres")
        c.add(DbObject("event_trigger", "et", None, "et", {**base, **attrs}))
        return c

    assert [s.sql for s in diff_catalogs(cat(), cat(enabled="A", comment="x"))] == [
        'ALTER EVENT TRIGGER "et" ENABLE ALWAYS;', 'COMMENT ON EVENT TRIGGER "et" IS \'x\';']
    assert [s.sql for s in diff_catalogs(cat(), cat(enabled="R"))] == ['ALTER EVENT TRIGGER "et" ENABLE REPLICA;']
    recreate = diff_catalogs(cat(), cat(tags=["CREATE TABLE"], enabled="D"))
    assert [s.action for s in recreate] == ["drop", "create", "alter"]
    assert "WHEN TAG IN ('CREATE TABLE')" in recreate[1].sql and recreate[2].sql.endswith("DISABLE;")


def test_ordering_follows_the_function(make_db) -> None:
    steps = assert_converges(make_db, BASE + ET, "")
    order = [(s.action, s.object_kind) for s in steps if s.object_kind in ("event_trigger", "function")]
    assert order[0] == ("drop", "event_trigger")
    steps = assert_converges(make_db, "", BASE + ET)
    kinds = [s.object_kind for s in steps if s.action == "create"]
    assert kinds.index("function") < kinds.index("event_trigger")


def test_event_trigger_of_an_extension_is_left_alone(make_db) -> None:
    url = make_db("CREATE EXTENSION citext; " + BASE + ET + " ALTER EXTENSION citext ADD EVENT TRIGGER et;")
    assert not read_catalog(url).of_kind("event_trigger")
    desired = read_catalog(make_db("CREATE EXTENSION citext;"))
    from schema_pipeline.diff import diff_catalogs

    assert not [s for s in diff_catalogs(read_catalog(url), desired) if "EVENT TRIGGER" in s.sql]


# --- the plan database -------------------------------------------------------------------------------------

RAISING = ("CREATE FUNCTION stop_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
           "RAISE EXCEPTION 'event trigger fired on %', tg_tag; END $$;\n")


def _state(tmp_path: Path, files: dict[str, str]) -> DesiredState:
    return load_state(str(write_state(tmp_path / "s", files)))


def test_event_triggers_do_not_fire_while_the_state_loads(make_db, tmp_path) -> None:
    # The event triggers come first (file order) and are enabled in every mode, then more DDL follows.
    state = _state(tmp_path, {
        "a_triggers.sql": RAISING
        + "CREATE EVENT TRIGGER on_end ON ddl_command_end EXECUTE FUNCTION stop_ddl();\n"
        + "CREATE EVENT TRIGGER always ON ddl_command_start EXECUTE FUNCTION stop_ddl();\n"
        + "ALTER EVENT TRIGGER always ENABLE ALWAYS;\n"
        + "CREATE EVENT TRIGGER replica ON sql_drop EXECUTE FUNCTION stop_ddl();\n"
        + "ALTER EVENT TRIGGER replica ENABLE REPLICA;\n"
        + "COMMENT ON EVENT TRIGGER on_end IS 'stops DDL';\n",
        "b_tables.sql": "CREATE TABLE t (id int PRIMARY KEY);\nCREATE TABLE gone (id int);\nDROP TABLE gone;\n"
                        "CREATE INDEX t_id ON t (id);\nALTER TABLE t ADD COLUMN v text;\n",
    })
    url = make_db()
    result = engine.plan(url, state)
    triggers = {o.key: (o.attrs["event"], o.attrs["enabled"], o.attrs["comment"])
                for o in result.desired.of_kind("event_trigger")}
    assert triggers == {"on_end": ("ddl_command_end", "O", "stops DDL"), "always": ("ddl_command_start", "A", None),
                        "replica": ("sql_drop", "R", None)}
    creates = [s for s in result.plan.steps if s.object_kind == "event_trigger"]
    assert {s.sql.split()[3] for s in creates if s.action == "create"} == {'"on_end"', '"always"', '"replica"'}
    assert result.plan.steps[-1].object_kind == "event_trigger"  # created after the rest


def test_event_triggers_apply_and_replan_empty(make_db, tmp_path) -> None:
    state = _state(tmp_path, {"t.sql": "CREATE TABLE t (id int);\n" + BASE.replace(" CREATE", "\nCREATE") + "\n"
                              + "CREATE EVENT TRIGGER et ON ddl_command_end WHEN TAG IN ('CREATE TABLE') "
                              "EXECUTE FUNCTION audit();\nALTER EVENT TRIGGER et ENABLE ALWAYS;\n"
                              "COMMENT ON EVENT TRIGGER et IS 'audit';\n"})
    url = make_db()
    assert engine.apply(url, state, allow_hazards="all").converged
    assert engine.plan(url, state).plan.is_empty
    changed = _state(tmp_path / "2", {"t.sql": "CREATE TABLE t (id int);\n" + BASE.replace(" CREATE", "\nCREATE")
                                      + "\nCREATE EVENT TRIGGER et ON ddl_command_end EXECUTE FUNCTION audit2();\n"})
    assert engine.apply(url, changed, allow_hazards="all").converged
    assert engine.plan(url, changed).plan.is_empty
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT evtfoid::regproc::text, evtenabled, evttags FROM pg_event_trigger").fetchall() == [
            ("audit2", "O", None)]


NOSUPER = "sp_plan_nosuper"


def test_a_non_superuser_target_role_plans_event_triggers_in_the_sandbox(admin_url, tmp_path) -> None:
    """The plan sandbox creates event triggers with its own administrator, last, whatever the target's role:
    the state's trigger function (which raises) never fires, and the trigger's owner stays unspecified."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DO $$ BEGIN CREATE ROLE {NOSUPER} LOGIN; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    params = {k: v for k, v in conninfo_to_dict(admin_url).items() if k not in ("user", "password")}
    url = make_conninfo(**params, user=NOSUPER)  # trust authentication, like the rest of the suite
    state = _state(tmp_path, {"t.sql": "CREATE TABLE t (id int);\n" + RAISING
                              + "CREATE EVENT TRIGGER et\n  ON ddl_command_end EXECUTE FUNCTION stop_ddl();\n"
                              + "CREATE TABLE after_the_trigger (id int);\n"})
    catalog = plandb.desired_catalog(state, url)
    trigger = next(o for o in catalog.of_kind("event_trigger") if o.key == "et")
    assert trigger.attrs["owner"] == catalog.role  # unspecified: owned by whoever applies the plan
    assert any(o.key == "public.after_the_trigger" for o in catalog.of_kind("table"))
