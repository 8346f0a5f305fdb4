"""What pg_dump writes converges (issue 15), against the real server: placeholder views and functions redefined
by CREATE OR REPLACE, the DROP statements of --clean dumps, type changes PostgreSQL has no cast for, statistics
targets of index columns, and comments on extensions. Through load_state + engine.plan/apply, and the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from schema_pipeline import engine
from schema_pipeline.apply import rehearsal
from schema_pipeline.diff import diff_catalogs
from schema_pipeline.errors import StateErrors
from schema_pipeline.plan.model import HazardType
from schema_pipeline.state import load_state
from schema_pipeline_tests.engine_harness import read_catalog
from schema_pipeline_tests.test_apply_support import write_state
from schema_pipeline_tests.test_cli import run


def _state(tmp_path: Path, text: str, name: str = "schema.sql"):
    root = write_state(tmp_path / "state", {name: text})
    return str(root), load_state(str(root))


def _rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _converges(url: str, state) -> engine.ApplyResult:
    result = engine.apply(url, state, allow_hazards="all")
    assert result.converged, result.remaining
    assert engine.plan(url, state).plan.is_empty
    return result


def _cli_converges(url: str, root: str) -> None:
    out = run("apply", "--database-url", url, "--state", root, "--allow-hazards", "all", "--yes")
    assert out.returncode == 0, out.stderr
    check = run("plan", "--database-url", url, "--state", root, "--check")
    assert check.returncode == 0, check.stdout + check.stderr


# --- 1. placeholder views and functions; DROP statements of --clean dumps ----------------------------------

PLACEHOLDER_VIEW = """\
CREATE TABLE public.t (id integer NOT NULL, v integer);
DROP VIEW IF EXISTS public.w;
CREATE VIEW public.w AS
SELECT
    NULL::integer AS id,
    NULL::integer AS v;
ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);
CREATE OR REPLACE VIEW public.w AS
 SELECT t.id, t.v FROM public.t GROUP BY t.id;
"""


def test_a_placeholder_view_is_redefined_by_create_or_replace(make_db, tmp_path) -> None:
    root, state = _state(tmp_path, PLACEHOLDER_VIEW)
    placeholder, drop = state.statements[2], state.statements[1]
    assert placeholder.run_once and drop.run_once and not state.statements[-1].run_once
    url = make_db()
    _converges(url, state)
    [(definition,)] = _rows(url, "SELECT pg_get_viewdef('public.w'::regclass)")
    assert "GROUP BY t.id" in definition
    assert run("plan", "--database-url", url, "--state", root, "--check").returncode == 0


def test_a_placeholder_function_is_redefined_by_create_or_replace(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, """\
CREATE FUNCTION public.n() RETURNS bigint LANGUAGE sql AS $$ SELECT NULL::bigint $$;
CREATE TABLE public.t (id integer);
CREATE VIEW public.v AS SELECT public.n() AS n;
CREATE OR REPLACE FUNCTION public.n() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM public.t $$;
""")
    url = make_db()
    _converges(url, state)
    [(body,)] = _rows(url, "SELECT prosrc FROM pg_proc WHERE proname = 'n'")
    assert "count(*)" in body


def test_a_failed_placeholder_is_not_run_again_after_its_real_definition(make_db, tmp_path) -> None:
    """pg_dump --clean --if-exists writes a placeholder before the DROPs; here it names a type created later, so
    it fails where it is written; run again after the real definition it would replace it (it is run once)."""
    _root, state = _state(tmp_path, """\
CREATE OR REPLACE VIEW public.w AS SELECT NULL::public.mood AS m;
DROP VIEW IF EXISTS public.w;
DROP TABLE IF EXISTS public.t;
DROP TYPE IF EXISTS public.mood;
CREATE TYPE public.mood AS ENUM ('sad', 'ok');
CREATE TABLE public.t (id integer, m public.mood);
CREATE VIEW public.w AS SELECT NULL::public.mood AS m;
CREATE OR REPLACE VIEW public.w AS SELECT t.m FROM public.t;
""")
    url = make_db()
    _converges(url, state)
    [(definition,)] = _rows(url, "SELECT pg_get_viewdef('public.w'::regclass)")
    assert "FROM t" in definition


def test_drops_without_if_exists_do_not_remove_what_the_state_declares(make_db, tmp_path) -> None:
    """pg_dump --clean without --if-exists: each DROP (and ALTER TABLE ... DROP) fails on the empty plan database
    and is not retried after the CREATEs (which would drop the objects again)."""
    _root, state = _state(tmp_path, """\
ALTER TABLE ONLY public.c DROP CONSTRAINT c_p_fkey;
ALTER TABLE ONLY public.p DROP CONSTRAINT p_pkey;
ALTER TABLE public.p ALTER COLUMN id DROP DEFAULT;
DROP TABLE public.c;
DROP SEQUENCE public.p_id_seq;
DROP TABLE public.p;
CREATE TABLE public.p (id integer NOT NULL);
CREATE SEQUENCE public.p_id_seq AS integer;
ALTER SEQUENCE public.p_id_seq OWNED BY public.p.id;
ALTER TABLE ONLY public.p ALTER COLUMN id SET DEFAULT nextval('public.p_id_seq'::regclass);
CREATE TABLE public.c (p_id integer);
ALTER TABLE ONLY public.p ADD CONSTRAINT p_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.c ADD CONSTRAINT c_p_fkey FOREIGN KEY (p_id) REFERENCES public.p(id);
""")
    url = make_db()
    _converges(url, state)
    desired = read_catalog(url)
    assert desired.get("constraint:public.p.p_pkey") and desired.get("fkey:public.c.c_p_fkey")
    assert desired.get("column:public.p.id").attrs["default"].startswith("nextval(")


@pytest.mark.parametrize("text,message", [
    ("CREATE VIEW w AS SELECT 1 AS a;\nCREATE VIEW w AS SELECT 2 AS a;\n", "duplicate definition: view public.w"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
     "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';\n", "duplicate definition: function public.f()"),
    ("CREATE TABLE w (a int);\nCREATE OR REPLACE VIEW w AS SELECT 1 AS a;\n", "duplicate definition: view public.w"),
])
def test_what_stays_an_error(tmp_path, text, message) -> None:
    with pytest.raises(StateErrors) as err:
        _state(tmp_path, text)
    assert message in str(err.value)


def test_a_drop_between_two_definitions_ends_the_first(tmp_path) -> None:
    _root, state = _state(tmp_path, "CREATE VIEW w AS SELECT 1 AS a;\nDROP VIEW w;\nCREATE VIEW w AS SELECT 2 AS a;\n")
    assert [s.run_once for s in state.statements] == [True, True, False]


def test_an_object_declared_and_dropped_for_good_is_not_desired(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, "CREATE TABLE keep (a int);\nCREATE TABLE gone (a int);\nDROP TABLE gone;\n")
    url = make_db("CREATE TABLE gone (a int);")
    _converges(url, state)
    assert _rows(url, "SELECT relname FROM pg_class WHERE relname IN ('keep', 'gone')") == [("keep",)]


def _dump(url: str, *flags: str) -> str:
    tools = rehearsal.find_tools(engine.plandb.server_major(url))
    if tools is None:
        pytest.skip("no pg_dump of the server's major version")
    out = subprocess.run([tools[0], "--schema-only", *flags, url], capture_output=True, text=True, check=True)
    return out.stdout


DUMPED = """\
CREATE EXTENSION pg_trgm;
COMMENT ON EXTENSION pg_trgm IS 'trigrams, as an older server said it';
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE tt (id serial PRIMARY KEY, v int, m mood, name text);
CREATE TABLE child (tt_id int REFERENCES tt);
CREATE VIEW w AS SELECT tt.id, tt.v, tt.m FROM tt GROUP BY tt.id;
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER trg BEFORE INSERT ON tt FOR EACH ROW EXECUTE FUNCTION f();
CREATE INDEX tt_name ON tt ((lower(name)));
ALTER INDEX tt_name ALTER COLUMN 1 SET STATISTICS 3000;
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS a WITH NO DATA;
"""


@pytest.mark.parametrize("flags", [(), ("--clean",), ("--clean", "--if-exists")])
def test_a_dump_of_a_schema_converges_from_empty_through_the_cli(make_db, tmp_path, flags) -> None:
    source = make_db(DUMPED)
    root = str(write_state(tmp_path / "dump", {"schema.sql": _dump(source, *flags)}))
    url = make_db()
    _cli_converges(url, root)
    assert not diff_catalogs(read_catalog(url), read_catalog(source))
    assert _rows(url, "SELECT obj_description(oid, 'pg_extension') FROM pg_extension WHERE extname = 'pg_trgm'") \
        == [("trigrams, as an older server said it",)]


# --- 2. type changes PostgreSQL has no cast for ---------------------------------------------------------

TO_UUID = "CREATE TABLE public.t (id integer PRIMARY KEY, c uuid);\n"


def _bigint_table(make_db, rows: bool) -> str:
    return make_db("CREATE TABLE public.t (id integer PRIMARY KEY, c bigint);"
                   + (" INSERT INTO public.t VALUES (1, 5), (2, 7);" if rows else ""))


def test_no_cast_on_an_empty_table_converts_without_deleting_anything(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, TO_UUID)
    url = _bigint_table(make_db, rows=False)
    p = engine.plan(url, state).plan
    assert HazardType.DELETES_DATA not in p.hazard_types()
    assert "USING NULL" in p.steps[0].sql and "RAISE EXCEPTION" in p.steps[0].sql
    _converges(url, state)


def test_no_cast_on_a_table_with_rows_deletes_the_values_with_a_hazard(make_db, tmp_path) -> None:
    root, state = _state(tmp_path, TO_UUID)
    url = _bigint_table(make_db, rows=True)
    p = engine.plan(url, state).plan
    [hazard] = [h for h in p.steps[0].hazards if h.type == HazardType.DELETES_DATA]
    assert "no cast from bigint to uuid for public.t.c" in hazard.message
    assert "-- schema-pipeline: using" in hazard.message
    refused = run("apply", "--database-url", url, "--state", root, "--yes")
    assert refused.returncode == 1 and "DELETES_DATA" in refused.stderr
    assert _rows(url, "SELECT id, c FROM public.t ORDER BY id") == [(1, 5), (2, 7)]
    _cli_converges(url, root)
    assert _rows(url, "SELECT id, c FROM public.t ORDER BY id") == [(1, None), (2, None)]


def test_no_cast_takes_the_new_default(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, "CREATE TABLE public.t (id integer PRIMARY KEY, "
                                    "c uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001');\n")
    url = _bigint_table(make_db, rows=True)
    _converges(url, state)
    assert {r[0] for r in _rows(url, "SELECT c::text FROM public.t")} == {"00000000-0000-0000-0000-000000000001"}


def test_a_declared_conversion_keeps_the_values(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, """\
CREATE TABLE public.t (
    id integer PRIMARY KEY,
    -- schema-pipeline: using md5(c::text)::uuid
    c uuid
);
""")
    assert state.conversions == {"public.t.c": "md5(c::text)::uuid"}
    url = _bigint_table(make_db, rows=True)
    p = engine.plan(url, state).plan
    assert HazardType.DELETES_DATA not in p.hazard_types()
    _converges(url, state)
    assert _rows(url, "SELECT c::text FROM public.t WHERE id = 1") == [("e4da3b7f-bbce-2345-d777-2b0674a318d5",)]


def test_a_declared_conversion_must_be_one_expression(tmp_path) -> None:
    with pytest.raises(StateErrors) as err:
        _state(tmp_path, "CREATE TABLE t (\n  c uuid -- schema-pipeline: using NULL); DROP TABLE x; SELECT (1\n);\n")
    assert "schema.sql:2:" in str(err.value) and "must be one SQL expression" in str(err.value)


def test_a_table_with_row_security_keeps_the_hazard(make_db, tmp_path) -> None:
    """Row security could hide rows from the planning role: emptiness is not believed."""
    _root, state = _state(tmp_path, TO_UUID + "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;\n")
    url = make_db("CREATE TABLE public.t (id integer PRIMARY KEY, c bigint); "
                  "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;")
    assert HazardType.DELETES_DATA in engine.plan(url, state).plan.hazard_types()


def test_rows_that_arrive_after_an_empty_plan_stop_the_apply(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, TO_UUID)
    url = _bigint_table(make_db, rows=False)
    p = engine.plan(url, state).plan
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.t VALUES (1, 5)")
    with pytest.raises(Exception, match="had none when the plan was made"):
        engine.apply_plan(url, p, state=state, allow_hazards="all", rehearse=False)
    assert _rows(url, "SELECT id, c FROM public.t") == [(1, 5)]


def test_no_cast_of_a_key_column_is_still_refused(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, "CREATE TABLE public.t (id uuid PRIMARY KEY);\n")
    url = make_db("CREATE TABLE public.t (id bigint PRIMARY KEY);")
    with pytest.raises(Exception, match="no cast from bigint to uuid, and the column is part of public.t.t_pkey"):
        engine.plan(url, state)


@pytest.mark.parametrize("old,new,castable", [
    ("bigint", "uuid", False), ("integer", "date", False), ("bigint", "timestamp without time zone", False),
    ("integer", "boolean", True), ("smallint", "boolean", False), ("text", "uuid", True), ("uuid", "text", True),
    ("bigint", "bigint[]", False), ("text[]", "integer[]", True), ("jsonb", "integer", True),
    ("character varying(10)", "numeric(5,2)", True), ("public.mytype", "uuid", True),
])
def test_which_type_changes_have_a_cast(old, new, castable, make_db) -> None:
    """The built-in cast table, checked against PostgreSQL itself."""
    from schema_pipeline.diff.columns import has_cast

    assert has_cast(old, new) is castable
    if "public." not in old:
        with psycopg.connect(make_db(), autocommit=True) as conn:
            try:
                conn.execute(f"SELECT CAST(NULL::{old} AS {new})")
                server = True
            except psycopg.errors.CannotCoerce:
                server = False
        assert server is castable


# --- 3. statistics targets of index columns ---------------------------------------------------------------

INDEX_STATS = """\
CREATE TABLE public.t (id integer, v text, r int4range);
CREATE INDEX i ON public.t USING btree (lower(v), id, ((id + 1)));
ALTER INDEX public.i ALTER COLUMN 1 SET STATISTICS {a};
ALTER INDEX public.i ALTER COLUMN 3 SET STATISTICS 0;
ALTER TABLE public.t ADD CONSTRAINT ex EXCLUDE USING gist (r WITH &&, int4range(id, id + 1) WITH &&);
ALTER INDEX public.ex ALTER COLUMN 2 SET STATISTICS 500;
"""


def _index_stats(url: str) -> list[tuple]:
    return _rows(url, "SELECT c.relname, a.attnum, a.attstattarget FROM pg_attribute a JOIN pg_class c "
                      "ON c.oid = a.attrelid WHERE c.relname IN ('i', 'ex') AND a.attstattarget >= 0 ORDER BY 1, 2")


def test_statistics_targets_of_index_columns_are_managed(make_db, tmp_path) -> None:
    url = make_db()
    root = str(write_state(tmp_path / "a", {"schema.sql": INDEX_STATS.format(a=3000)}))
    _cli_converges(url, root)
    assert _index_stats(url) == [("ex", 2, 500), ("i", 1, 3000), ("i", 3, 0)]
    changed = INDEX_STATS.format(a=100).replace("ALTER INDEX public.i ALTER COLUMN 3 SET STATISTICS 0;\n", "")
    _root, state = _state(tmp_path / "b", changed)
    steps = engine.plan(url, state).plan.steps
    assert [s.sql for s in steps] == ['ALTER INDEX "public"."i" ALTER COLUMN 1 SET STATISTICS 100;',
                                      'ALTER INDEX "public"."i" ALTER COLUMN 3 SET STATISTICS -1;']
    _converges(url, state)
    assert _index_stats(url) == [("ex", 2, 500), ("i", 1, 100)]


# --- 4. comments on extensions ----------------------------------------------------------------------------

def test_the_comment_of_a_new_extension_is_set(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, "CREATE EXTENSION pg_trgm;\nCOMMENT ON EXTENSION pg_trgm IS 'x';\n")
    url = make_db()
    result = _converges(url, state)
    assert [s.sql for s in result.plan.steps][-1] == "COMMENT ON EXTENSION \"pg_trgm\" IS 'x';"
    assert _rows(url, "SELECT obj_description(oid, 'pg_extension') FROM pg_extension WHERE extname = 'pg_trgm'") \
        == [("x",)]


def test_the_comment_of_an_existing_extension_is_changed(make_db, tmp_path) -> None:
    _root, state = _state(tmp_path, "CREATE EXTENSION pg_trgm;\nCOMMENT ON EXTENSION pg_trgm IS 'y';\n")
    url = make_db("CREATE EXTENSION pg_trgm;")
    _converges(url, state)
    assert _rows(url, "SELECT obj_description(oid, 'pg_extension') FROM pg_extension WHERE extname = 'pg_trgm'") \
        == [("y",)]
