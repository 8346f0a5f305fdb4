"""catalog.deparse against the real server: executed text prints back unchanged; settled text is what the
server prints after a round trip."""

from __future__ import annotations

import psycopg
import pytest

from schema_pipeline.catalog.deparse import reproducible, settle
from schema_pipeline_tests.engine_harness import assert_converges

TABLE = 'CREATE TABLE o (status varchar(10), code character varying, n numeric, c char(2), "a,b" varchar, t text);'

CHECKS = [
    "status IN ('pending', 'shipped')",
    "status NOT IN ('x')",
    "status IN ('a,b', 'it''s', '(ARRAY[''q'']', 'x\"y')",
    "status IN ('a') AND code IN ('b', 'c') OR \"a,b\" IN ('d')",
    "status IN (code, 'a', lower(t))",
    "status::varchar(3) IN ('ab', 'cd'::varchar(5))",
    "n IN (1, 2.5)",
    "c IN ('ab', 'cd')",
    "t IN ('a', 'b')",
    "status = ANY ('{a,b}')",
    "ARRAY[status::text] <@ ARRAY['a', 'b']",
    "ARRAY[t] <> ARRAY[]::text[] AND ARRAY[status] <> '{}'",
    "ARRAY[[n]] <> ARRAY[[]]::numeric[] OR ARRAY[status] <> ARRAY[]::varchar[]",
    "ARRAY[status] <@ ARRAY['a', 'b']::varchar[]",
    "ARRAY['a'::varchar, 'b']::varchar(3)[] @> ARRAY[status]",
    "status IN (code, 'a', lower(t)) OR n IN (1, n + 1, 3)",
    "(n > 1 OR n < 0 OR n IS NULL) AND (t = 'x OR y' OR t = 'z')",
]


def _constraint_def(conn: psycopg.Connection, name: str) -> str:
    return conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
                        (name,)).fetchone()[0]


@pytest.mark.parametrize("expression", CHECKS)
def test_executed_text_prints_back_as_the_catalog_holds_it(make_db, expression) -> None:
    url = make_db(TABLE + f"ALTER TABLE o ADD CONSTRAINT first CHECK ({expression});")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('search_path', '', false)")
        printed = settle(_constraint_def(conn, "first"))
        conn.execute(f"ALTER TABLE public.o ADD CONSTRAINT second {reproducible(printed)}")
        assert _constraint_def(conn, "second") == printed


def test_text_without_the_constructs_is_returned_as_is() -> None:
    for text in ("", "CHECK ((a > 0))", "'(ARRAY[' || x", "(ARRAY[1, 2])", "$x$(ARRAY['a'])::text[]$x$",
                 "(ARRAY['a'::character varying])::character varying(3)[]", "'(a OR b) OR c'", "f((a OR b), c)"):
        assert reproducible(text) == text
        assert settle(text) == text


def test_in_lists_on_varchar_converge_in_every_kind_of_expression(make_db) -> None:
    base = ("CREATE TABLE orders (id int PRIMARY KEY, status varchar(10) NOT NULL, tags text[], n int);"
            "CREATE DOMAIN state AS varchar(10);")
    target = base.replace("CREATE DOMAIN state AS varchar(10);",
                          "CREATE DOMAIN state AS varchar(10) CHECK (VALUE IN ('on', 'off'));") + (
        "ALTER TABLE orders ADD CONSTRAINT valid_status CHECK (status IN ('pending', 'shipped'));"
        "ALTER TABLE orders ADD COLUMN open boolean GENERATED ALWAYS AS (status NOT IN ('shipped')) STORED;"
        "ALTER TABLE orders ALTER COLUMN tags SET DEFAULT ARRAY['a'::varchar, 'b'::varchar];"
        "CREATE INDEX pending_orders ON orders (id) WHERE status IN ('pending', 'held');"
        "CREATE VIEW pending AS SELECT id FROM orders WHERE status IN ('pending', 'held');"
        "ALTER TABLE orders ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY visible ON orders USING (status IN ('pending')) WITH CHECK (status IN ('pending', 'x'));"
        "CREATE STATISTICS st ON (status IN ('a', 'b')), n FROM orders;"
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;"
        "CREATE TRIGGER t BEFORE UPDATE ON orders FOR EACH ROW WHEN (NEW.status IN ('a', 'b')) "
        "EXECUTE FUNCTION noop();"
        "CREATE TABLE made (id int, status varchar CHECK (status IN ('a', 'b')), k int CHECK (k IN (k, 1, 2)),"
        " tags text[] DEFAULT ARRAY[]::text[], grid int[][] DEFAULT '{}', m varchar[] DEFAULT ARRAY[]::varchar[]);"
    )
    assert_converges(make_db, base, target)


def test_a_view_with_frames_subqueries_and_non_constant_in_lists_converges(make_db) -> None:
    base = "CREATE TABLE orders (id int PRIMARY KEY, status varchar(10) NOT NULL, n int);"
    target = base + (
        "CREATE VIEW w AS SELECT id, sum(n) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s,"
        " CASE WHEN status IN (status, 'a', 'b') OR n > 1 THEN 'x OR y' END AS c,"
        " (SELECT count(*) FROM orders o WHERE o.n IN (orders.n, 1, 2)) AS k"
        " FROM orders WHERE (n = 1 OR n = 2 OR n IS NULL) AND status NOT IN (lower(status), 'x', 'y');")
    assert_converges(make_db, base, target)


def test_functions_with_in_lists_converge_and_string_bodies_stay_as_written(make_db) -> None:
    body = "BEGIN RETURN s = ANY ((ARRAY['a'::character varying])::text[]) OR (s = 'x' OR s = 'y') OR s = 'z'; END"
    target = (
        "CREATE FUNCTION f(s varchar) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN s IN ('a', 'b');"
        "CREATE FUNCTION g(s varchar, t varchar) RETURNS boolean LANGUAGE sql IMMUTABLE BEGIN ATOMIC"
        " SELECT s IN ('a', 'b') AND s IN (t, lower(s), 'x'); END;"
        "CREATE FUNCTION k(s varchar, ok boolean DEFAULT 'q'::varchar IN ('p', 'q')) RETURNS boolean"
        " LANGUAGE sql RETURN ok;"
        f"CREATE FUNCTION h(s text) RETURNS boolean LANGUAGE plpgsql AS $$ {body} $$;")
    assert_converges(make_db, "", target)  # the catalogs compare whole definitions, string bodies included
