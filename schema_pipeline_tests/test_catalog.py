"""Catalog introspection: JSON round-trip, fingerprint stability, scope rules."""

from __future__ import annotations

import json

import psycopg

from schema_pipeline.catalog import BOOKKEEPING_SCHEMA, Catalog, introspect
from schema_pipeline_tests.engine_harness import read_catalog

RICH = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0);
CREATE SEQUENCE app.counter START 10;
CREATE TABLE app.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    mood app.mood DEFAULT 'ok',
    score app.posint,
    n integer DEFAULT nextval('app.counter')
);
COMMENT ON TABLE app.users IS 'people';
COMMENT ON COLUMN app.users.email IS 'login';
CREATE TABLE app.orders (id serial PRIMARY KEY, user_id bigint REFERENCES app.users(id) ON DELETE CASCADE,
    total numeric(10,2) CHECK (total >= 0));
CREATE INDEX orders_user_idx ON app.orders (user_id) WHERE total > 0;
CREATE VIEW app.big_orders AS SELECT id, total FROM app.orders WHERE total > 100;
CREATE FUNCTION app.add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
"""

RICH_OTHER_ORDER = """
CREATE SCHEMA app;
CREATE SEQUENCE app.counter START 10;
CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0);
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE FUNCTION app.add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
CREATE TABLE app.users (id bigint GENERATED ALWAYS AS IDENTITY, email text);
ALTER TABLE app.users ADD COLUMN score app.posint, ADD COLUMN mood app.mood DEFAULT 'ok';
ALTER TABLE app.users ADD COLUMN n integer DEFAULT nextval('app.counter');
ALTER TABLE app.users ALTER COLUMN email SET NOT NULL;
ALTER TABLE app.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE app.users ADD CONSTRAINT users_email_key UNIQUE (email);
COMMENT ON COLUMN app.users.email IS 'login';
COMMENT ON TABLE app.users IS 'people';
CREATE TABLE app.orders (total numeric(10,2), user_id bigint, id serial);
ALTER TABLE app.orders ADD PRIMARY KEY (id);
ALTER TABLE app.orders ADD CONSTRAINT orders_total_check CHECK (total >= 0);
ALTER TABLE app.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES app.users(id)
    ON DELETE CASCADE;
CREATE INDEX orders_user_idx ON app.orders (user_id) WHERE total > 0;
CREATE VIEW app.big_orders AS SELECT id, total FROM app.orders WHERE total > 100;
"""


def test_json_round_trip(make_db):
    cat = read_catalog(make_db(RICH))
    again = Catalog.from_dict(json.loads(json.dumps(cat.to_dict())))
    assert again == cat
    assert again.fingerprint() == cat.fingerprint()


def test_fingerprint_independent_of_build_order(make_db):
    a = read_catalog(make_db(RICH))
    b = read_catalog(make_db(RICH_OTHER_ORDER))
    assert a.fingerprint() == b.fingerprint()


def test_fingerprint_changes_with_content(make_db):
    a = read_catalog(make_db(RICH))
    b = read_catalog(make_db(RICH + "COMMENT ON VIEW app.big_orders IS 'x';"))
    assert a.fingerprint() != b.fingerprint()


def test_summaries_and_counts(make_db):
    cat = read_catalog(make_db(RICH))
    users = next(t for t in cat.table_summaries() if t.name == "users")
    assert users.schema == "app" and users.comment == "people"
    email = next(c for c in users.columns if c.name == "email")
    assert email.type == "text" and not email.nullable and email.comment == "login"
    assert "PRIMARY KEY (id)" in users.constraints
    counts = cat.object_counts()
    assert counts["table"] == 2 and counts["view"] == 1 and counts["function"] == 1 and counts["index"] == 1


def test_extension_members_and_system_schemas_excluded(make_db):
    cat = read_catalog(make_db("CREATE EXTENSION hstore; CREATE TABLE t (h hstore);"))
    kinds = {o.kind for o in cat.objects.values()}
    assert "extension" in kinds
    assert not [o for o in cat.objects.values() if o.kind == "function"]
    assert not [o for o in cat.objects.values() if o.kind == "type"]
    schemas = {o.schema for o in cat.objects.values() if o.schema}
    assert not schemas & {"pg_catalog", "information_schema"}


def test_bookkeeping_schema_and_filters(make_db):
    url = make_db(f"CREATE SCHEMA {BOOKKEEPING_SCHEMA}; CREATE TABLE {BOOKKEEPING_SCHEMA}.h (x int);"
                  "CREATE SCHEMA a; CREATE TABLE a.t (x int); CREATE SCHEMA b; CREATE TABLE b.t (x int);")
    with psycopg.connect(url) as conn:
        full = introspect(conn)
        only_a = introspect(conn, include_schemas=["a"])
        not_a = introspect(conn, exclude_schemas=["a"])
    assert f"schema:{BOOKKEEPING_SCHEMA}" not in full.objects
    assert "table:a.t" in only_a.objects and "table:b.t" not in only_a.objects
    assert "table:a.t" not in not_a.objects and "table:b.t" in not_a.objects
