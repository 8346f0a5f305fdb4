"""Column compression, publications, casts and operators: read, diffed, generated, applied (real server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schema_pipeline.catalog import introspect
from schema_pipeline.catalog.introspect import _filter_schemas
from schema_pipeline.errors import StateErrors
from schema_pipeline.plan.model import HazardType, Step
from schema_pipeline.state import load_state
from schema_pipeline_tests.engine_harness import assert_converges, read_catalog

OWNER = ("DO $$ BEGIN CREATE ROLE sp_kinds_owner SUPERUSER NOLOGIN; "
         "EXCEPTION WHEN duplicate_object THEN NULL; END $$;")

# --- column compression -----------------------------------------------------------------------------------

T = "CREATE TABLE c (id int, a text{}, b bytea);"
COMPRESSION = {
    "create_table": ("", T.format(" COMPRESSION pglz")),
    "add_column": (T.format(""), T.format("") + " ALTER TABLE c ADD COLUMN d text COMPRESSION lz4;"),
    "set": (T.format(""), T.format(" COMPRESSION lz4")),
    "change": (T.format(" COMPRESSION pglz"), T.format(" COMPRESSION lz4")),
    "reset": (T.format(" COMPRESSION lz4"), T.format("")),
    "partitioned": ("CREATE TABLE p (k int, a text) PARTITION BY LIST (k); "
                    "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);",
                    "CREATE TABLE p (k int, a text COMPRESSION lz4) PARTITION BY LIST (k); "
                    "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);"),
}


@pytest.mark.parametrize("case", sorted(COMPRESSION))
def test_column_compression_converges(case: str, make_db) -> None:
    steps = assert_converges(make_db, *COMPRESSION[case])
    assert any("COMPRESSION" in s.sql for s in steps)


def test_compression_is_read(make_db) -> None:
    cat = read_catalog(make_db(T.format(" COMPRESSION lz4")))
    assert cat.get("column:public.c.a").attrs["compression"] == "lz4"
    assert "compression" not in cat.get("column:public.c.b").attrs


# --- publications -----------------------------------------------------------------------------------------

TABLES = ("CREATE SCHEMA s; CREATE TABLE t (id int PRIMARY KEY, a int, b text); CREATE TABLE u (id int PRIMARY KEY);"
          " CREATE TABLE s.x (id int);")
PUB = {
    "create_for_tables": (TABLES, TABLES + " CREATE PUBLICATION pub FOR TABLE t (id, a) WHERE (a > 1), u;"
                          " COMMENT ON PUBLICATION pub IS 'cdc';"),
    "create_all_tables": (TABLES, TABLES + " CREATE PUBLICATION pub FOR ALL TABLES WITH (publish = 'insert');"),
    "create_schema": (TABLES, TABLES + " CREATE PUBLICATION pub FOR TABLES IN SCHEMA s, TABLE t"
                      " WITH (publish_via_partition_root);"),
    "create_empty": (TABLES, TABLES + " CREATE PUBLICATION pub;"),
    "drop": (TABLES + " CREATE PUBLICATION pub FOR TABLE t;", TABLES),
    "add_table": (TABLES + " CREATE PUBLICATION pub FOR TABLE t;", TABLES + " CREATE PUBLICATION pub FOR TABLE t, u;"),
    "drop_table_from_list": (TABLES + " CREATE PUBLICATION pub FOR TABLE t, u;",
                             TABLES + " CREATE PUBLICATION pub FOR TABLE u;"),
    "to_empty": (TABLES + " CREATE PUBLICATION pub FOR TABLE t, TABLES IN SCHEMA s;",
                 TABLES + " CREATE PUBLICATION pub;"),
    "columns_and_filter_change": (TABLES + " CREATE PUBLICATION pub FOR TABLE t (id, a);",
                                  TABLES + " CREATE PUBLICATION pub FOR TABLE t (id, b) WHERE (id > 10);"),
    "options": (TABLES + " CREATE PUBLICATION pub FOR TABLE t;",
                TABLES + " CREATE PUBLICATION pub FOR TABLE t WITH (publish = 'insert, truncate', "
                "publish_via_partition_root = true);"),
    "to_all_tables": (TABLES + " CREATE PUBLICATION pub FOR TABLE t;", TABLES + " CREATE PUBLICATION pub FOR ALL TABLES;"),
    "owner_and_comment": (OWNER + TABLES + " CREATE PUBLICATION pub FOR TABLE t; COMMENT ON PUBLICATION pub IS 'a';",
                          OWNER + TABLES + " CREATE PUBLICATION pub FOR TABLE t; COMMENT ON PUBLICATION pub IS 'b';"
                          " ALTER PUBLICATION pub OWNER TO sp_kinds_owner;"),
    "table_dropped_with_it": (TABLES + " CREATE PUBLICATION pub FOR TABLE t (id, a), u;",
                              "CREATE SCHEMA s; CREATE TABLE u (id int PRIMARY KEY); CREATE TABLE s.x (id int);"
                              " CREATE PUBLICATION pub FOR TABLE u;"),
    "column_in_list_dropped": (TABLES + " CREATE PUBLICATION pub FOR TABLE t (id, b);",
                               "CREATE SCHEMA s; CREATE TABLE t (id int PRIMARY KEY, a int); CREATE TABLE u (id int);"
                               " CREATE TABLE s.x (id int); CREATE PUBLICATION pub FOR TABLE t (id, a);"),
}


@pytest.mark.parametrize("case", sorted(PUB))
def test_publications_converge(case: str, make_db) -> None:
    steps = assert_converges(make_db, *PUB[case])
    assert any(s.object_kind == "publication" for s in steps)


def test_publication_is_created_after_its_new_table(make_db) -> None:
    steps = assert_converges(make_db, "", TABLES + " CREATE PUBLICATION pub FOR TABLE t, TABLES IN SCHEMA s;")
    creates = [(s.object_kind, s.object_name) for s in steps if s.action == "create"]
    assert creates.index(("publication", "pub")) > creates.index(("table", "public.t"))
    assert creates.index(("publication", "pub")) > creates.index(("schema", "s"))


def test_publication_scope(make_db) -> None:
    import psycopg

    url = make_db(TABLES + " CREATE PUBLICATION in_public FOR TABLE t; CREATE PUBLICATION in_s FOR TABLES IN SCHEMA s;"
                  " CREATE PUBLICATION everything FOR ALL TABLES; CREATE PUBLICATION nothing;")
    with psycopg.connect(url, autocommit=True) as conn:
        assert {o.key for o in introspect(conn).of_kind("publication")} == {"in_public", "in_s", "everything", "nothing"}
        assert {o.key for o in introspect(conn, include_schemas=["public"]).of_kind("publication")} == {
            "in_public", "nothing"}
        assert {o.key for o in introspect(conn, exclude_schemas=["public"]).of_kind("publication")} == {
            "in_s", "nothing"}


RECREATE_HAZARD = ("recreates publication pub (drop + create): subscribers must refresh "
                   "(ALTER SUBSCRIPTION ... REFRESH PUBLICATION)")
DROP_HAZARD = "drops publication pub: subscriptions that use it stop receiving its changes"
PUB_RECREATED = {  # no ALTER PUBLICATION can do these: the publication is dropped and created again
    "to_all_tables": PUB["to_all_tables"],
    "from_all_tables": (TABLES + " CREATE PUBLICATION pub FOR ALL TABLES;", TABLES + " CREATE PUBLICATION pub FOR TABLE t;"),
    "published_table_dropped": PUB["table_dropped_with_it"],
}


def _publication_steps(steps: list[Step], action: str) -> list[Step]:
    return [s for s in steps if (s.object_kind, s.object_name, s.action) == ("publication", "pub", action)]


@pytest.mark.parametrize("case", sorted(PUB_RECREATED))
def test_publication_recreate_carries_a_correctness_hazard(case: str, make_db) -> None:
    steps = assert_converges(make_db, *PUB_RECREATED[case])
    (drop,) = _publication_steps(steps, "drop")
    assert len(_publication_steps(steps, "create")) == 1
    assert [(h.type, h.message) for h in drop.hazards] == [(HazardType.CORRECTNESS, RECREATE_HAZARD)]


def test_dropping_a_publication_carries_a_correctness_hazard(make_db) -> None:
    steps = assert_converges(make_db, *PUB["drop"])
    (drop,) = _publication_steps(steps, "drop")
    assert not _publication_steps(steps, "create")
    assert [(h.type, h.message) for h in drop.hazards] == [(HazardType.CORRECTNESS, DROP_HAZARD)]


@pytest.mark.parametrize("case", ["add_table", "drop_table_from_list", "options"])
def test_publication_changed_in_place_is_not_recreated(case: str, make_db) -> None:
    steps = assert_converges(make_db, *PUB[case])
    assert not _publication_steps(steps, "drop") and _publication_steps(steps, "alter")
    assert all(h.message not in (RECREATE_HAZARD, DROP_HAZARD) for s in steps for h in s.hazards)


PUB_HAZARD_STATES = {  # desired state for a target with `pub FOR TABLE t` -> the hazard of the plan
    "recreate": (TABLES + " CREATE PUBLICATION pub FOR ALL TABLES;", RECREATE_HAZARD),
    "drop": (TABLES, DROP_HAZARD),
}


@pytest.mark.parametrize("case", sorted(PUB_HAZARD_STATES))
def test_apply_refuses_publication_hazard_without_allow_hazards(case: str, make_db, tmp_path: Path) -> None:
    """Planned against a real target: a CORRECTNESS hazard that `apply` refuses (engine and CLI, target
    untouched) until `--allow-hazards CORRECTNESS`."""
    import os
    import subprocess

    from schema_pipeline import engine
    from schema_pipeline.errors import HazardsNotAllowed
    from schema_pipeline_tests.test_apply_support import CLI, write_state

    desired, message = PUB_HAZARD_STATES[case]
    url = make_db(TABLES + " CREATE PUBLICATION pub FOR TABLE t;")
    state_dir = str(write_state(tmp_path / case, {"state.sql": desired.replace("; ", ";\n") + "\n"}))
    state = load_state(state_dir)
    steps = engine.plan(url, state).plan.steps
    (drop,) = _publication_steps(steps, "drop")
    assert [(h.type, h.message) for h in drop.hazards] == [(HazardType.CORRECTNESS, message)]
    assert {str(h.type) for s in steps for h in s.hazards} == {"CORRECTNESS"}

    before = engine.current_catalog(url)
    with pytest.raises(HazardsNotAllowed, match="hazards that were not allowed: CORRECTNESS"):
        engine.apply(url, state)
    with pytest.raises(HazardsNotAllowed, match="CORRECTNESS"):
        engine.apply(url, state, allow_hazards={"DELETES_DATA"})
    assert engine.current_catalog(url) == before

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SCHEMA_PIPELINE_DEBUG")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args, "--database-url", url, "--state", state_dir], capture_output=True,
                              text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)

    refused = cli("apply", "--yes")
    assert refused.returncode == 1, refused.stderr
    assert "error: the plan has hazards that were not allowed: CORRECTNESS" in refused.stderr
    assert engine.current_catalog(url) == before
    applied = cli("apply", "--allow-hazards", "CORRECTNESS", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert cli("plan", "--check").returncode == 0


# --- casts ------------------------------------------------------------------------------------------------

CT = ("CREATE TYPE e AS ENUM ('x', 'y'); CREATE DOMAIN d AS int; "
      "CREATE FUNCTION to_e(int) RETURNS e LANGUAGE sql IMMUTABLE AS $$ SELECT 'x'::e $$; "
      "CREATE FUNCTION to_e2(int) RETURNS e LANGUAGE sql IMMUTABLE AS $$ SELECT 'y'::e $$; ")
CAST_CASES = {
    "create_function": (CT, CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int) AS ASSIGNMENT;"
                        " COMMENT ON CAST (int AS e) IS 'int to e';"),
    "create_inout": (CT, CT + "CREATE CAST (e AS int) WITH INOUT AS IMPLICIT;"),
    "create_without_function": (CT, CT + "CREATE CAST (xid AS int4) WITHOUT FUNCTION AS ASSIGNMENT;"),
    "drop": (CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int);", CT),
    "drop_with_function": (CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int);",
                           "CREATE TYPE e AS ENUM ('x', 'y'); CREATE DOMAIN d AS int;"),
    "context_change": (CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int);",
                       CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int) AS IMPLICIT;"),
    "function_change": (CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int);",
                        CT + "CREATE CAST (int AS e) WITH FUNCTION to_e2(int);"),
    "comment_change": (CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int); COMMENT ON CAST (int AS e) IS 'a';",
                       CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int); COMMENT ON CAST (int AS e) IS 'b';"),
}


@pytest.mark.parametrize("case", sorted(CAST_CASES))
def test_casts_converge(case: str, make_db) -> None:
    steps = assert_converges(make_db, *CAST_CASES[case])
    assert any(s.object_kind == "cast" for s in steps)


def test_cast_follows_its_function_and_type(make_db) -> None:
    steps = assert_converges(make_db, "", CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int);")
    creates = [(s.object_kind, s.object_name) for s in steps if s.action == "create"]
    cast = creates.index(("cast", "(integer AS public.e)"))
    assert cast > creates.index(("function", "public.to_e(integer)")) and cast > creates.index(("type", "public.e"))
    steps = assert_converges(make_db, CT + "CREATE CAST (int AS e) WITH FUNCTION to_e(int);", "")
    drops = [s.object_kind for s in steps if s.action == "drop"]
    assert drops.index("cast") < drops.index("function")


def test_built_in_and_extension_casts_are_not_read(make_db) -> None:
    cat = read_catalog(make_db("CREATE EXTENSION citext;"))
    assert not cat.of_kind("cast")


def test_cast_scope() -> None:
    from schema_pipeline.catalog.model import Catalog, DbObject

    cat = Catalog()
    for key in ("in", "out", "builtin"):
        cat.add(DbObject("cast", key, None, key, {}))
    _filter_schemas(cat, ["app"], None, {"cast:in": ["app"], "cast:out": ["app", "other"], "cast:builtin": []})
    assert {o.key for o in cat.of_kind("cast")} == {"in", "builtin"}


# --- operators --------------------------------------------------------------------------------------------

OPF = ("CREATE FUNCTION plus(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + $2'; "
       "CREATE FUNCTION neq(int, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 <> $2'; "
       "CREATE FUNCTION eq(int, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2'; ")
OP = "CREATE OPERATOR ### (FUNCTION = plus, LEFTARG = int, RIGHTARG = int, COMMUTATOR = ###);"
EQ = ("CREATE OPERATOR === (FUNCTION = eq, LEFTARG = int, RIGHTARG = int, NEGATOR = !==, "
      "RESTRICT = eqsel, JOIN = eqjoinsel{}); "
      "CREATE OPERATOR !== (FUNCTION = neq, LEFTARG = int, RIGHTARG = int, NEGATOR = ===);")
OPS = {
    "create": (OPF, OPF + OP + " COMMENT ON OPERATOR ### (int, int) IS 'plus';"),
    "create_pair": (OPF, OPF + EQ.format(", HASHES, MERGES")),
    "prefix": (OPF, OPF + "CREATE FUNCTION neg(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT -$1'; "
               "CREATE OPERATOR ~~~ (FUNCTION = neg, RIGHTARG = int);"),
    "drop": (OPF + OP, OPF),
    "drop_with_function": (OPF + OP, ""),
    "estimators_in_place": (OPF + EQ.format(""), OPF + EQ.format("").replace(
        "RESTRICT = eqsel, JOIN = eqjoinsel", "RESTRICT = scalarltsel, JOIN = scalarltjoinsel")),
    "recreate": (OPF + EQ.format(""), OPF + EQ.format(", HASHES")),
    "owner_and_comment": (OWNER + OPF + OP, OWNER + OPF + OP + " COMMENT ON OPERATOR ### (int, int) IS 'x'; "
                          "ALTER OPERATOR ### (int, int) OWNER TO sp_kinds_owner;"),
    "used_by_an_index": (OPF + OP + " CREATE TABLE t (a int); CREATE INDEX t_a ON t (a) WHERE a ### 1 > 0;",
                         OPF + EQ.format("") + " CREATE TABLE t (a int);"),
}


@pytest.mark.parametrize("case", sorted(OPS))
def test_operators_converge(case: str, make_db) -> None:
    steps = assert_converges(make_db, *OPS[case])
    assert any(s.object_kind == "operator" for s in steps)


def test_operator_in_place_and_ordering(make_db) -> None:
    steps = assert_converges(make_db, *OPS["estimators_in_place"])
    assert [s.action for s in steps if s.object_kind == "operator"] == ["alter"]
    steps = assert_converges(make_db, "CREATE TABLE t (a int);", "CREATE TABLE t (a int); " + OPF + OP
                             + " CREATE INDEX t_a ON t (a) WHERE a ### 1 > 0;")
    creates = [s.object_kind for s in steps if s.action == "create"]
    assert creates.index("function") < creates.index("operator") < creates.index("index")


# --- text search ------------------------------------------------------------------------------------------

DICT = "CREATE TEXT SEARCH DICTIONARY d (TEMPLATE = simple, STOPWORDS = english{});"
CFG = "CREATE TEXT SEARCH CONFIGURATION c (COPY = english);"
TS = {
    "create_dictionary": ("", DICT.format("") + " COMMENT ON TEXT SEARCH DICTIONARY d IS 'stop';"),
    "create_config_copy": ("", CFG + " COMMENT ON TEXT SEARCH CONFIGURATION c IS 'mine';"),
    "create_config_parser_with_own_dictionary": ("", DICT.format("") + " CREATE TEXT SEARCH CONFIGURATION c "
                                                 "(PARSER = default); ALTER TEXT SEARCH CONFIGURATION c ADD MAPPING "
                                                 "FOR word, asciiword WITH d, simple;"),
    "dictionary_options_change": (DICT.format(""), DICT.format(", ACCEPT = false")),
    "dictionary_used_by_config_changes": (
        DICT.format("") + " " + CFG + " ALTER TEXT SEARCH CONFIGURATION c ALTER MAPPING FOR word WITH d;",
        DICT.format(", ACCEPT = false") + " " + CFG + " ALTER TEXT SEARCH CONFIGURATION c ALTER MAPPING FOR word WITH d;"),
    "mappings_change": (CFG, CFG + " ALTER TEXT SEARCH CONFIGURATION c ALTER MAPPING FOR word, hword WITH simple; "
                        "ALTER TEXT SEARCH CONFIGURATION c DROP MAPPING FOR email, url;"),
    "mapping_added": (CFG + " ALTER TEXT SEARCH CONFIGURATION c DROP MAPPING FOR email;", CFG),
    "drop_both": (DICT.format("") + " " + CFG + " ALTER TEXT SEARCH CONFIGURATION c ALTER MAPPING FOR word WITH d;", ""),
    "owner_and_comment": (OWNER + DICT.format("") + " " + CFG, OWNER + DICT.format("") + " " + CFG
                          + " ALTER TEXT SEARCH DICTIONARY d OWNER TO sp_kinds_owner;"
                          " ALTER TEXT SEARCH CONFIGURATION c OWNER TO sp_kinds_owner;"
                          " COMMENT ON TEXT SEARCH DICTIONARY d IS 'x';"),
}


@pytest.mark.parametrize("case", sorted(TS))
def test_text_search_converges(case: str, make_db) -> None:
    steps = assert_converges(make_db, *TS[case])
    assert any(s.object_kind.startswith("ts_") for s in steps)


def test_text_search_ordering_and_in_place(make_db) -> None:
    steps = assert_converges(make_db, "", TS["create_config_parser_with_own_dictionary"][1])
    kinds = [s.object_kind for s in steps if s.action == "create"]
    assert kinds.index("ts_dictionary") < kinds.index("ts_configuration")
    steps = assert_converges(make_db, *TS["mappings_change"])
    assert {s.action for s in steps} == {"alter"}
    cat = read_catalog(make_db(CFG))
    assert "word: english_stem" in cat.get("ts_configuration:public.c").attrs["mappings"]


# --- refused kinds ----------------------------------------------------------------------------------------

REFUSED = {
    "CREATE FOREIGN DATA WRAPPER w;": "CREATE FOREIGN DATA WRAPPER",
    "CREATE SERVER srv FOREIGN DATA WRAPPER w;": "SERVER",
    "CREATE USER MAPPING FOR PUBLIC SERVER srv;": "USER MAPPING",
    "CREATE FOREIGN TABLE ft (a int) SERVER srv;": "CREATE FOREIGN TABLE",
    "IMPORT FOREIGN SCHEMA r FROM SERVER srv INTO public;": "IMPORT FOREIGN SCHEMA",
    "CREATE TEXT SEARCH PARSER prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, "
    "LEXTYPES = prsd_lextype);": "CREATE TEXT SEARCH PARSER",
    "CREATE TEXT SEARCH TEMPLATE tmpl (LEXIZE = dsimple_lexize);": "CREATE TEXT SEARCH TEMPLATE",
}


@pytest.mark.parametrize("sql", sorted(REFUSED))
def test_unmanaged_kinds_are_refused_at_their_line(sql: str, tmp_path: Path) -> None:
    (tmp_path / "state.sql").write_text(f"CREATE TABLE ok (id int);\n\n  {sql}\n")
    with pytest.raises(StateErrors) as info:
        load_state(str(tmp_path))
    [err] = info.value.errors
    assert (err.file, err.line, err.column) == ("state.sql", 3, 3)
    assert REFUSED[sql] in err.message
    assert "is not managed by schema-pipeline yet; create it outside the state" in err.message


# --- through the state files and the plan database ---------------------------------------------------------

def test_state_with_the_new_kinds_applies_and_replans_empty(make_db, tmp_path: Path) -> None:
    from schema_pipeline import engine
    from schema_pipeline_tests.test_apply_support import write_state

    text = (
        "CREATE TABLE t (id int PRIMARY KEY, a text COMPRESSION pglz, n int);\n"
        "CREATE TYPE e AS ENUM ('x', 'y');\n"
        "CREATE FUNCTION to_e(int) RETURNS e LANGUAGE sql IMMUTABLE AS $$ SELECT 'x'::e $$;\n"
        "CREATE CAST (int AS e) WITH FUNCTION to_e(int) AS ASSIGNMENT;\n"
        "CREATE FUNCTION plus(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + $2';\n"
        "CREATE OPERATOR ### (FUNCTION = plus, LEFTARG = int, RIGHTARG = int);\n"
        "CREATE PUBLICATION pub FOR TABLE t (id, a) WHERE (n > 0) WITH (publish = 'insert, update');\n"
        "COMMENT ON PUBLICATION pub IS 'cdc';\n"
        "CREATE TEXT SEARCH DICTIONARY stop (TEMPLATE = simple, STOPWORDS = english);\n"
        "CREATE TEXT SEARCH CONFIGURATION fr (COPY = french);\n"
        "ALTER TEXT SEARCH CONFIGURATION fr ALTER MAPPING FOR word WITH stop, french_stem;\n"
    )
    state = load_state(str(write_state(tmp_path / "s", {"state.sql": text})))
    url = make_db()
    result = engine.plan(url, state)
    kinds = {s.object_kind for s in result.plan.steps}
    assert {"publication", "cast", "operator", "ts_dictionary", "ts_configuration"} <= kinds
    assert any("SET COMPRESSION pglz" in s.sql for s in result.plan.steps)
    assert engine.apply(url, state, allow_hazards="all").converged
    assert engine.plan(url, state).plan.is_empty
    changed_text = (text.replace("COMPRESSION pglz", "COMPRESSION lz4").replace("AS ASSIGNMENT", "AS IMPLICIT")
                    .replace("FOR TABLE t (id, a) WHERE (n > 0)", "FOR TABLE t").replace("stop, french_stem", "simple"))
    changed = load_state(str(write_state(tmp_path / "s2", {"state.sql": changed_text})))
    assert engine.apply(url, changed, allow_hazards="all").converged
    assert engine.plan(url, changed).plan.is_empty
