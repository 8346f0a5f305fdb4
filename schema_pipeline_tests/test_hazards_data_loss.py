"""Hazards that match the data (issue 14, item 4), against the real server.

- A lossy column type change is DELETES_DATA (not only TABLE_REWRITE): on a table WITH ROWS, `apply`
  refuses it until DELETES_DATA is allowed, and the refused apply leaves the data as it was.
- Widenings (varchar(50) -> varchar(100), varchar -> text, int -> bigint, ...) are not DELETES_DATA, and
  TABLE_REWRITE is predicted exactly when PostgreSQL rewrites the table (its relfilenode changes).
- SET UNLOGGED is UNLOGGED_TABLE.
- A LANGUAGE C/internal function, or a SECURITY DEFINER function that runs dynamic SQL and that PUBLIC
  may execute, is UNSAFE_FUNCTION (refused by `apply`) and an ERROR of the migration review.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import psycopg
import pytest

from schema_pipeline import engine
from schema_pipeline.config import HAZARD_NAMES, load_config
from schema_pipeline.diff import diff_catalogs
from schema_pipeline.diff.columns import lossy_conversion, type_change_hazards
from schema_pipeline.errors import HazardsNotAllowed, SchemaPipelineError
from schema_pipeline.plan.model import Hazard, HazardType, Plan, Step
from schema_pipeline.review import Severity, has_blocking, review_plan
from schema_pipeline.state import load_state
from schema_pipeline_tests.engine_harness import read_catalog
from schema_pipeline_tests.test_apply_support import CLI, scalar, write_state

DELETES = str(HazardType.DELETES_DATA)
REWRITE = str(HazardType.TABLE_REWRITE)
UNLOGGED = str(HazardType.UNLOGGED_TABLE)
UNSAFE = str(HazardType.UNSAFE_FUNCTION)


def _table(col_type: str) -> str:
    return f"CREATE TABLE public.t (id int PRIMARY KEY, v {col_type});\n"


def _rows(*values: str) -> str:
    return "".join(f"INSERT INTO public.t VALUES ({i}, {v});\n" for i, v in enumerate(values, 1))


# name -> (target: the table with rows, desired state, the column's type after apply, its values after apply;
#          None = not compared, e.g. timestamptz -> timestamp depends on the session's time zone)
LOSSY: dict[str, tuple[str, str, str, list[str] | None]] = {
    "bit_shrink": (_table("bit(8)") + _rows("B'10101010'", "B'00001111'"), _table("bit(4)"), "bit(4)",
                   ["1010", "0000"]),
    "varbit_shrink": (_table("bit varying(8)") + _rows("B'101'", "B'11110000'"), _table("bit varying(4)"),
                      "bit varying(4)", ["101", "1111"]),
    "unbounded_varbit_shrink": (_table("bit varying") + _rows("B'1111000011'"), _table("bit varying(4)"),
                                "bit varying(4)", ["1111"]),
    "float8_to_real": (_table("double precision") + _rows("1.23456789012345"), _table("real"), "real",
                       ["1.2345679"]),
    "numeric_scale_shrink": (_table("numeric(10,4)") + _rows("3.14159"), _table("numeric(10,2)"),
                             "numeric(10,2)", ["3.14"]),
    "numeric_precision_shrink": (_table("numeric(12,2)") + _rows("123.45"), _table("numeric(8,2)"),
                                 "numeric(8,2)", ["123.45"]),
    "numeric_to_integer": (_table("numeric(10,2)") + _rows("2.6", "-7.5"), _table("integer"), "integer",
                           ["3", "-8"]),
    "numeric_to_bigint": (_table("numeric") + _rows("41.5"), _table("bigint"), "bigint", ["42"]),
    "timestamptz_to_timestamp": (_table("timestamp with time zone") + _rows("'2024-05-01 12:00:00+02'"),
                                 _table("timestamp without time zone"), "timestamp without time zone", None),
    "text_to_varchar_n": (_table("text") + _rows("'abcdefgh'", "'ab'"), _table("varchar(5)"),
                          "character varying(5)", ["abcde", "ab"]),
    "varchar_to_varchar_n": (_table("varchar") + _rows("'abcdefgh'"), _table("varchar(3)"),
                             "character varying(3)", ["abc"]),
    "varchar_shrink": (_table("varchar(20)") + _rows("'abcdefgh'"), _table("varchar(5)"),
                       "character varying(5)", ["abcde"]),
    "char_shrink": (_table("char(10)") + _rows("'abcdefgh'"), _table("char(3)"), "character(3)", ["abc"]),
    "bigint_to_int": (_table("bigint") + _rows("42", "-7"), _table("integer"), "integer", ["42", "-7"]),
    "int_to_smallint": (_table("integer") + _rows("42"), _table("smallint"), "smallint", ["42"]),
    "bigint_to_smallint": (_table("bigint") + _rows("42"), _table("smallint"), "smallint", ["42"]),
    "int_array_narrowing": (_table("bigint[]") + _rows("'{1,2}'"), _table("integer[]"), "integer[]", ["{1,2}"]),
    "enum_value_removed": (
        "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');\n" + _table("public.mood")
        + _rows("'sad'", "'happy'"),
        "CREATE TYPE public.mood AS ENUM ('sad', 'happy');\n" + _table("public.mood"),
        "mood",
        ["sad", "happy"],
    ),
}

# name -> (old type, new type, whether PostgreSQL rewrites the table; None: TABLE_REWRITE because it may, as
#          timestamp -> timestamptz is rewritten unless the session's TimeZone is UTC)
WIDENING: dict[str, tuple[str, str, bool | None]] = {
    "varchar_longer": ("varchar(50)", "varchar(100)", False),
    "varchar_to_text": ("varchar(50)", "text", False),
    "varchar_unbounded": ("varchar(50)", "varchar", False),
    "text_to_varchar": ("text", "varchar", False),
    "int_to_bigint": ("integer", "bigint", True),
    "smallint_to_int": ("smallint", "integer", True),
    "numeric_precision_up": ("numeric(10,2)", "numeric(12,2)", False),
    "numeric_unbounded": ("numeric(10,2)", "numeric", False),
    "numeric_scale_up": ("numeric(10,2)", "numeric(12,4)", True),
    "real_to_double": ("real", "double precision", True),
    "varbit_longer": ("bit varying(4)", "bit varying(8)", False),
    "char_longer": ("char(3)", "char(10)", True),
    "timestamp_precision_up": ("timestamp(3)", "timestamp(6)", False),
    "timestamp_to_timestamptz": ("timestamp", "timestamptz", None),
    "int_to_numeric": ("integer", "numeric", True),
    "int_to_text": ("integer", "text", True),
}
WIDENING_ROWS = {"bit varying(4)": "B'101'", "char(3)": "'ab'", "timestamp(3)": "'2024-05-01 12:00:00.123'",
                 "timestamp": "'2024-05-01 12:00:00'"}


def _state(tmp_path, sql: str, name: str = "schema.sql"):
    root = tmp_path / f"state_{uuid.uuid4().hex[:8]}"
    return load_state(str(write_state(root, {name: sql})))


def _column(url: str) -> tuple[str, list[str | None]]:
    """(type, values ordered by id) of public.t.v."""
    with psycopg.connect(url, autocommit=True) as conn:
        typ = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'public.t'::regclass AND attname = 'v'").fetchone()[0]
        values = [r[0] for r in conn.execute("SELECT v::text FROM public.t ORDER BY id")]
    return typ, values


def _relfilenode(url: str, table: str = "public.t") -> int:
    return scalar(url, "SELECT relfilenode FROM pg_class WHERE oid = %s::regclass", (table,))


def _steps_with(p: Plan, hazard: str) -> list[Step]:
    return [s for s in p.steps if any(str(h.type) == hazard for h in s.hazards)]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SCHEMA_PIPELINE_DEBUG")}
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert "Traceback" not in out.stderr, out.stderr
    return out


# --- lossy conversions: the data-loss matrix ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOSSY))
def test_lossy_conversion_is_refused_until_deletes_data_is_allowed(make_db, tmp_path, name: str) -> None:
    target_sql, desired_sql, new_type, after = LOSSY[name]
    url = make_db(target_sql)
    state = _state(tmp_path, desired_sql)
    p = engine.plan(url, state).plan
    lossy = _steps_with(p, DELETES)
    assert lossy, "\n".join(s.sql for s in p.steps)
    assert all("ALTER COLUMN" in s.sql and " TYPE " in s.sql for s in lossy), [s.sql for s in lossy]
    assert all(REWRITE in {str(h.type) for h in s.hazards} for s in lossy)
    hazards = p.hazard_types()

    before = _column(url)
    node = _relfilenode(url)
    with pytest.raises(HazardsNotAllowed, match=DELETES):
        engine.apply(url, state)
    with pytest.raises(HazardsNotAllowed, match=DELETES):  # everything else the plan needs is not enough
        engine.apply(url, state, allow_hazards=hazards - {DELETES})
    assert _column(url) == before and _relfilenode(url) == node, "a refused apply changed the target"

    result = engine.apply(url, state, allow_hazards=hazards)
    assert result.converged, result.remaining
    typ, values = _column(url)
    assert typ.endswith(new_type), typ
    assert all(v is not None for v in values) and len(values) == len(before[1])
    if after is not None:
        assert values == after
    assert engine.plan(url, state).plan.is_empty


def test_lossy_conversion_through_the_cli(make_db, tmp_path) -> None:
    """The CLI contract: exit 1 and the target untouched without DELETES_DATA, exit 0 with it."""
    url = make_db(_table("varchar(20)") + _rows("'abcdefgh'"))
    root = str(write_state(tmp_path / "s", {"t.sql": _table("varchar(5)")}))
    plan = json.loads(run_cli("plan", "--database-url", url, "--state", root, "--format", "json").stdout)
    assert DELETES in plan["hazards"]
    refused = run_cli("apply", "--database-url", url, "--state", root, "--yes")
    assert refused.returncode == 1 and DELETES in refused.stderr, refused.stderr
    others = ",".join(h for h in plan["hazards"] if h != DELETES)
    refused = run_cli("apply", "--database-url", url, "--state", root, "--allow-hazards", others, "--yes")
    assert refused.returncode == 1 and DELETES in refused.stderr, refused.stderr
    assert _column(url) == ("character varying(20)", ["abcdefgh"])
    ok = run_cli("apply", "--database-url", url, "--state", root, "--allow-hazards",
                 ",".join(plan["hazards"]), "--yes")
    assert ok.returncode == 0, ok.stderr
    assert _column(url) == ("character varying(5)", ["abcde"])


def test_lossy_conversion_is_a_review_finding(make_db, tmp_path) -> None:
    url = make_db(_table("bigint") + _rows("1"))
    state = _state(tmp_path, _table("integer"))
    findings = review_plan(engine.plan(url, state).plan.steps, "prod", state=state)
    ids = {f.rule_id for f in findings}
    assert {"migration.deletes-data", "migration.column-type-rewrite"} <= ids
    deletes = next(f for f in findings if f.rule_id == "migration.deletes-data")
    assert "bigint to integer" in deletes.message and deletes.file == "schema.sql"


# --- widenings ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WIDENING))
def test_widening_is_not_deletes_data(make_db, tmp_path, name: str) -> None:
    old, new, rewrites = WIDENING[name]
    url = make_db(_table(old) + _rows(WIDENING_ROWS.get(old, "'1'")))
    state = _state(tmp_path, _table(new))
    p = engine.plan(url, state).plan
    assert p.steps, name
    hazards = p.hazard_types()
    assert DELETES not in hazards, [h.message for s in p.steps for h in s.hazards]
    assert (REWRITE in hazards) == (rewrites is not False), hazards
    with psycopg.connect(url, autocommit=True) as conn:  # each value as the new type shows it
        before = [r[0] for r in conn.execute(f"SELECT v::{new}::text FROM public.t ORDER BY id")]
    node = _relfilenode(url)
    result = engine.apply(url, state, allow_hazards=hazards)
    assert result.converged, result.remaining
    if rewrites is not None:
        assert (_relfilenode(url) != node) == rewrites, "TABLE_REWRITE does not match what PostgreSQL did"
    assert _column(url)[1] == before
    assert engine.plan(url, state).plan.is_empty


def test_binary_coercible_widening_needs_no_rewrite_or_data_hazard(make_db, tmp_path) -> None:
    """varchar(50) -> varchar(100) only takes the lock: it applies with ACQUIRES_ACCESS_EXCLUSIVE_LOCK alone."""
    url = make_db(_table("varchar(50)") + _rows("'x'"))
    state = _state(tmp_path, _table("varchar(100)"))
    assert engine.apply(url, state, allow_hazards={"ACQUIRES_ACCESS_EXCLUSIVE_LOCK"}).converged
    assert _column(url) == ("character varying(100)", ["x"])


# Each pair is converted on the real server the way the plan does it (USING v::new); the relfilenode says
# whether PostgreSQL rewrote the table, which must match the TABLE_REWRITE prediction.
REWRITE_PAIRS = [
    ("character varying(10)", "character varying(20)"), ("character varying(10)", "text"),
    ("text", "character varying"), ("character varying(20)", "character varying(10)"),
    ("text", "character varying(10)"), ("numeric(10,2)", "numeric(12,2)"), ("numeric(10,2)", "numeric"),
    ("numeric(10,2)", "numeric(12,4)"), ("numeric(10,2)", "numeric(8,2)"), ("numeric(5)", "numeric(7,0)"),
    ("bit varying(5)", "bit varying(10)"), ("bit varying(5)", "bit varying"), ("bit(5)", "bit(3)"),
    ("timestamp(3) without time zone", "timestamp(6) without time zone"),
    ("timestamp(3) with time zone", "timestamp with time zone"), ("time(2) without time zone", "time(4) without time zone"),
    ("time(2) with time zone", "time(4) with time zone"), ("interval(3)", "interval(5)"),
    ("timestamp(6) without time zone", "timestamp(3) without time zone"), ("integer", "bigint"),
    ("bigint", "integer"), ("character(3)", "character(5)"), ("character varying(10)[]", "character varying(20)[]"),
]


def test_table_rewrite_prediction_matches_the_server(make_db) -> None:
    url = make_db()
    wrong = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i, (old, new) in enumerate(REWRITE_PAIRS):
            table = f"public.r{i}"
            conn.execute(f"CREATE TABLE {table} (v {old})")
            conn.execute(f"INSERT INTO {table} VALUES (NULL)")
            node = conn.execute(f"SELECT relfilenode FROM pg_class WHERE oid = '{table}'::regclass").fetchone()[0]
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN v TYPE {new} USING v::{new}")
            after = conn.execute(f"SELECT relfilenode FROM pg_class WHERE oid = '{table}'::regclass").fetchone()[0]
            predicted = any(h.type == HazardType.TABLE_REWRITE for h in type_change_hazards("c", old, new))
            if predicted != (after != node):
                wrong.append((old, new, f"predicted rewrite={predicted}, server rewrote={after != node}"))
    assert not wrong, wrong


LOSSY_PAIRS = [
    ("bit(8)", "bit(4)"), ("bit varying(8)", "bit varying(4)"), ("bit varying", "bit(4)"),
    ("double precision", "real"), ("numeric(10,4)", "numeric(10,2)"), ("numeric(12,2)", "numeric(8,2)"),
    ("numeric", "numeric(10,2)"), ("numeric(10,2)", "integer"), ("numeric", "smallint"), ("real", "integer"),
    ("double precision", "bigint"), ("numeric", "double precision"), ("bigint", "double precision"),
    ("integer", "real"), ("timestamp with time zone", "timestamp without time zone"),
    ("timestamp without time zone", "date"), ("time with time zone", "time without time zone"),
    ("timestamp(6) with time zone", "timestamp(0) with time zone"), ("text", "character varying(10)"),
    ("text", "character(10)"), ("character varying", "character varying(10)"),
    ("character varying(20)", "character varying(10)"), ("character(10)", "character(5)"),
    ("character varying(20)", "character(10)"), ("bigint", "integer"), ("integer", "smallint"),
    ("bigint", "smallint"), ("bigint[]", "integer[]"), ("text[]", "character varying(3)[]"), ("json", "jsonb"),
]
SAFE_PAIRS = [
    ("character varying(50)", "character varying(100)"), ("character varying", "text"), ("text", "character varying"),
    ("character varying(10)", "text"), ("integer", "bigint"), ("smallint", "integer"), ("smallint", "bigint"),
    ("numeric(10,2)", "numeric(12,2)"), ("numeric(10,2)", "numeric"), ("numeric(10,2)", "numeric(12,4)"),
    ("real", "double precision"), ("integer", "double precision"), ("smallint", "real"), ("integer", "numeric"),
    ("bit(4)", "bit(8)"), ("bit varying(4)", "bit varying"), ("character(3)", "character(10)"),
    ("timestamp without time zone", "timestamp with time zone"), ("date", "timestamp without time zone"),
    ("timestamp(3) without time zone", "timestamp without time zone"), ("integer[]", "bigint[]"),
    ("integer", "text"), ("text", "integer"), ("jsonb", "json"),
]


@pytest.mark.parametrize(("old", "new"), LOSSY_PAIRS)
def test_lossy_pairs(old: str, new: str) -> None:
    assert lossy_conversion(old, new)
    assert HazardType.DELETES_DATA in {h.type for h in type_change_hazards("public.t.v", old, new)}


@pytest.mark.parametrize(("old", "new"), SAFE_PAIRS)
def test_safe_pairs(old: str, new: str) -> None:
    assert lossy_conversion(old, new) is None
    assert HazardType.DELETES_DATA not in {h.type for h in type_change_hazards("public.t.v", old, new)}


# --- SET UNLOGGED ------------------------------------------------------------------------------------------------

EVENTS = "CREATE {}TABLE public.events (id int PRIMARY KEY, note text);\n"


def _persistence(url: str) -> str:
    return scalar(url, "SELECT relpersistence::text FROM pg_class WHERE oid = 'public.events'::regclass")


def test_set_unlogged_is_its_own_hazard(make_db, tmp_path) -> None:
    url = make_db(EVENTS.format("") + "INSERT INTO public.events SELECT g, 'n' FROM generate_series(1, 50) g;")
    state = _state(tmp_path, EVENTS.format("UNLOGGED "))
    p = engine.plan(url, state).plan
    [unlogged] = _steps_with(p, UNLOGGED)
    assert "SET UNLOGGED" in unlogged.sql
    assert {str(h.type) for h in unlogged.hazards} == {REWRITE, UNLOGGED}
    with pytest.raises(HazardsNotAllowed, match=UNLOGGED):
        engine.apply(url, state, allow_hazards={REWRITE})
    assert _persistence(url) == "p"

    findings = review_plan(p.steps, "prod", state=state)
    [finding] = [f for f in findings if f.rule_id == "migration.unlogged-table"]
    assert finding.severity == Severity.WARNING and finding.file == "schema.sql"

    root = str(state.root)
    refused = run_cli("apply", "--database-url", url, "--state", root, "--allow-hazards", REWRITE, "--yes")
    assert refused.returncode == 1 and UNLOGGED in refused.stderr, refused.stderr
    assert _persistence(url) == "p"
    ok = run_cli("apply", "--database-url", url, "--state", root, "--allow-hazards",
                 f"{REWRITE},{UNLOGGED.lower()}", "--yes")
    assert ok.returncode == 0, ok.stderr
    assert _persistence(url) == "u"
    assert scalar(url, "SELECT count(*) FROM public.events") == 50


def test_set_logged_is_not_unlogged_hazard(make_db, tmp_path) -> None:
    url = make_db(EVENTS.format("UNLOGGED ") + "INSERT INTO public.events VALUES (1, 'n');")
    state = _state(tmp_path, EVENTS.format(""))
    p = engine.plan(url, state).plan
    assert p.hazard_types() == {REWRITE}
    assert engine.apply(url, state, allow_hazards={REWRITE}).converged
    assert _persistence(url) == "p"


def test_new_hazard_names_are_accepted_in_the_configuration(tmp_path) -> None:
    cfg = tmp_path / "schema_pipeline.yaml"
    cfg.write_text("environments:\n  prod:\n    database_url_env: PROD_DSN\n"
                   "    allow_hazards: [unlogged_table, UNSAFE_FUNCTION]\n")
    [prod] = load_config(cfg).environments
    assert prod.allow_hazards == (UNLOGGED, UNSAFE)
    assert {UNLOGGED, UNSAFE} <= set(HAZARD_NAMES)


# --- unsafe functions --------------------------------------------------------------------------------------------

RUN_SQL = ("CREATE FUNCTION public.run_sql(q text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER\n"
           "AS $$ BEGIN EXECUTE q; END $$;\n")
REVOKE = "REVOKE EXECUTE ON FUNCTION public.run_sql(text) FROM PUBLIC;\n"


def _table_only() -> str:
    return "CREATE TABLE public.t (id int PRIMARY KEY);\n"


def _has_function(url: str, signature: str) -> bool:
    return scalar(url, "SELECT to_regprocedure(%s) IS NOT NULL", (signature,))


def test_security_definer_dynamic_sql_for_public_is_refused(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE public.t (id int PRIMARY KEY);")
    state = _state(tmp_path, _table_only() + RUN_SQL, "functions.sql")
    p = engine.plan(url, state).plan
    [unsafe] = _steps_with(p, UNSAFE)
    assert unsafe.object_kind == "function" and unsafe.action == "create"
    message = next(h.message for h in unsafe.hazards if str(h.type) == UNSAFE)
    assert "SECURITY DEFINER" in message and "PUBLIC" in message and "EXECUTE" in message

    with pytest.raises(HazardsNotAllowed, match=UNSAFE):
        engine.apply(url, state, allow_hazards=p.hazard_types() - {UNSAFE})
    assert not _has_function(url, "public.run_sql(text)")

    findings = review_plan(p.steps, "prod", state=state)
    [finding] = [f for f in findings if f.rule_id == "migration.unsafe-function"]
    assert finding.severity == Severity.ERROR and has_blocking(findings)
    assert finding.file == "functions.sql" and finding.line == 2

    assert engine.apply(url, state, allow_hazards=p.hazard_types()).converged
    assert _has_function(url, "public.run_sql(text)")


def test_revoked_from_public_is_not_unsafe(make_db, tmp_path) -> None:
    url = make_db(_table_only())
    state = _state(tmp_path, _table_only() + RUN_SQL + REVOKE)
    p = engine.plan(url, state).plan
    assert UNSAFE not in p.hazard_types()
    assert not [f for f in review_plan(p.steps, "prod") if f.rule_id == "migration.unsafe-function"]
    assert engine.apply(url, state, allow_hazards=p.hazard_types()).converged
    assert not scalar(url, "SELECT has_function_privilege('public', 'public.run_sql(text)', 'EXECUTE')")


SAFE_FUNCTIONS = {
    "invoker_with_execute": "CREATE FUNCTION public.f(q text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE q; END $$;",
    "definer_static_plpgsql": (
        "CREATE FUNCTION public.f(i int) RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$\n"
        "BEGIN -- EXECUTE q;\n  PERFORM 'EXECUTE q, dblink_exec(x)'; RETURN i + 1; END $$;"),
    "definer_static_sql": "CREATE FUNCTION public.f(i int) RETURNS int LANGUAGE sql SECURITY DEFINER "
                          "AS $$ SELECT i + 1 $$;",
    "definer_atomic_sql": "CREATE FUNCTION public.f(i int) RETURNS int LANGUAGE sql SECURITY DEFINER "
                          "BEGIN ATOMIC SELECT i + 1; END;",
    "definer_grants_execute": (
        "CREATE FUNCTION public.f() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$\n"
        "BEGIN GRANT EXECUTE ON FUNCTION public.g() TO PUBLIC; END $$;"),
}
UNSAFE_FUNCTIONS = {
    "plpgsql_execute_format": (
        "CREATE FUNCTION public.f(t text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$\n"
        "DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %I', t) INTO n; RETURN n; END $$;"),
    "plpgsql_for_in_execute": (
        "CREATE FUNCTION public.f(q text) RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER AS $$\n"
        "DECLARE r record; BEGIN FOR r IN EXECUTE q LOOP RETURN NEXT r::text; END LOOP; END $$;"),
    "plpgsql_return_query_execute": (
        "CREATE FUNCTION public.f(q text) RETURNS SETOF int LANGUAGE plpgsql SECURITY DEFINER AS $$\n"
        "BEGIN RETURN QUERY EXECUTE q; END $$;"),
    "procedure_execute": (
        "CREATE PROCEDURE public.f(q text) LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN EXECUTE q; END $$;"),
    "sql_query_to_xml": ("CREATE FUNCTION public.f(q text) RETURNS xml LANGUAGE sql SECURITY DEFINER "
                         "AS $$ SELECT query_to_xml(q, true, false, '') $$;"),
    "atomic_query_to_xml": ("CREATE FUNCTION public.f(q text) RETURNS xml LANGUAGE sql SECURITY DEFINER "
                            "BEGIN ATOMIC SELECT query_to_xml(q, true, false, ''); END;"),
    "plpgsql_ts_stat": (
        "CREATE FUNCTION public.f(q text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$\n"
        "BEGIN RETURN (SELECT count(*) FROM ts_stat(q)); END $$;"),
}


@pytest.mark.parametrize("name", sorted(SAFE_FUNCTIONS))
def test_safe_functions_have_no_unsafe_hazard(make_db, tmp_path, name: str) -> None:
    url = make_db()
    p = engine.plan(url, _state(tmp_path, SAFE_FUNCTIONS[name])).plan
    assert p.steps and UNSAFE not in p.hazard_types(), [h.message for s in p.steps for h in s.hazards]


@pytest.mark.parametrize("name", sorted(UNSAFE_FUNCTIONS))
def test_unsafe_functions_are_refused(make_db, tmp_path, name: str) -> None:
    url = make_db()
    state = _state(tmp_path, UNSAFE_FUNCTIONS[name])
    p = engine.plan(url, state).plan
    [unsafe] = _steps_with(p, UNSAFE)
    assert unsafe.action == "create"
    with pytest.raises(HazardsNotAllowed, match=UNSAFE):
        engine.apply(url, state)
    assert scalar(url, "SELECT count(*) FROM pg_proc WHERE proname = 'f' AND pronamespace = 'public'::regnamespace") == 0


def test_granting_execute_to_public_makes_a_function_unsafe(make_db, tmp_path) -> None:
    url = make_db(RUN_SQL + REVOKE)
    state = _state(tmp_path, RUN_SQL)  # the REVOKE is gone: PUBLIC may execute it again
    p = engine.plan(url, state).plan
    [unsafe] = _steps_with(p, UNSAFE)
    assert unsafe.sql.startswith("GRANT EXECUTE ON FUNCTION") and "TO PUBLIC" in unsafe.sql
    with pytest.raises(HazardsNotAllowed, match=UNSAFE):
        engine.apply(url, state, allow_hazards=p.hazard_types() - {UNSAFE})
    assert not scalar(url, "SELECT has_function_privilege('public', 'public.run_sql(text)', 'EXECUTE')")
    assert engine.apply(url, state, allow_hazards=p.hazard_types()).converged


def test_changing_the_body_of_an_unsafe_function_is_refused(make_db, tmp_path) -> None:
    url = make_db(RUN_SQL)
    state = _state(tmp_path, RUN_SQL.replace("EXECUTE q;", "EXECUTE q; RAISE NOTICE 'done';"))
    p = engine.plan(url, state).plan
    [unsafe] = _steps_with(p, UNSAFE)
    assert unsafe.action == "replace"
    with pytest.raises(HazardsNotAllowed, match=UNSAFE):
        engine.apply(url, state, allow_hazards=p.hazard_types() - {UNSAFE})
    assert "RAISE NOTICE" not in scalar(url, "SELECT prosrc FROM pg_proc WHERE proname = 'run_sql'")


def test_unchanged_unsafe_function_is_no_hazard(make_db, tmp_path) -> None:
    url = make_db(RUN_SQL)
    assert engine.plan(url, _state(tmp_path, RUN_SQL)).plan.is_empty


NATIVE = (
    "CREATE FUNCTION public.add_internal(int, int) RETURNS int LANGUAGE internal IMMUTABLE STRICT AS 'int4pl';\n"
    "CREATE FUNCTION public.add_c(int, int) RETURNS int LANGUAGE c IMMUTABLE STRICT AS '$libdir/dict_snowball', "
    "'dsnowball_init';\n"
    # the parser resolves U&"\0063" to c: the catalog holds the real language whatever the spelling
    "CREATE FUNCTION public.add_u(int, int) RETURNS int LANGUAGE U&\"\\0063\" IMMUTABLE STRICT AS "
    "'$libdir/dict_snowball', 'dsnowball_init';\n"
    "REVOKE EXECUTE ON FUNCTION public.add_c(int, int) FROM PUBLIC;\n"  # a native function is unsafe regardless
)


def test_c_and_internal_functions_are_unsafe(make_db) -> None:
    """Diff of two real databases (created by a superuser, as a target could hold them): each create of a C or
    internal function carries UNSAFE_FUNCTION, and the review makes it an ERROR."""
    empty, native = read_catalog(make_db()), read_catalog(make_db(NATIVE))
    steps = diff_catalogs(empty, native)
    creates = {s.object_name: s for s in steps if s.object_kind == "function" and s.action == "create"}
    assert set(creates) == {"public.add_internal(integer, integer)", "public.add_c(integer, integer)",
                            "public.add_u(integer, integer)"}
    for s in creates.values():
        [h] = [h for h in s.hazards if h.type == HazardType.UNSAFE_FUNCTION]
        assert "LANGUAGE internal" in h.message or "LANGUAGE c" in h.message
    errors = [f for f in review_plan(steps, "prod") if f.rule_id == "migration.unsafe-function"]
    assert len(errors) == 3 and all(f.severity == Severity.ERROR for f in errors)
    assert diff_catalogs(native, native) == []


def test_internal_function_in_the_state_never_reaches_the_target(make_db, tmp_path) -> None:
    """Whatever stops it first (the loader's sandbox, or the hazard), apply does not create it on the target."""
    url = make_db()
    sql = "CREATE FUNCTION public.add_internal(int, int) RETURNS int LANGUAGE internal IMMUTABLE STRICT AS 'int4pl';"
    with pytest.raises(SchemaPipelineError) as info:
        engine.apply(url, _state(tmp_path, sql), allow_hazards=set(HAZARD_NAMES) - {UNSAFE})
    if isinstance(info.value, HazardsNotAllowed):
        assert UNSAFE in str(info.value)
    assert not _has_function(url, "public.add_internal(integer, integer)")


def test_unsafe_function_through_the_cli(make_db, tmp_path) -> None:
    url = make_db()
    root = str(write_state(tmp_path / "s", {"f.sql": RUN_SQL}))
    refused = run_cli("apply", "--database-url", url, "--state", root, "--yes")
    assert refused.returncode == 1 and UNSAFE in refused.stderr, refused.stderr
    assert not _has_function(url, "public.run_sql(text)")
    review = run_cli("review", "--state", root, "--database-url", url, "--format", "json")
    assert review.returncode == 2, review.stdout + review.stderr
    assert "migration.unsafe-function" in review.stdout
    ok = run_cli("apply", "--database-url", url, "--state", root, "--allow-hazards", UNSAFE, "--yes")
    assert ok.returncode == 0, ok.stderr
    assert _has_function(url, "public.run_sql(text)")


# --- the review rules over the hazards (no database) -----------------------------------------------------------


def _step(sql: str, kind: str, name: str, action: str, *hazards: tuple[HazardType, str]) -> Step:
    return Step(sql=sql, object_kind=kind, object_name=name, action=action,
                hazards=[Hazard(t, m) for t, m in hazards])


def test_review_rules_follow_the_hazards() -> None:
    steps = [
        _step("CREATE FUNCTION public.f() RETURNS int LANGUAGE internal AS 'int4pl';", "function", "public.f()",
              "create", (HazardType.UNSAFE_FUNCTION, "public.f() is a LANGUAGE internal function")),
        _step("ALTER TABLE public.t SET UNLOGGED;", "table", "public.t", "alter",
              (HazardType.TABLE_REWRITE, "rewrites"), (HazardType.UNLOGGED_TABLE, "public.t becomes UNLOGGED")),
        _step("ALTER TABLE public.t ALTER COLUMN v TYPE integer USING v::integer;", "column", "public.t.v", "alter",
              (HazardType.DELETES_DATA, "type change of public.t.v from bigint to integer can lose data"),
              (HazardType.TABLE_REWRITE, "rewrites")),
        _step("ALTER TABLE public.t DROP COLUMN IF EXISTS w;", "column", "public.t.w", "alter",
              (HazardType.DELETES_DATA, "drops column public.t.w")),
        _step("CREATE FUNCTION public.g() RETURNS int LANGUAGE sql AS 'SELECT 1';", "function", "public.g()", "create"),
    ]
    found = [(f.rule_id, f.severity, f.step_index) for f in review_plan(steps, "prod")]
    assert found == [
        ("migration.unsafe-function", Severity.ERROR, 0),
        ("migration.unlogged-table", Severity.WARNING, 1),
        ("migration.column-type-rewrite", Severity.WARNING, 2),
        ("migration.deletes-data", Severity.WARNING, 2),
        ("migration.drop-column", Severity.WARNING, 3),  # says that the data goes: no second finding
    ]
