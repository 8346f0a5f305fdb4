"""Declared renames (`-- schema-pipeline: renamed from OLD`) against real databases: ALTER ... RENAME keeps
the data, the plan converges, and the annotation is ignored once the rename happened."""

from __future__ import annotations

from pathlib import Path

from schema_pipeline import engine
from schema_pipeline.plan.model import HazardType
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import scalar, write_state


def _state(tmp_path: Path, sql: str):
    return load_state(str(write_state(tmp_path / "state", {"schema.sql": sql})))


def _renames_then_converges(url: str, state) -> list:
    """Plan, check the renames carry no data loss, apply, and check the next plan is empty."""
    p = engine.plan(url, state).plan
    assert HazardType.DELETES_DATA not in p.hazard_types(), "\n".join(s.sql for s in p.steps)
    renames = [s for s in p.steps if s.action == "rename"]
    assert renames, "\n".join(s.sql for s in p.steps)
    assert all(any(h.type == HazardType.CORRECTNESS for h in s.hazards) for s in renames)
    result = engine.apply(url, state, allow_hazards="all", rehearse=False)
    assert result.converged, result.remaining
    again = engine.plan(url, state).plan
    assert again.is_empty, "\n".join(s.sql for s in again.steps)
    return p.steps


TABLE_FROM = """
CREATE TABLE people (id bigint CONSTRAINT people_pk PRIMARY KEY, mail text NOT NULL CHECK (mail <> ''),
                     CONSTRAINT people_mail_key UNIQUE (mail));
CREATE INDEX people_mail_idx ON people (lower(mail)) WHERE mail IS NOT NULL;
CREATE TABLE orders (id int PRIMARY KEY, person bigint REFERENCES people (id));
CREATE VIEW mails AS SELECT mail FROM people;
INSERT INTO people VALUES (1, 'a@example.com'), (2, 'b@example.com');
INSERT INTO orders VALUES (10, 1);
"""

TABLE_TO = """
-- schema-pipeline: renamed from people
CREATE TABLE users (
    -- schema-pipeline: renamed from people_pk
    id bigint CONSTRAINT users_pk PRIMARY KEY,
    email text NOT NULL CHECK (email <> ''), -- schema-pipeline: renamed from mail
    CONSTRAINT users_email_key UNIQUE (email) -- schema-pipeline: renamed from people_mail_key
);
-- schema-pipeline: renamed from people_mail_idx
CREATE INDEX users_email_idx ON users (lower(email)) WHERE email IS NOT NULL;
CREATE TABLE orders (id int PRIMARY KEY, person bigint REFERENCES users (id));
CREATE VIEW mails AS SELECT email AS mail FROM users;
"""


def test_table_column_constraint_and_index_renames_keep_the_data(make_db, tmp_path: Path) -> None:
    url = make_db(TABLE_FROM)
    state = _state(tmp_path, TABLE_TO)
    steps = _renames_then_converges(url, state)
    sqls = [s.sql for s in steps if s.action == "rename"]
    assert 'ALTER TABLE "public"."people" RENAME TO "users";' in sqls
    assert 'ALTER TABLE "public"."users" RENAME COLUMN "mail" TO "email";' in sqls
    assert any("RENAME CONSTRAINT \"people_mail_key\"" in s for s in sqls)
    assert any('ALTER INDEX "public"."people_mail_idx" RENAME TO "users_email_idx"' in s for s in sqls)
    assert not [s for s in steps if s.object_kind == "table" and s.action in ("drop", "create")]
    assert scalar(url, "SELECT string_agg(email, ',' ORDER BY id) FROM users") == "a@example.com,b@example.com"
    assert scalar(url, "SELECT person FROM orders") == 1


def test_without_the_annotation_a_rename_is_a_drop_and_a_create(make_db, tmp_path: Path) -> None:
    url = make_db("CREATE TABLE people (id int); INSERT INTO people VALUES (1)")
    p = engine.plan(url, _state(tmp_path, "CREATE TABLE users (id int);")).plan
    assert [s.action for s in p.steps if s.object_kind == "table" and s.action != "owner"] == ["drop", "create"]
    assert HazardType.DELETES_DATA in p.hazard_types()
    assert not [s for s in p.steps if s.action == "rename"]


def test_annotation_is_ignored_once_the_rename_happened(make_db, tmp_path: Path) -> None:
    url = make_db("CREATE TABLE users (id int, email text); CREATE TABLE people (x int)")
    state = _state(tmp_path, "-- schema-pipeline: renamed from people\nCREATE TABLE users (\n  id int,\n"
                   "  email text -- schema-pipeline: renamed from mail\n);\n")
    p = engine.plan(url, state).plan
    assert not [s for s in p.steps if s.action == "rename"]
    assert [(s.action, s.object_name) for s in p.steps] == [("drop", "public.people")]


def test_type_and_enum_value_renames(make_db, tmp_path: Path) -> None:
    url = make_db("""
CREATE SCHEMA app;
CREATE TYPE app.feeling AS ENUM ('glad', 'down');
CREATE TABLE app.t (id int, f app.feeling DEFAULT 'glad', fs app.feeling[],
                    CONSTRAINT not_down CHECK (f <> 'down'));
CREATE FUNCTION app.cheer(app.feeling) RETURNS int LANGUAGE sql AS 'SELECT 1';
INSERT INTO app.t VALUES (1, 'glad', '{glad,down}');
""")
    state = _state(tmp_path, """
CREATE SCHEMA app;
-- schema-pipeline: renamed from feeling
CREATE TYPE app.mood AS ENUM (
    'happy', -- schema-pipeline: renamed from glad
    -- schema-pipeline: renamed from down
    'sad'
);
CREATE TABLE app.t (id int, f app.mood DEFAULT 'happy', fs app.mood[], CONSTRAINT not_down CHECK (f <> 'sad'));
CREATE FUNCTION app.cheer(app.mood) RETURNS int LANGUAGE sql AS 'SELECT 1';
""")
    steps = _renames_then_converges(url, state)
    sqls = [s.sql for s in steps]
    assert 'ALTER TYPE "app"."feeling" RENAME TO "mood";' in sqls
    assert "ALTER TYPE \"app\".\"mood\" RENAME VALUE 'glad' TO 'happy';" in sqls
    assert not [s for s in steps if s.action in ("drop", "create") and s.object_kind in ("type", "column")]
    assert scalar(url, "SELECT f::text || ':' || fs::text FROM app.t") == "happy:{happy,sad}"


def test_column_rename_under_a_partitioned_table_and_a_foreign_key(make_db, tmp_path: Path) -> None:
    url = make_db("""
CREATE TABLE p (k int, v text, PRIMARY KEY (k)) PARTITION BY RANGE (k);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
CREATE TABLE r (id int, pk int REFERENCES p (k));
INSERT INTO p VALUES (1, 'one'); INSERT INTO r VALUES (1, 1);
""")
    state = _state(tmp_path, """
CREATE TABLE p (
    id int, -- schema-pipeline: renamed from k
    v text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
CREATE TABLE r (id int, pk int REFERENCES p (id));
""")
    _renames_then_converges(url, state)
    assert scalar(url, "SELECT v FROM p1 WHERE id = 1") == "one"


def test_sequence_and_view_renames(make_db, tmp_path: Path) -> None:
    url = make_db("CREATE SEQUENCE s1 START 5; CREATE TABLE t (id int DEFAULT nextval('s1'));"
                  "CREATE VIEW v1 AS SELECT id FROM t; SELECT nextval('s1'); SELECT nextval('s1');")
    state = _state(tmp_path, "-- schema-pipeline: renamed from s1\nCREATE SEQUENCE s2 START 5;\n"
                   "CREATE TABLE t (id int DEFAULT nextval('s2'));\n"
                   "-- schema-pipeline: renamed from v1\nCREATE VIEW v2 AS SELECT id FROM t;\n")
    _renames_then_converges(url, state)
    assert scalar(url, "SELECT nextval('s2')") == 7


def test_names_derived_from_a_renamed_table_follow_it(make_db, tmp_path: Path) -> None:
    url = make_db("CREATE TABLE people (id serial PRIMARY KEY, mail text UNIQUE); INSERT INTO people (mail) "
                  "VALUES ('a'), ('b')")
    state = _state(tmp_path, "-- schema-pipeline: renamed from people\nCREATE TABLE users (id serial PRIMARY KEY,\n"
                   "  email text UNIQUE -- schema-pipeline: renamed from mail\n);\n")
    steps = _renames_then_converges(url, state)
    assert {s.action for s in steps} == {"rename"}, "\n".join(s.sql for s in steps)
    assert scalar(url, "INSERT INTO users (email) VALUES ('c') RETURNING id") == 3
