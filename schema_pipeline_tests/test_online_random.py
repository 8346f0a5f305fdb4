"""Seeded random pairs of schemas over one table that holds data: the online plan converges, keeps the
rows and never runs a plain CREATE INDEX or a validating ADD CONSTRAINT on the existing table."""

from __future__ import annotations

import os
import random

import psycopg
import pytest

from schema_pipeline import engine
from schema_pipeline.apply.executor import ApplyOptions, execute_plan

ROWS = 300
SEEDS = int(os.environ.get("SCHEMA_PIPELINE_ONLINE_SEEDS", "12"))  # more for a longer search
INDEX_1 = (None, "(a)", "(a, b)", "(b) WHERE b > 0", "(b DESC)")
INDEX_2 = (None, "(c)", "(c, a)")
UNIQUE = (None, "(b)", "(a, b)", "(a, b) DEFERRABLE")
CHECK = (None, "(a > 0)", "(b >= 0)")


def _schema(rng: random.Random) -> str:
    nn = [c for c in "abc" if rng.random() < 0.4]
    pk = rng.random() < 0.5
    cols = ", ".join([f"id int{' PRIMARY KEY' if pk else ' NOT NULL'}"]
                     + [f"{c} int{' NOT NULL' if c in nn else ''}" for c in "abc"])
    sql = "CREATE TABLE p (id int PRIMARY KEY);\n" + f"CREATE TABLE t ({cols});\n"
    if (u := rng.choice(UNIQUE)):
        sql += f"ALTER TABLE t ADD CONSTRAINT t_u UNIQUE {u};\n"
    if (c := rng.choice(CHECK)):
        sql += f"ALTER TABLE t ADD CONSTRAINT t_chk CHECK {c};\n"
    if rng.random() < 0.5:
        sql += "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (c) REFERENCES p (id);\n"
    if (i := rng.choice(INDEX_1)):
        sql += f"CREATE INDEX t_i1 ON t {i};\n"
    if (i := rng.choice(INDEX_2)):
        sql += f"CREATE UNIQUE INDEX t_i2 ON t {i};\n"
    return sql


@pytest.mark.parametrize("seed", range(SEEDS))
def test_random_online_migrations_converge_and_keep_rows(make_db, seed: int) -> None:
    rng = random.Random(seed)
    data = (f"INSERT INTO p SELECT generate_series(1, {ROWS});\n"
            f"INSERT INTO t SELECT g, g, g, g FROM generate_series(1, {ROWS}) g;\n")
    current_sql, desired_sql = _schema(rng), _schema(rng)
    url = make_db(current_sql + data)
    desired = engine.current_catalog(make_db(desired_sql))
    p = engine.plan_catalogs(engine.current_catalog(url), desired)
    plan_text = "\n".join(f"{'  ' if s.transactional else '* '}{s.sql}" for s in p.steps)
    for s in p.steps:
        if s.sql.startswith("CREATE ") and " INDEX " in s.sql:
            assert "CONCURRENTLY" in s.sql and not s.transactional, plan_text
        if " ADD CONSTRAINT " in s.sql and (" CHECK " in s.sql or " FOREIGN KEY " in s.sql):
            assert s.sql.endswith(" NOT VALID;"), plan_text
        if " ADD CONSTRAINT " in s.sql and (" UNIQUE " in s.sql or " PRIMARY KEY " in s.sql):
            assert " USING INDEX " in s.sql, plan_text
    execute_plan(url, p, ApplyOptions(lock_timeout="5s"))
    again = engine.plan_catalogs(engine.current_catalog(url), desired)
    assert again.is_empty, f"--- plan ---\n{plan_text}\n--- left ---\n" + "\n".join(s.sql for s in again.steps)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*), sum(a) FROM t").fetchone() == (ROWS, ROWS * (ROWS + 1) // 2)
