"""The ordering bugs other tools still carry (diff-tools.md: pg-schema-diff #284/#280, migra #143)."""

from __future__ import annotations

import pytest

from schema_pipeline_tests.engine_harness import assert_converges

FUNC = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'select x * {k}';"

CASES = {
    # a view that calls a function: the function must exist first (pg-schema-diff #284)
    "view_over_new_function": (
        "CREATE TABLE t (a int);",
        "CREATE TABLE t (a int);" + FUNC.format(k=2) + "CREATE VIEW v AS SELECT f(a) AS fa FROM t;",
    ),
    # the function's result type changes under a view that uses it: drop view, recreate both
    "function_result_change_under_view": (
        "CREATE TABLE t (a int);" + FUNC.format(k=2) + "CREATE VIEW v AS SELECT f(a) AS fa FROM t;",
        "CREATE TABLE t (a int);"
        "CREATE FUNCTION f(x int) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'select x::bigint * 3';"
        "CREATE VIEW v AS SELECT f(a) AS fa FROM t;",
    ),
    # column type change under a chain of dependent views (pg-schema-diff #280)
    "column_type_under_view_chain": (
        "CREATE TABLE t (a int, b text); CREATE VIEW v1 AS SELECT a, b FROM t;"
        "CREATE VIEW v2 AS SELECT a FROM v1 WHERE a > 0;",
        "CREATE TABLE t (a bigint, b text); CREATE VIEW v1 AS SELECT a, b FROM t;"
        "CREATE VIEW v2 AS SELECT a FROM v1 WHERE a > 0;",
    ),
    # dropping views that depend on each other, and the table under them (migra #143)
    "view_drop_order": (
        "CREATE TABLE t (a int); CREATE VIEW v1 AS SELECT a FROM t;"
        "CREATE VIEW v2 AS SELECT a FROM v1; CREATE VIEW v3 AS SELECT v2.a FROM v2 JOIN v1 USING (a);",
        "",
    ),
    # replacing a view chain with a differently shaped one over the same names
    "view_chain_reshaped": (
        "CREATE TABLE t (a int, b int); CREATE VIEW v1 AS SELECT a, b FROM t; CREATE VIEW v2 AS SELECT b FROM v1;",
        "CREATE TABLE t (a int, b int); CREATE VIEW v1 AS SELECT b, a FROM t; CREATE VIEW v2 AS SELECT a FROM v1;",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ordering(make_db, name: str) -> None:
    from_sql, to_sql = CASES[name]
    assert_converges(make_db, from_sql, to_sql or None)
