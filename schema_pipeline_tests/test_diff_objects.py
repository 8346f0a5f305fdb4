"""Diff engine convergence: views, enums, types, functions, triggers, policies, privileges, partitions."""

from __future__ import annotations

import pytest

from schema_pipeline_tests.engine_harness import assert_converges

ROLE = "DO $$ BEGIN CREATE ROLE sp_engine_role; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"

CASES = {
    "view_create": ("CREATE TABLE t (a int);", "CREATE TABLE t (a int); CREATE VIEW v AS SELECT a FROM t;"),
    "view_extend": ("CREATE TABLE t (a int, b int); CREATE VIEW v AS SELECT a FROM t;",
                    "CREATE TABLE t (a int, b int); CREATE VIEW v AS SELECT a, b FROM t;"),
    "view_incompatible": ("CREATE TABLE t (a int, b int); CREATE VIEW v AS SELECT a, b FROM t;",
                          "CREATE TABLE t (a int, b int); CREATE VIEW v AS SELECT b FROM t;"),
    "view_over_type_change": ("CREATE TABLE t (a int); CREATE VIEW v AS SELECT a FROM t; "
                              "CREATE VIEW w AS SELECT * FROM v;",
                              "CREATE TABLE t (a bigint); CREATE VIEW v AS SELECT a FROM t; "
                              "CREATE VIEW w AS SELECT * FROM v;"),
    "view_check_option": ("CREATE TABLE t (a int);",
                          "CREATE TABLE t (a int); CREATE VIEW v WITH (security_barrier) AS SELECT a FROM t "
                          "WHERE a > 0 WITH CHECK OPTION;"),
    "matview": ("CREATE TABLE t (a int);", "CREATE TABLE t (a int); CREATE MATERIALIZED VIEW m AS SELECT a FROM t; "
                "CREATE INDEX mi ON m (a);"),
    "matview_column_settings": (
        "CREATE TABLE t (a int, b text); CREATE MATERIALIZED VIEW m AS SELECT a, b FROM t;"
        "ALTER MATERIALIZED VIEW m ALTER COLUMN a SET STATISTICS 50;",
        "CREATE TABLE t (a int, b text); CREATE MATERIALIZED VIEW m AS SELECT a, b FROM t;"
        "ALTER MATERIALIZED VIEW m ALTER COLUMN b SET STATISTICS 35; ALTER TABLE m ALTER COLUMN b SET STORAGE EXTERNAL;"
        "CREATE MATERIALIZED VIEW n AS SELECT a FROM t; ALTER MATERIALIZED VIEW n ALTER COLUMN a SET STATISTICS 5;"),
    "storage_reset": (
        "CREATE TABLE t (a text, b numeric); ALTER TABLE t ALTER COLUMN a SET STORAGE EXTERNAL;"
        "ALTER TABLE t ALTER COLUMN b SET STORAGE PLAIN; CREATE MATERIALIZED VIEW m AS SELECT a FROM t;"
        "ALTER TABLE m ALTER COLUMN a SET STORAGE MAIN;",
        "CREATE TABLE t (a text, b numeric); CREATE MATERIALIZED VIEW m AS SELECT a FROM t;"),
    "matview_change": ("CREATE TABLE t (a int, b int); CREATE MATERIALIZED VIEW m AS SELECT a FROM t;",
                       "CREATE TABLE t (a int, b int); CREATE MATERIALIZED VIEW m AS SELECT b FROM t;"),
    "enum_add": ("CREATE TYPE e AS ENUM ('a', 'c');", "CREATE TYPE e AS ENUM ('z', 'a', 'b', 'c', 'd');"),
    "bigint_to_timestamp_empty_table": (
        "CREATE TABLE t (id int PRIMARY KEY, c bigint, m bigint);",
        "CREATE TABLE t (id int PRIMARY KEY, c timestamp NOT NULL, m timestamp DEFAULT CURRENT_TIMESTAMP NOT NULL);"),
    "partition_pk_replaces_plain_parent_index": (
        "CREATE TABLE p (id int NOT NULL, k text NOT NULL) PARTITION BY LIST (k);"
        "CREATE TABLE p1 PARTITION OF p FOR VALUES IN ('a'); CREATE UNIQUE INDEX p_pkey ON p (k, id);"
        "ALTER TABLE p1 ADD CONSTRAINT p1_pkey PRIMARY KEY USING INDEX p1_k_id_idx;",
        "CREATE TABLE p (id int NOT NULL, k text NOT NULL) PARTITION BY LIST (k);"
        "CREATE TABLE p1 PARTITION OF p FOR VALUES IN ('a'); ALTER TABLE p ADD CONSTRAINT p_pkey PRIMARY KEY (k, id);"),
    "partition_attach_with_local_lookalike_index": (
        "CREATE TABLE p (id int, k text) PARTITION BY LIST (k); CREATE TABLE p1 (id int, k text);"
        "CREATE INDEX p_idx ON p (k, id); CREATE INDEX p1_local ON p1 (k, id);",
        "CREATE TABLE p (id int, k text) PARTITION BY LIST (k); CREATE TABLE p1 (id int, k text);"
        "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN ('a');"
        "CREATE INDEX p_idx ON p (k, id); CREATE INDEX p1_local ON p1 (k, id);"),
    "new_partition_with_own_pk_backing_parent_index": (
        "CREATE TABLE p (id int NOT NULL, k text NOT NULL CHECK (k <> '')) PARTITION BY LIST (k);"
        "CREATE UNIQUE INDEX p_uidx ON p (k, id);",
        "CREATE TABLE p (id int NOT NULL, k text NOT NULL CHECK (k <> '')) PARTITION BY LIST (k);"
        "CREATE TABLE p1 (id int NOT NULL, k text NOT NULL CONSTRAINT p_k_check CHECK (k <> ''),"
        " CONSTRAINT p1_pkey PRIMARY KEY (k, id));"
        "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN ('a'); CREATE UNIQUE INDEX p_uidx ON p (k, id);"),
    "default_on_dropped_sequence_and_type_change": (
        "CREATE SEQUENCE s; CREATE TABLE t (c integer DEFAULT nextval('s'), d integer DEFAULT nextval('s'));",
        "CREATE TABLE t (c text DEFAULT 'x', d integer);"),
    "enum_add_several_in_front": ("CREATE TYPE e AS ENUM ('r');", "CREATE TYPE e AS ENUM ('c', 'g', 'r', 'b');"),
    "enum_recreate_column_leaves_type": (
        "CREATE TYPE e AS ENUM ('a', 'b'); CREATE TABLE t (x e DEFAULT 'a' PRIMARY KEY, y e);",
        "CREATE TYPE e AS ENUM ('b'); CREATE TABLE t (x numeric(10,2) DEFAULT 1.5 PRIMARY KEY, y e);"),
    "enum_remove": ("CREATE TYPE e AS ENUM ('a', 'b', 'c'); CREATE TABLE t (x e DEFAULT 'a', y e[]);",
                    "CREATE TYPE e AS ENUM ('c', 'a'); CREATE TABLE t (x e DEFAULT 'a', y e[]);"),
    "enum_remove_with_users": ("CREATE TYPE e AS ENUM ('a', 'b'); CREATE TABLE t (x e); "
                               "CREATE VIEW v AS SELECT x FROM t; CREATE FUNCTION f(e) RETURNS int LANGUAGE sql "
                               "AS 'SELECT 1';",
                               "CREATE TYPE e AS ENUM ('b', 'c'); CREATE TABLE t (x e); "
                               "CREATE VIEW v AS SELECT x FROM t; CREATE FUNCTION f(e) RETURNS int LANGUAGE sql "
                               "AS 'SELECT 1';"),
    "domain": ("CREATE DOMAIN d AS int;",
               "CREATE DOMAIN d AS int DEFAULT 3 NOT NULL CONSTRAINT pos CHECK (VALUE > 0);"),
    "composite": ("CREATE TYPE c AS (a int, b text);", "CREATE TYPE c AS (a bigint, d text);"),
    "function_body": ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
                      "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';"),
    "function_result": ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
                        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT 1::text';"),
    "aggregate": ("", "CREATE FUNCTION acc(int, int) RETURNS int LANGUAGE sql AS 'SELECT $1 + $2'; "
                  "CREATE AGGREGATE mysum(int) (SFUNC = acc, STYPE = int, INITCOND = '0'); "
                  "COMMENT ON AGGREGATE mysum(int) IS 'sum';"),
    "aggregate_change": ("CREATE FUNCTION acc(int, int) RETURNS int LANGUAGE sql AS 'SELECT $1 + $2'; "
                         "CREATE AGGREGATE mysum(int) (SFUNC = acc, STYPE = int, INITCOND = '0');",
                         "CREATE FUNCTION acc(int, int) RETURNS int LANGUAGE sql AS 'SELECT $1 + $2'; "
                         "CREATE AGGREGATE mysum(int) (SFUNC = acc, STYPE = int, INITCOND = '10');"),
    "function_recreated_under_default": (
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; CREATE TABLE t (a bigint DEFAULT f());",
        "CREATE FUNCTION f() RETURNS bigint LANGUAGE sql AS 'SELECT 1'; CREATE TABLE t (a bigint DEFAULT f());"),
    "function_recreated_under_view_and_check": (
        "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x'; "
        "CREATE TABLE t (a int CONSTRAINT c CHECK (f(a) > 0)); CREATE INDEX ti ON t (f(a)); "
        "CREATE VIEW v AS SELECT f(a) AS fa FROM t;",
        "CREATE FUNCTION f(x int) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT x::bigint'; "
        "CREATE TABLE t (a int CONSTRAINT c CHECK (f(a) > 0)); CREATE INDEX ti ON t (f(a)); "
        "CREATE VIEW v AS SELECT f(a) AS fa FROM t;"),
    "procedure": ("", "CREATE PROCEDURE p(a int) LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;"),
    "function_default_dep": ("", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; "
                             "CREATE TABLE t (a int DEFAULT f() CHECK (a > 0));"),
    "trigger": ("CREATE TABLE t (a int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RETURN NEW; END $$;",
                "CREATE TABLE t (a int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RETURN NEW; END $$; CREATE TRIGGER tr BEFORE INSERT OR UPDATE OF a ON t FOR EACH ROW "
                "WHEN (NEW.a > 0) EXECUTE FUNCTION tf();"),
    "rls_policy": ("CREATE TABLE t (a int);",
                   ROLE + "CREATE TABLE t (a int); ALTER TABLE t ENABLE ROW LEVEL SECURITY; "
                   "ALTER TABLE t FORCE ROW LEVEL SECURITY; CREATE POLICY p ON t AS RESTRICTIVE FOR SELECT "
                   "TO sp_engine_role USING (a > 0);"),
    "grants": (ROLE + "CREATE TABLE t (a int, b int); CREATE SEQUENCE s;",
               ROLE + "CREATE TABLE t (a int, b int); CREATE SEQUENCE s; GRANT SELECT, INSERT ON t TO sp_engine_role;"
               "GRANT UPDATE (b) ON t TO sp_engine_role; GRANT USAGE ON SEQUENCE s TO sp_engine_role WITH GRANT OPTION;"
               "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;"),
    "revoke": (ROLE + "CREATE TABLE t (a int); GRANT ALL ON t TO sp_engine_role;", ROLE + "CREATE TABLE t (a int);"),
    "owner": (ROLE + "CREATE TABLE t (a int);", ROLE + "CREATE TABLE t (a int); ALTER TABLE t OWNER TO sp_engine_role;"),
    "partitions": ("", "CREATE TABLE p (a int, b text) PARTITION BY RANGE (a); "
                   "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10); CREATE INDEX pi ON p (b);"),
    "partition_attach": ("CREATE TABLE p (a int) PARTITION BY LIST (a); CREATE TABLE p1 (a int);",
                         "CREATE TABLE p (a int) PARTITION BY LIST (a); CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);"),
    "partitioned_index": ("CREATE TABLE p (a int, b text) PARTITION BY LIST (b); "
                          "CREATE TABLE p1 PARTITION OF p FOR VALUES IN ('x');",
                          "CREATE TABLE p (a int, b text) PARTITION BY LIST (b); "
                          "CREATE TABLE p1 PARTITION OF p FOR VALUES IN ('x'); CREATE INDEX pa ON p (a);"),
    "partition_key_change": ("CREATE TABLE p (a int, b text) PARTITION BY LIST (b); "
                             "CREATE TABLE p1 PARTITION OF p FOR VALUES IN ('x');",
                             "CREATE TABLE p (a int, b text) PARTITION BY RANGE (a); "
                             "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (5);"),
    "replica_identity_index": ("CREATE TABLE t (a int NOT NULL); CREATE UNIQUE INDEX ti ON t (a);",
                               "CREATE TABLE t (a int NOT NULL); CREATE UNIQUE INDEX ti ON t (a); "
                               "ALTER TABLE t REPLICA IDENTITY USING INDEX ti;"),
    "function_calls_function": ("", "CREATE FUNCTION b_inner(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1'; "
                                "CREATE FUNCTION a_outer(x int) RETURNS int LANGUAGE sql AS 'SELECT b_inner(x) * 2';"),
    "constraint_trigger": ("CREATE TABLE t (a int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS "
                           "$$ BEGIN RETURN NEW; END $$; CREATE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW "
                           "EXECUTE FUNCTION tf();",
                           "CREATE TABLE t (a int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS "
                           "$$ BEGIN RETURN NEW; END $$; CREATE CONSTRAINT TRIGGER tr AFTER UPDATE ON t "
                           "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tf();"),
    "mutual_fk_drop": ("CREATE TABLE a (id int PRIMARY KEY, b_id int); CREATE TABLE b (id int PRIMARY KEY, "
                       "a_id int REFERENCES a); ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b;", ""),
    "inherit_local_column": ("CREATE TABLE base (c timestamp, e int); CREATE TABLE a (x int) INHERITS (base);",
                             "CREATE TABLE base (c timestamp); CREATE TABLE a (x int, e int) INHERITS (base);"),
    "inherit_from_a_new_parent": (
        "CREATE TABLE p1 (id bigserial NOT NULL); CREATE TABLE c (f int) INHERITS (p1);",
        "CREATE TABLE p1 (x int); CREATE TABLE p2 (id bigserial NOT NULL); CREATE TABLE c (f int) INHERITS (p2);"),
    "inheritance_child_with_its_own_default_and_not_null": (
        "CREATE TABLE p (id int NOT NULL, d timestamptz);",
        "CREATE TABLE p (id int NOT NULL, d timestamptz); CREATE TABLE c () INHERITS (p); "
        "ALTER TABLE ONLY c ALTER COLUMN id SET DEFAULT 0; ALTER TABLE ONLY c ALTER COLUMN d SET NOT NULL;"),
    "inheritance_child_merging_a_column": (
        "CREATE TABLE p (id int);", "CREATE TABLE p (id int); CREATE TABLE c (id int, f int) INHERITS (p);"),
    "constraint_index_comment_and_cluster": (
        "CREATE TABLE t (id int PRIMARY KEY, u int UNIQUE); COMMENT ON INDEX t_u_key IS 'old'; "
        "ALTER TABLE t CLUSTER ON t_u_key;",
        "CREATE TABLE t (id int PRIMARY KEY, u int UNIQUE); COMMENT ON INDEX t_pkey IS 'primary key'; "
        "ALTER TABLE t CLUSTER ON t_pkey;"),
    "constraint_index_comment_on_a_new_table": (
        "", "CREATE TABLE t (id int, CONSTRAINT t_id_excl EXCLUDE (id WITH =)); "
            "COMMENT ON INDEX t_id_excl IS 'exclusion'; ALTER TABLE t CLUSTER ON t_id_excl;"),
    "default_privileges": (ROLE, ROLE + "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO sp_engine_role; "
                           "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO sp_engine_role; "
                           "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;"),
    "default_privileges_drop": (ROLE + "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO sp_engine_role; "
                                "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO sp_engine_role;",
                                ROLE),
    "rule": ("CREATE TABLE t (a int); CREATE TABLE log (a int);",
             "CREATE TABLE t (a int); CREATE TABLE log (a int); "
             "CREATE RULE r AS ON INSERT TO t DO ALSO INSERT INTO log VALUES (NEW.a);"),
    "statistics": ("CREATE TABLE t (a int, b int);",
                   "CREATE TABLE t (a int, b int); CREATE STATISTICS st (dependencies) ON a, b FROM t;"),
    "default_privileges_with_grant_option": (
        ROLE, ROLE + "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO sp_engine_role "
                     "WITH GRANT OPTION; ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO sp_engine_role;"),
    "objects_created_under_existing_default_privileges": (
        ROLE + "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO sp_engine_role;",
        ROLE + "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO sp_engine_role;"
               "CREATE TABLE s (a int); REVOKE SELECT ON s FROM sp_engine_role; CREATE TABLE r (a int);"
               "CREATE VIEW v AS SELECT a FROM r;"),
    "objects_created_with_their_default_privileges": (
        ROLE, ROLE + "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO sp_engine_role;"
                     "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;"
                     "CREATE TABLE s (a int); REVOKE ALL ON s FROM sp_engine_role; CREATE TABLE r (a int);"
                     "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
                     "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 2'; GRANT EXECUTE ON FUNCTION g() TO PUBLIC;"),
    "extension": ("", "CREATE EXTENSION hstore; CREATE TABLE t (h hstore);"),
    "extension_drop": ("CREATE EXTENSION hstore; CREATE TABLE t (h hstore, a int);", "CREATE TABLE t (a int);"),
    "collation": ("", "CREATE COLLATION c1 (provider = icu, locale = 'en-u-kn-true'); "
                  "CREATE TABLE t (a text COLLATE c1);"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_converges(make_db, name):
    from_sql, to_sql = CASES[name]
    assert_converges(make_db, from_sql, to_sql)


def test_type_change_without_a_cast_deletes_the_values_with_a_hazard(make_db) -> None:
    """No cast from bigint to timestamp: the column keeps its place but not its values (DELETES_DATA); the engine
    lifts the hazard only for a table that has no rows (test_pg_dump_idioms.py)."""
    import psycopg

    from schema_pipeline.diff import diff_catalogs
    from schema_pipeline.plan.model import HazardType
    from schema_pipeline_tests.engine_harness import apply_steps, read_catalog

    url = make_db("CREATE TABLE t (id int, c bigint); INSERT INTO t VALUES (1, 1700000000)")
    desired = read_catalog(make_db("CREATE TABLE t (id int, c timestamp);"))
    steps = diff_catalogs(read_catalog(url), desired)
    assert [s.sql for s in steps] == ['ALTER TABLE "public"."t" ALTER COLUMN "c" TYPE timestamp without time zone '
                                      'USING NULL;']
    assert any(h.type == HazardType.DELETES_DATA and "no cast from bigint" in h.message for h in steps[0].hazards)
    apply_steps(url, steps)
    assert not diff_catalogs(read_catalog(url), desired)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, c FROM t").fetchall() == [(1, None)]


@pytest.mark.parametrize("from_sql,to_sql,column", [
    ("CREATE TABLE t (id bigint PRIMARY KEY);", "CREATE TABLE t (id timestamp PRIMARY KEY);", "public.t.id"),
    ("CREATE TABLE p (id bigint PRIMARY KEY); CREATE TABLE c (p_id bigint REFERENCES p);",
     "CREATE TABLE p (id timestamp PRIMARY KEY); CREATE TABLE c (p_id timestamp REFERENCES p);", "public.c.p_id"),
    ("CREATE TABLE t (a int, d date);", "CREATE TABLE t (a int, d integer UNIQUE);", "public.t.d"),
])
def test_type_change_without_a_cast_of_a_key_column_is_not_planned(make_db, from_sql, to_sql, column) -> None:
    from schema_pipeline.diff import diff_catalogs
    from schema_pipeline.errors import UnplannableChange
    from schema_pipeline_tests.engine_harness import read_catalog

    with pytest.raises(UnplannableChange, match=rf"{column}: no cast from .* the column is part of "):
        diff_catalogs(read_catalog(make_db(from_sql)), read_catalog(make_db(to_sql)))


def test_a_changed_default_is_set_once(make_db) -> None:
    """A new default replaces the old one with one SET DEFAULT; the sequence the old one used is dropped
    after the default stops using it, and no second DROP DEFAULT follows."""
    steps = assert_converges(make_db, "CREATE SEQUENCE s1; CREATE TABLE t (a bigint DEFAULT nextval('s1'), b int DEFAULT 1);",
                             "CREATE SEQUENCE s2; CREATE TABLE t (a bigint DEFAULT nextval('s2'), b int DEFAULT 2);")
    sql = [s.sql for s in steps]
    assert sum("DROP DEFAULT" in s for s in sql) == 1, sql  # a's, before s1 goes
    assert sum("SET DEFAULT" in s for s in sql) == 2, sql
