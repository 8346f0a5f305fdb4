"""Online-by-default plans (schema_pipeline/diff/online.py), each against the real server.

Every test builds a target that holds data, plans it towards a desired database with
`engine.plan_catalogs`, checks the online shape of the steps, applies the plan and checks that a
re-plan is empty and the data is intact.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from schema_pipeline import engine
from schema_pipeline.apply.executor import ApplyOptions, execute_plan
from schema_pipeline.errors import ApplyError
from schema_pipeline.plan.model import HazardType, Plan

ROWS = 2000


def _plan(make_db, current_sql: str, desired_sql: str, **kwargs) -> tuple[str, object, Plan]:
    url = make_db(current_sql)
    desired = engine.current_catalog(make_db(desired_sql))
    return url, desired, engine.plan_catalogs(engine.current_catalog(url), desired, **kwargs)


def _apply(url: str, desired, p: Plan) -> None:
    result = engine.apply_plan(url, p, desired=desired, allow_hazards="all", rehearse=False)
    assert result.converged, result.remaining
    assert engine.plan_catalogs(engine.current_catalog(url), desired).is_empty


def _scalar(url: str, sql: str):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def _shape(p: Plan) -> list[tuple[str, bool]]:
    return [(s.sql, s.transactional) for s in p.steps]


def _types(step) -> set[str]:
    return {str(h.type) for h in step.hazards}


TABLE = (f"CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int);\n"
         f"INSERT INTO t SELECT g, g, 'b' || g, g FROM generate_series(1, {ROWS}) g;\n")
TABLE_DESIRED = "CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int);\n"


def test_create_index_on_existing_table_is_concurrent(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE, TABLE_DESIRED + "CREATE INDEX t_a ON t (a);\n"
                            "CREATE UNIQUE INDEX t_c ON t (c) WHERE c > 0;")
    assert _shape(p) == [
        ("CREATE INDEX CONCURRENTLY t_a ON public.t USING btree (a);", False),
        ("CREATE UNIQUE INDEX CONCURRENTLY t_c ON public.t USING btree (c) WHERE (c > 0);", False),
    ]
    assert all(_types(s) == {"INDEX_BUILD"} for s in p.steps)
    assert [g.transactional for g in p.groups()] == [False, False]
    _apply(url, desired, p)
    assert _scalar(url, "SELECT count(*) FROM t") == ROWS
    assert _scalar(url, "SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 't'::regclass")


def test_changed_index_is_built_under_a_new_name_before_the_old_one_goes(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE + "CREATE INDEX t_a ON t (a);", TABLE_DESIRED + "CREATE INDEX t_a ON t (a, b);")
    assert _shape(p) == [
        ('CREATE INDEX CONCURRENTLY "t_a_sp_new" ON public.t USING btree (a, b);', False),
        ('DROP INDEX CONCURRENTLY IF EXISTS "public"."t_a";', False),
        ('ALTER INDEX "public"."t_a_sp_new" RENAME TO "t_a";', True),
    ]
    assert _types(p.steps[0]) == {"INDEX_BUILD"} and _types(p.steps[1]) == {"INDEX_DROPPED"}
    _apply(url, desired, p)
    assert _scalar(url, "SELECT pg_get_indexdef('t_a'::regclass)") == "CREATE INDEX t_a ON public.t USING btree (a, b)"
    assert _scalar(url, "SELECT count(*) FROM t") == ROWS


def test_temporary_index_name_avoids_existing_names(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE + "CREATE INDEX t_a ON t (a); CREATE TABLE t_a_sp_new (x int);",
                            TABLE_DESIRED + "CREATE INDEX t_a ON t (a DESC); CREATE TABLE t_a_sp_new (x int);")
    assert p.steps[0].sql.startswith('CREATE INDEX CONCURRENTLY "t_a_sp_new1" ON public.t')
    _apply(url, desired, p)


def test_drop_index_is_concurrent(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE + "CREATE INDEX t_a ON t (a);", TABLE_DESIRED)
    assert _shape(p) == [('DROP INDEX CONCURRENTLY IF EXISTS "public"."t_a";', False)]
    assert _types(p.steps[0]) == {"INDEX_DROPPED"}
    _apply(url, desired, p)
    assert _scalar(url, "SELECT count(*) FROM t") == ROWS


def test_new_tables_and_partitioned_tables_are_left_alone(make_db) -> None:
    parts = ("CREATE TABLE pt (id int, k int) PARTITION BY RANGE (id);\n"
             "CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10000);\n")
    url, desired, p = _plan(
        make_db, parts + "INSERT INTO pt SELECT g, g FROM generate_series(1, 100) g;",
        parts + "CREATE INDEX pt_k ON pt (k);\n"
        "CREATE TABLE n (id int PRIMARY KEY, x int CHECK (x > 0), r int REFERENCES n (id));\n"
        "CREATE INDEX n_x ON n (x);\n")
    sql = "\n".join(s.sql for s in p.steps)
    assert "CONCURRENTLY" not in sql and "NOT VALID" not in sql and "VALIDATE" not in sql
    assert "CREATE INDEX pt_k ON ONLY public.pt USING btree (k);" in sql
    assert all(s.transactional for s in p.steps)
    _apply(url, desired, p)


def test_foreign_key_and_check_are_added_not_valid_then_validated(make_db) -> None:
    base = "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p SELECT generate_series(1, 10);\n"
    url, desired, p = _plan(
        make_db, base + TABLE.replace("g, g, 'b' || g, g", "g, g, 'b' || g, 1 + g % 10"),
        base + "CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int REFERENCES p (id),"
        " CONSTRAINT a_pos CHECK (a > 0) NO INHERIT);")
    assert _shape(p) == [
        ('ALTER TABLE "public"."t" ADD CONSTRAINT "a_pos" CHECK ((a > 0)) NO INHERIT NOT VALID;', True),
        ('ALTER TABLE "public"."t" VALIDATE CONSTRAINT "a_pos";', False),
        ('ALTER TABLE "public"."t" ADD CONSTRAINT "t_c_fkey" FOREIGN KEY (c) REFERENCES public.p(id) NOT VALID;', True),
        ('ALTER TABLE "public"."t" VALIDATE CONSTRAINT "t_c_fkey";', False),
    ]
    assert [_types(s) for s in p.steps] == [set(), {"VALIDATES_CONSTRAINT"}, set(), {"VALIDATES_CONSTRAINT"}]
    _apply(url, desired, p)
    assert _scalar(url, "SELECT bool_and(convalidated) FROM pg_constraint WHERE conrelid = 't'::regclass")
    assert _scalar(url, "SELECT count(*) FROM t") == ROWS


def test_constraint_desired_not_valid_is_left_alone(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE, TABLE_DESIRED + "ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0) NOT VALID;")
    assert _shape(p) == [('ALTER TABLE "public"."t" ADD CONSTRAINT "a_pos" CHECK ((a > 0)) NOT VALID;', True)]
    _apply(url, desired, p)


def test_set_not_null_goes_through_a_validated_check(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE, TABLE_DESIRED.replace("b text", "b text NOT NULL"))
    assert _shape(p) == [
        ('ALTER TABLE "public"."t" ADD CONSTRAINT "b_not_null_sp" CHECK ("b" IS NOT NULL) NOT VALID;', True),
        ('ALTER TABLE "public"."t" VALIDATE CONSTRAINT "b_not_null_sp";', False),
        ('ALTER TABLE "public"."t" ALTER COLUMN "b" SET NOT NULL;', True),
        ('ALTER TABLE "public"."t" DROP CONSTRAINT "b_not_null_sp";', True),
    ]
    assert [_types(s) for s in p.steps] == [set(), {"VALIDATES_CONSTRAINT"}, set(), set()]
    _apply(url, desired, p)
    assert _scalar(url, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'b'")
    assert _scalar(url, "SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'c'") == 0


def test_set_not_null_with_nulls_fails_at_validation_and_the_next_plan_repairs(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE + "UPDATE t SET b = NULL WHERE id = 7;",
                            TABLE_DESIRED.replace("b text", "b text NOT NULL"))
    with pytest.raises(ApplyError, match="step 2/4 failed"):
        execute_plan(url, p, ApplyOptions())
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE t SET b = 'fixed' WHERE b IS NULL")
    again = engine.plan_catalogs(engine.current_catalog(url), desired)
    assert again.steps[0].sql == 'ALTER TABLE IF EXISTS "public"."t" DROP CONSTRAINT IF EXISTS "b_not_null_sp";'
    _apply(url, desired, again)
    assert _scalar(url, "SELECT count(*) FROM t") == ROWS


def test_unique_and_primary_key_use_a_concurrently_built_index(make_db) -> None:
    url, desired, p = _plan(
        make_db, TABLE.replace("id int PRIMARY KEY", "id int NOT NULL"),
        TABLE_DESIRED + "ALTER TABLE t ADD CONSTRAINT t_c_key UNIQUE (c);\n"
        "ALTER TABLE t ADD CONSTRAINT t_ab UNIQUE (a, b) DEFERRABLE INITIALLY DEFERRED;")
    assert _shape(p) == [
        ('CREATE UNIQUE INDEX CONCURRENTLY "t_ab" ON "public"."t" USING btree (a, b);', False),
        ('ALTER TABLE "public"."t" ADD CONSTRAINT "t_ab" UNIQUE USING INDEX "t_ab" DEFERRABLE INITIALLY DEFERRED;',
         True),
        ('CREATE UNIQUE INDEX CONCURRENTLY "t_c_key" ON "public"."t" USING btree (c);', False),
        ('ALTER TABLE "public"."t" ADD CONSTRAINT "t_c_key" UNIQUE USING INDEX "t_c_key";', True),
        ('CREATE UNIQUE INDEX CONCURRENTLY "t_pkey" ON "public"."t" USING btree (id);', False),
        ('ALTER TABLE "public"."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY USING INDEX "t_pkey";', True),
    ]
    assert [_types(s) for s in p.steps] == [{"INDEX_BUILD"}, set()] * 3
    _apply(url, desired, p)
    assert _scalar(url, "SELECT count(*) FROM t") == ROWS


def test_primary_key_on_nullable_column_sets_not_null_online_first(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE.replace("id int PRIMARY KEY", "id int"), TABLE_DESIRED)
    sql = [s.sql for s in p.steps]
    assert sql.index('ALTER TABLE "public"."t" VALIDATE CONSTRAINT "id_not_null_sp";') < \
        sql.index('ALTER TABLE "public"."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY USING INDEX "t_pkey";')
    _apply(url, desired, p)


def test_unique_with_options_using_index_cannot_express_is_left_alone(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE, TABLE_DESIRED + "ALTER TABLE t ADD CONSTRAINT t_c_key UNIQUE (c) INCLUDE (a);")
    assert _shape(p) == [('ALTER TABLE "public"."t" ADD CONSTRAINT "t_c_key" UNIQUE (c) INCLUDE (a);', True)]
    assert "ACQUIRES_ACCESS_EXCLUSIVE_LOCK" in _types(p.steps[0])
    _apply(url, desired, p)


def test_online_can_be_turned_off_and_plans_round_trip_through_json(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE, TABLE_DESIRED + "CREATE INDEX t_a ON t (a);", online=False)
    assert _shape(p) == [("CREATE INDEX t_a ON public.t USING btree (a);", True)]
    online = engine.plan_catalogs(engine.current_catalog(url), desired)
    back = Plan.from_dict(online.to_dict())
    assert back.fingerprint() == online.fingerprint() and _shape(back) == _shape(online)
    assert back.to_dict()["groups"] == [{"transactional": False, "steps": [1]}]
    _apply(url, desired, back)


def test_concurrent_writers_are_not_blocked_by_the_index_build(make_db) -> None:
    """Another session keeps inserting while CREATE INDEX CONCURRENTLY runs; no insert waits long."""
    rows = 400_000
    url, desired, p = _plan(
        make_db, f"CREATE TABLE big (id bigint, v text); INSERT INTO big SELECT g, md5(g::text) "
        f"FROM generate_series(1, {rows}) g; ANALYZE big;",
        "CREATE TABLE big (id bigint, v text); CREATE INDEX big_v ON big (md5(v || id::text), v);")
    assert _shape(p) == [("CREATE INDEX CONCURRENTLY big_v ON public.big USING btree (md5((v || (id)::text)), v);",
                          False)]
    assert {str(h.type) for h in p.steps[0].hazards} == {str(HazardType.INDEX_BUILD)}
    done = threading.Event()
    latencies: list[float] = []
    during: list[float] = []

    def writer() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            n = 0
            while not done.is_set():
                n += 1
                t0 = time.monotonic()
                conn.execute("INSERT INTO big VALUES (%s, 'w')", (-n,))
                latencies.append(time.monotonic() - t0)
                during.append(t0)
                time.sleep(0.005)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    try:
        execute_plan(url, p, ApplyOptions())
    finally:
        finished = time.monotonic()
        done.set()
        thread.join(10)
    build_s = finished - started
    inserted_meanwhile = sum(1 for t in during if started <= t <= finished)
    assert inserted_meanwhile >= 5, f"the writer made no progress during the {build_s:.2f}s build"
    assert max(latencies) < 1.0, f"an insert waited {max(latencies):.2f}s during the {build_s:.2f}s build"
    assert engine.plan_catalogs(engine.current_catalog(url), desired).is_empty
    assert _scalar(url, "SELECT count(*) FROM big") == rows + len(latencies)
    assert _scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v'::regclass")


def test_invalid_index_left_by_an_interrupted_build_is_rebuilt_online(make_db) -> None:
    url = make_db(TABLE + "UPDATE t SET c = 1 WHERE id <= 2;")
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY t_c ON t (c)")
        assert not conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_c'::regclass").fetchone()[0]
        conn.execute("UPDATE t SET c = id")
    desired = engine.current_catalog(make_db(TABLE_DESIRED + "CREATE UNIQUE INDEX t_c ON t (c);"))
    p = engine.plan_catalogs(engine.current_catalog(url), desired)
    assert p.steps, "the INVALID index must be rebuilt"
    assert all("CONCURRENTLY" in s.sql or s.sql.startswith("ALTER INDEX") for s in p.steps), _shape(p)
    _apply(url, desired, p)
    assert _scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_c'::regclass")
    assert _scalar(url, "SELECT count(*) FROM t") == ROWS


def test_validating_a_not_valid_constraint_runs_on_its_own(make_db) -> None:
    url, desired, p = _plan(make_db, TABLE + "ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0) NOT VALID;",
                            TABLE_DESIRED + "ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0);")
    assert _shape(p) == [('ALTER TABLE "public"."t" VALIDATE CONSTRAINT "a_pos";', False)]
    assert _types(p.steps[0]) == {"VALIDATES_CONSTRAINT"}
    _apply(url, desired, p)


def test_odd_names_matviews_and_dropped_columns(make_db) -> None:
    odd = ('CREATE TABLE "Odd Name" (id int, "Mixed Col" text, gone int);\n'
           'INSERT INTO "Odd Name" SELECT g, g::text, g FROM generate_series(1, 500) g;\n'
           'CREATE INDEX "Odd_idx" ON "Odd Name" ("Mixed Col", gone);\n'
           'CREATE INDEX "Swap Me" ON "Odd Name" (id);\n'
           'CREATE MATERIALIZED VIEW mv AS SELECT id FROM "Odd Name";\n')
    url, desired, p = _plan(
        make_db, odd,
        'CREATE TABLE "Odd Name" (id int, "Mixed Col" text NOT NULL, CONSTRAINT "U k" UNIQUE ("Mixed Col"));\n'
        'CREATE INDEX "Odd_idx" ON "Odd Name" ("Mixed Col");\n'
        'CREATE INDEX "Swap Me" ON "Odd Name" (id DESC);\n'
        'CREATE MATERIALIZED VIEW mv AS SELECT id FROM "Odd Name";\nCREATE INDEX mv_id ON mv (id);\n')
    sql = [s.sql for s in p.steps]
    # "Odd_idx" used the dropped column: no swap, but both halves still run concurrently, in a valid order
    assert sql.index('DROP INDEX CONCURRENTLY IF EXISTS "public"."Odd_idx";') \
        < sql.index('ALTER TABLE "public"."Odd Name" DROP COLUMN IF EXISTS "gone";') \
        < sql.index('CREATE INDEX CONCURRENTLY "Odd_idx" ON public."Odd Name" USING btree ("Mixed Col");')
    assert 'CREATE INDEX CONCURRENTLY "Swap Me_sp_new" ON public."Odd Name" USING btree (id DESC);' in sql
    assert 'ALTER INDEX "public"."Swap Me_sp_new" RENAME TO "Swap Me";' in sql
    assert 'ALTER TABLE "public"."Odd Name" VALIDATE CONSTRAINT "Mixed Col_not_null_sp";' in sql
    assert 'ALTER TABLE "public"."Odd Name" ADD CONSTRAINT "U k" UNIQUE USING INDEX "U k";' in sql
    assert "CREATE INDEX CONCURRENTLY mv_id ON public.mv USING btree (id);" in sql
    _apply(url, desired, p)
    assert _scalar(url, 'SELECT count(*) FROM "Odd Name"') == 500


def test_in_lists_on_varchar_stay_online(make_db) -> None:
    """`status IN (...)` prints an array coercion that steps write without its cast (catalog/deparse.py):
    the online rewrites still recognise them, and the target prints them back as the desired side does."""
    current = ("CREATE TABLE o (id int PRIMARY KEY, status varchar(10));"
               "INSERT INTO o SELECT g, 'a' FROM generate_series(1, 500) g;"
               "CREATE INDEX o_open ON o (id) WHERE status IN ('a');")
    desired = ("CREATE TABLE o (id int PRIMARY KEY, status varchar(10));"
               "ALTER TABLE o ADD CONSTRAINT o_status CHECK (status IN ('a', 'b'));"
               "CREATE INDEX o_open ON o (id) WHERE status IN ('a', 'b');"
               "CREATE INDEX o_b ON o (status) WHERE status NOT IN ('x', 'y');")
    url, desired_cat, p = _plan(make_db, current, desired)
    sql = [s.sql for s in p.steps]
    assert any(s.startswith("CREATE INDEX CONCURRENTLY o_b ") for s in sql), sql
    assert any(s.startswith('CREATE INDEX CONCURRENTLY "o_open_sp_new" ') for s in sql), sql
    assert any(s.endswith(" NOT VALID;") and "o_status" in s for s in sql), sql
    assert not any("])::" in s for s in sql), sql
    _apply(url, desired_cat, p)
    assert _scalar(url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'o_status'") == \
        desired_cat.objects["constraint:public.o.o_status"].attrs["definition"]
