"""Owners the state does not set (the plan role's ownership means "unspecified"): by default they
converge to the applying role; in "declared" mode the target keeps them. Explicit owners always win."""

from __future__ import annotations

from schema_pipeline.diff import diff_catalogs
from schema_pipeline_tests.engine_harness import apply_steps, read_catalog

ROLES = ("DO $$ BEGIN CREATE ROLE sp_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
         "DO $$ BEGIN CREATE ROLE sp_other; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
         "DO $$ BEGIN CREATE ROLE sp_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;")

TARGET = ROLES + """
CREATE TABLE t (a int, b int); ALTER TABLE t OWNER TO sp_owner;
CREATE VIEW v AS SELECT a, b FROM t; ALTER VIEW v OWNER TO sp_owner;
CREATE TABLE u (a int); ALTER TABLE u OWNER TO sp_owner;
CREATE SEQUENCE s; ALTER SEQUENCE s OWNER TO sp_owner;
"""

STATE = ROLES + """
CREATE TABLE t (a int, b int, c int);
CREATE VIEW v AS SELECT b FROM t;
GRANT SELECT ON t TO sp_reader;
CREATE TABLE u (a int); ALTER TABLE u OWNER TO sp_other;
CREATE SEQUENCE s;
CREATE TABLE n (a int);
"""


def _owner(url: str, rel: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s::regclass",
                            (rel,)).fetchone()[0]


def test_declared_mode_leaves_owners_not_set_by_the_state_alone(make_db) -> None:
    target, plan_db = make_db(TARGET), make_db(STATE)
    current, desired = read_catalog(target), read_catalog(plan_db)
    steps = diff_catalogs(current, desired, owners="declared")
    sql = "\n".join(s.sql for s in steps)
    owner_steps = [s.sql for s in steps if s.action == "owner"]
    # explicit owner enforced; the recreated view keeps its owner; nothing else changes owner
    assert sorted(owner_steps) == ['ALTER TABLE "public"."u" OWNER TO "sp_other";',
                                   'ALTER TABLE "public"."v" OWNER TO "sp_owner";'], sql
    assert not [s for s in steps if s.action == "revoke" and s.object_name != "public.u"], sql
    apply_steps(target, steps)
    assert _owner(target, "t") == "sp_owner" and _owner(target, "v") == "sp_owner"
    assert _owner(target, "s") == "sp_owner" and _owner(target, "u") == "sp_other"
    assert not diff_catalogs(read_catalog(target), desired, owners="declared")
    # in the default mode the same target is not converged: its owners go back to the applying role
    assert {s.object_name for s in diff_catalogs(read_catalog(target), desired) if s.action == "owner"} == {
        "public.t", "public.v", "public.s"}


def test_default_mode_gives_unset_owners_to_the_applying_role(make_db) -> None:
    target, plan_db = make_db(TARGET), make_db(STATE)
    current, desired = read_catalog(target), read_catalog(plan_db)
    steps = diff_catalogs(current, desired)
    owner_steps = sorted(s.sql for s in steps if s.action == "owner")
    deploy = current.role
    assert owner_steps == sorted([f'ALTER SEQUENCE "public"."s" OWNER TO "{deploy}";',
                                  f'ALTER TABLE "public"."t" OWNER TO "{deploy}";',
                                  'ALTER TABLE "public"."u" OWNER TO "sp_other";']), "\n".join(s.sql for s in steps)
    apply_steps(target, steps)
    assert _owner(target, "t") == deploy and _owner(target, "v") == deploy and _owner(target, "n") == deploy
    assert _owner(target, "s") == deploy and _owner(target, "u") == "sp_other"
    assert not diff_catalogs(read_catalog(target), desired)


def test_explicit_owner_on_create_is_enforced(make_db) -> None:
    target, plan_db = make_db(ROLES), make_db(ROLES + "CREATE TABLE x (a int); ALTER TABLE x OWNER TO sp_other;"
                                                      "CREATE TABLE y (a int);")
    steps = diff_catalogs(read_catalog(target), read_catalog(plan_db))
    assert [s.sql for s in steps if s.action == "owner"] == ['ALTER TABLE "public"."x" OWNER TO "sp_other";']
