"""Correctness of the optimised paths of issue 7 (no timing assertions: timing goals live in bench/)."""

from __future__ import annotations

import gc
import importlib
import threading

import psycopg

from schema_pipeline.catalog import queries
from schema_pipeline.catalog.model import Catalog, DbObject, gc_paused

introspect_mod = importlib.import_module("schema_pipeline.catalog.introspect")

SCHEMA = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok');
CREATE TABLE app.parent (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL DEFAULT 'x');
CREATE TABLE app.child (id serial PRIMARY KEY, parent_id bigint REFERENCES app.parent (id),
                        mood app.mood, note varchar(20) COLLATE "C", amount numeric(10, 2) DEFAULT 0);
CREATE INDEX child_parent ON app.child (parent_id);
CREATE UNIQUE INDEX child_note ON app.child (note) WHERE note IS NOT NULL;
CREATE VIEW app.v AS SELECT c.id, p.name FROM app.child c JOIN app.parent p ON p.id = c.parent_id;
CREATE SEQUENCE app.counter;
COMMENT ON TABLE app.child IS 'child table';
COMMENT ON COLUMN app.child.note IS 'a note';
COMMENT ON INDEX app.child_parent IS 'by parent';
COMMENT ON CONSTRAINT child_pkey ON app.child IS 'pk';
GRANT SELECT (note) ON app.child TO PUBLIC;
GRANT SELECT ON app.parent TO PUBLIC;
GRANT USAGE ON SEQUENCE app.counter TO PUBLIC;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
"""


def _sequential(conn: psycopg.Connection) -> Catalog:
    """The catalog read with every query on the one connection (no sibling connection)."""
    saved = introspect_mod._sibling
    introspect_mod._sibling = lambda conn: None
    try:
        return introspect_mod.introspect(conn)
    finally:
        introspect_mod._sibling = saved


def test_split_introspection_matches_sequential(make_db):
    url = make_db(SCHEMA)
    with psycopg.connect(url, autocommit=True) as conn:
        split = introspect_mod.introspect(conn)
        seq = _sequential(conn)
        path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
    assert split.to_dict() == seq.to_dict()
    assert path == '"$user", public'  # restored after the reads


def test_optimised_queries_read_comments_acls_and_identity(make_db):
    url = make_db(SCHEMA)
    with psycopg.connect(url, autocommit=True) as conn:
        cat = introspect_mod.introspect(conn)
    assert cat.objects["table:app.child"].attrs["comment"] == "child table"
    assert cat.objects["column:app.child.note"].attrs["comment"] == "a note"
    assert cat.objects["column:app.child.note"].attrs["acl"] == ["PUBLIC=SELECT"]
    assert cat.objects["column:app.child.id"].attrs["acl"] == []
    assert cat.objects["index:app.child_parent"].attrs["comment"] == "by parent"
    assert cat.objects["constraint:app.child.child_pkey"].attrs["comment"] == "pk"
    assert "PUBLIC=SELECT" in cat.objects["table:app.parent"].attrs["acl"]
    assert "PUBLIC=USAGE" in cat.objects["sequence:app.counter"].attrs["acl"]
    ident = cat.objects["column:app.parent.id"].attrs
    assert ident["identity"] == "a" and ident["identity_seq"] and ident["identity_seq_name"]
    assert cat.objects["column:app.child.id"].attrs["identity_seq"] is None
    # objects owned by an extension stay out (the hashed NOT IN filter)
    assert not any(o.kind == "function" and "trgm" in o.key for o in cat.objects.values())


def test_not_ext_and_acl_fragments_are_equivalent_to_the_row_forms(make_db):
    """The set-based rewrites select exactly what the per-row forms selected."""
    url = make_db(SCHEMA)
    per_row_not_ext = ("NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass "
                       "AND e.objid = p.oid AND e.deptype = 'e')")
    with psycopg.connect(url, autocommit=True) as conn:
        a = conn.execute(f"SELECT count(*) FROM pg_proc p WHERE {queries._not_ext('pg_proc', 'p.oid')}").fetchone()
        b = conn.execute(f"SELECT count(*) FROM pg_proc p WHERE {per_row_not_ext}").fetchone()
        assert a == b
        acl_sql = queries._acl("a.attacl", "", "0").replace("%%", "%")
        rows = conn.execute(f"SELECT a.attname, {acl_sql} FROM pg_attribute a "
                            "WHERE a.attrelid = 'app.child'::regclass AND a.attnum > 0 ORDER BY 1").fetchall()
    assert dict(rows) == {"amount": [], "id": [], "mood": [], "note": ["PUBLIC=SELECT"], "parent_id": []}


def test_catalog_content_skips_only_position():
    cat = Catalog()
    col = DbObject("column", "s.t.c", "s", "c", {"position": 3, "type": "int"}, parent="table:s.t")
    tab = DbObject("table", "s.t", "s", "t", {"owner": "x"})
    cat.add(col)
    cat.add(tab)
    content = cat.content()
    assert content == [
        {"kind": "column", "key": "s.t.c", "parent": "table:s.t", "attrs": {"type": "int"}},
        {"kind": "table", "key": "s.t", "parent": None, "attrs": {"owner": "x"}},
    ]
    assert col.attrs == {"position": 3, "type": "int"}  # the object itself is untouched
    moved = Catalog()
    moved.add(DbObject("column", "s.t.c", "s", "c", {"position": 9, "type": "int"}, parent="table:s.t"))
    moved.add(DbObject("table", "s.t", "s", "t", {"owner": "x"}))
    assert moved.fingerprint() == cat.fingerprint()


def test_gc_paused_nests_and_restores():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            with gc_paused():
                barrier.wait(timeout=10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert gc.isenabled()


def test_gc_paused_keeps_a_disabled_collector_disabled():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_streamed_fingerprint_equals_hash_of_the_json_content(make_db):
    import hashlib
    import json

    url = make_db(SCHEMA)
    with psycopg.connect(url, autocommit=True) as conn:
        cat = introspect_mod.introspect(conn)
    for c in (cat, Catalog()):
        payload = json.dumps(c.content(), sort_keys=True, default=str)
        assert c.fingerprint() == hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_fingerprint_is_computed_once_and_reset_by_add(monkeypatch):
    cat = Catalog()
    cat.add(DbObject("schema", "app", None, "app", {"owner": "o"}))
    calls = []
    real = Catalog._compute_fingerprint
    monkeypatch.setattr(Catalog, "_compute_fingerprint", lambda self: calls.append(1) or real(self))
    first = cat.fingerprint()
    assert cat.fingerprint() == first and len(calls) == 1
    cat.add(DbObject("schema", "other", None, "other", {"owner": "o"}))
    second = cat.fingerprint()
    assert second != first and len(calls) == 2
    assert Catalog.from_dict(cat.to_dict()).fingerprint() == second


def test_plan_without_fingerprints_skips_hashing_the_catalogs(make_db):
    from schema_pipeline.engine import plan_catalogs

    url = make_db(SCHEMA)
    with psycopg.connect(url, autocommit=True) as conn:
        cat = introspect_mod.introspect(conn)
    bare = plan_catalogs(Catalog(role=cat.role), cat, fingerprints=False)
    full = plan_catalogs(Catalog(role=cat.role), cat)
    assert bare.target_fingerprint == bare.desired_fingerprint == ""
    assert full.desired_fingerprint == cat.fingerprint() and full.target_fingerprint == Catalog().fingerprint()
    assert [s.sql for s in bare.steps] == [s.sql for s in full.steps] and bare.fingerprint() == full.fingerprint()


def test_second_connection_only_for_a_lone_catalog_read(make_db, monkeypatch):
    url = make_db(SCHEMA)
    opened = []
    real = introspect_mod._sibling
    monkeypatch.setattr(introspect_mod, "_sibling", lambda conn: opened.append(1) or real(conn))
    with psycopg.connect(url, autocommit=True) as conn:
        alone = introspect_mod.introspect(conn)
        assert len(opened) == 1
        with introspect_mod._counted_read():  # another read is in flight
            busy = introspect_mod.introspect(conn)
        assert len(opened) == 1
    assert busy.fingerprint() == alone.fingerprint()


def test_schema_scope_is_applied_by_the_server(make_db):
    url = make_db("CREATE SCHEMA app; CREATE SCHEMA other; CREATE SCHEMA skip;"
                  "CREATE TABLE app.t (id int PRIMARY KEY); CREATE TABLE other.u (id int REFERENCES app.t);"
                  "CREATE TABLE skip.v (id int); CREATE INDEX ON skip.v (id); CREATE VIEW skip.w AS SELECT 1 AS x;")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('search_path', '', false)")
        rows = introspect_mod._run_all(conn, params=introspect_mod._params(["app", "other"], None))
        read = {r.get("schema") for name, rs in rows.items() if name not in ("depends", "extensions") for r in rs}
        assert read - {None} <= {"app", "other"}, read
        rows = introspect_mod._run_all(conn, params=introspect_mod._params(None, ["skip"]))
        assert "skip" not in {r.get("schema") or r.get("name") for r in rows["schemas"] + rows["relations"]}
        conn.execute("SELECT set_config('search_path', 'public', false)")
        for include, exclude in ((["app", "other"], None), (None, ["skip"]), (["app"], ["other"])):
            scoped = introspect_mod.introspect(conn, include_schemas=include, exclude_schemas=exclude)
            whole = introspect_mod.introspect(conn)
            introspect_mod._filter_schemas(whole, include, exclude)
            assert scoped.content() == whole.content()
            assert {o.schema for o in scoped.objects.values() if o.schema} <= set(include or ["app", "other", "public"])
