"""Read a live database into a `Catalog` with a fixed handful of set-based queries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg.rows import dict_row

from schema_pipeline.catalog import queries
from schema_pipeline.catalog.deparse import settle_rows
from schema_pipeline.catalog.model import BOOKKEEPING_SCHEMA, Catalog, DbObject, gc_paused, node_id
from schema_pipeline.catalog.names import ident
from schema_pipeline.progress import Counter, ProgressFn

OidKey = tuple[str, int, int]


def _params(include_schemas: list[str] | None, exclude_schemas: list[str] | None) -> dict[str, Any]:
    """Parameters of the catalog queries: the scope is applied by the server (`queries.SCOPE`)."""
    return {"bookkeeping": BOOKKEEPING_SCHEMA, "include": list(include_schemas) if include_schemas else None,
            "exclude": list(exclude_schemas or [])}


def _run(conn: psycopg.Connection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params if params is not None else _params(None, None))
        return cur.fetchall()


# The heaviest queries run on a second connection while the rest run on the caller's: catalog
# reads are server-bound, so two backends roughly halve the wall time on a multi-core server.
# Only for a lone read: when several run at once (both sides of a plan, drift over many targets)
# the server's cores are busy already and a second connection per read only adds connection cost.
_SIDE_QUERIES = ("columns", "depends")
_active_reads = 0
_active_lock = threading.Lock()


@contextmanager
def _counted_read() -> Iterator[bool]:
    """Count a running catalog read; yields True when it is the only one in this process."""
    global _active_reads
    with _active_lock:
        _active_reads += 1
        alone = _active_reads == 1
    try:
        yield alone
    finally:
        with _active_lock:
            _active_reads -= 1


def _sibling(conn: psycopg.Connection) -> psycopg.Connection | None:
    """A second connection to the same database as `conn` (None when it cannot be opened)."""
    try:
        info = conn.info
        conninfo = psycopg.conninfo.make_conninfo(info.dsn, password=info.password or None,
                                                  application_name="schema_pipeline_introspect")
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except (psycopg.Error, ValueError):
        return None


def _run_all(conn: psycopg.Connection, counter: Counter | None = None,
             params: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """All catalog queries, split over `conn` and a sibling connection run from a thread."""
    def run(c: psycopg.Connection, name: str) -> list[dict[str, Any]]:
        result = _run(c, queries.ALL[name], params)
        if counter:
            counter.advance(detail=name)
        return result

    with _counted_read() as alone:
        side = _sibling(conn) if alone else None
        if side is None:
            return {name: run(conn, name) for name in queries.ALL}
        return _run_split(conn, side, run)


def _run_split(conn: psycopg.Connection, side: psycopg.Connection,
               run: Callable[[psycopg.Connection, str], list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    with side, ThreadPoolExecutor(max_workers=1) as pool:
        def run_side() -> dict[str, list[dict[str, Any]]]:
            side.execute("SELECT set_config('search_path', '', false)")
            return {name: run(side, name) for name in _SIDE_QUERIES if name in queries.ALL}

        fut = pool.submit(run_side)
        rows = {name: run(conn, name) for name in queries.ALL if name not in _SIDE_QUERIES}
        rows.update(fut.result())
    return {name: rows[name] for name in queries.ALL}


def _q(schema: str, name: str) -> str:
    return f"{schema}.{name}"


class _Builder:
    def __init__(self) -> None:
        self.cat = Catalog()
        self.oids: dict[OidKey, str] = {}

    def add(self, obj: DbObject, cls: str | None = None, oid: int | None = None, sub: int = 0) -> DbObject:
        self.cat.add(obj)
        if cls and oid:
            self.oids[(cls, oid, sub)] = obj.id
        return obj


_RELKIND = {"r": "table", "p": "table", "v": "view", "m": "matview", "S": "sequence", "c": "type"}


def introspect(
    conn: psycopg.Connection,
    *,
    include_schemas: list[str] | None = None,
    exclude_schemas: list[str] | None = None,
    progress: ProgressFn | None = None,
    phase: str = "reading the catalog",
) -> Catalog:
    """Read the connected database's schema objects (non-system, non-extension) into a Catalog.

    With `progress`, `phase` is reported as counted work: one unit per catalog query, one for the build."""
    counter = Counter(progress, phase, len(queries.ALL) + 1, unit="queries") if progress else None
    with gc_paused():
        cat = _introspect(conn, include_schemas=include_schemas, exclude_schemas=exclude_schemas, counter=counter)
    if counter:
        counter.finish(f"{len(cat.objects)} objects")
    return cat


def _introspect(
    conn: psycopg.Connection,
    *,
    include_schemas: list[str] | None = None,
    exclude_schemas: list[str] | None = None,
    counter: Counter | None = None,
) -> Catalog:
    old_path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
    conn.execute("SELECT set_config('search_path', '', false)")
    try:
        rows = _run_all(conn, counter, _params(include_schemas, exclude_schemas))
    finally:
        conn.execute("SELECT set_config('search_path', %s, false)", (old_path,))
    # Building is pure Python (the GIL serialises it anyway): one catalog at a time keeps the peak
    # memory of concurrent reads (both sides of a plan, many drift targets) to one set of raw rows in work.
    if counter:
        counter.update(len(queries.ALL), detail="building the catalog")
    with _BUILD_LOCK:
        settle_rows(rows)
        return _build(conn, rows, include_schemas, exclude_schemas)


_BUILD_LOCK = threading.Lock()


def _stattargets(rows: list[list[int]]) -> dict[str, int]:
    """{"1": 3000}: the statistics target of each index column that has one, by column number."""
    return {str(n): target for n, target in rows}


def _build(conn: psycopg.Connection, rows: dict[str, list[dict[str, Any]]], include_schemas: list[str] | None,
           exclude_schemas: list[str] | None) -> Catalog:
    b = _Builder()
    b.cat.server_version = conn.info.server_version
    b.cat.role = conn.info.user

    for r in rows.pop("schemas"):
        b.add(
            DbObject("schema", r["name"], None, r["name"], {"owner": r["owner"], "comment": r["comment"], "acl": r["acl"]}),
            "pg_namespace",
            r["oid"],
        )
    for r in rows.pop("extensions"):
        b.add(
            DbObject(
                "extension",
                r["name"],
                None,
                r["name"],
                {"schema": r["schema"], "version": r["version"], "comment": r["comment"]},
                deps=[node_id("schema", r["schema"])],
            ),
            "pg_extension",
            r["oid"],
        )
    for r in rows.pop("collations"):
        attrs = {k: r[k] for k in ("provider", "lc_collate", "lc_ctype", "icu_locale", "deterministic", "owner", "comment")}
        b.add(DbObject("collation", _q(r["schema"], r["name"]), r["schema"], r["name"], attrs), "pg_collation", r["oid"])
    for r in rows.pop("types"):
        attrs: dict[str, Any] = {"typtype": r["typtype"], "owner": r["owner"], "comment": r["comment"], "acl": r["acl"]}
        if r["typtype"] == "e":
            attrs["labels"] = r["labels"] or []
        elif r["typtype"] == "d":
            attrs.update(
                basetype=r["basetype"],
                default=r["default"],
                notnull=r["notnull"],
                collation=r["collation"],
                constraints=r["constraints"] or [],
            )
        elif r["typtype"] == "r":
            attrs["range_def"] = r["range_def"]
        obj = b.add(DbObject("type", _q(r["schema"], r["name"]), r["schema"], r["name"], attrs), "pg_type", r["oid"])
        if r["typarray"]:
            b.oids[("pg_type", r["typarray"], 0)] = obj.id

    seq_rows = {r["oid"]: r for r in rows.pop("sequences")}
    rel_ids: dict[int, str] = {}
    for r in rows.pop("relations"):
        kind = _RELKIND.get(r["relkind"])
        if kind is None:
            continue
        key = _q(r["schema"], r["name"])
        if kind == "table":
            attrs = {
                "relkind": r["relkind"],
                "persistence": r["persistence"],
                "owner": r["owner"],
                "comment": r["comment"],
                "acl": r["acl"],
                "rls": r["rls"],
                "force_rls": r["force_rls"],
                "options": r["options"],
                "partkey": r["partkey"],
                "partbound": r["partbound"],
                "partition_of": (r["parents"] or [None])[0] if r["is_partition"] else None,
                "inherits": [] if r["is_partition"] else (r["parents"] or []),
                "replident": r["replident"],
            }
            deps = [node_id("table", p) for p in (r["parents"] or [])]
        elif kind in ("view", "matview"):
            attrs = {
                "definition": r["definition"],
                "options": r["options"],
                "owner": r["owner"],
                "comment": r["comment"],
                "acl": r["acl"],
                "columns": [],
                "column_comments": {},
            }
            if kind == "matview":
                attrs["populated"] = r["populated"]
            deps = []
        elif kind == "sequence":
            s = seq_rows.get(r["oid"])
            if s is None:
                continue
            if s["is_identity"]:
                rel_ids[r["oid"]] = "identity"
                continue
            attrs = {k: str(s[k]) for k in ("data_type", "start", "increment", "min", "max", "cache", "cycle")}
            attrs.update(owner=r["owner"], comment=r["comment"], acl=r["seq_acl"], persistence=r["persistence"])
            deps = []
            if s["owned_by"]:
                b.add(
                    DbObject(
                        "seqowner",
                        key,
                        r["schema"],
                        r["name"],
                        {"owned_by": s["owned_by"]},
                        deps=[node_id("sequence", key), node_id("column", s["owned_by"])],
                    )
                )
        else:  # composite type
            attrs = {
                "typtype": "c",
                "owner": r["owner"],
                "comment": r["type_comment"],
                "acl": r["type_acl"],
                "attributes": [],
            }
            deps = []
            obj = b.add(DbObject(kind, key, r["schema"], r["name"], attrs, deps=deps), "pg_class", r["oid"])
            b.oids[("pg_type", r["typoid"], 0)] = obj.id
            if r["typarray"]:
                b.oids[("pg_type", r["typarray"], 0)] = obj.id
            rel_ids[r["oid"]] = obj.id
            continue
        obj = b.add(DbObject(kind, key, r["schema"], r["name"], attrs, deps=deps), "pg_class", r["oid"])
        rel_ids[r["oid"]] = obj.id
        if r["reltype"]:
            b.oids[("pg_type", r["reltype"], 0)] = obj.id

    for r in sorted(rows.pop("columns"), key=lambda r: (r["reloid"], r["attnum"])):
        rid = rel_ids.get(r["reloid"])
        if rid is None or rid == "identity":
            continue
        parent = b.cat.objects[rid]
        if parent.kind in ("view", "matview"):
            parent.attrs["columns"].append([r["name"], r["type"]])
            if r["comment"] is not None:
                parent.attrs["column_comments"][r["name"]] = r["comment"]
            settings = {k: r[k] for k in ("stattarget", "storage", "storage_default") if r[k] is not None}
            if settings:  # materialized views: SET STATISTICS / SET STORAGE
                parent.attrs.setdefault("column_settings", {})[r["name"]] = settings
            b.oids[("pg_class", r["reloid"], r["attnum"])] = rid
            continue
        if parent.kind == "type":
            spec = f"{ident(r['name'])} {r['type']}"
            if r["collation"]:
                spec += f" COLLATE {r['collation']}"
            parent.attrs["attributes"].append(spec)
            parent.attrs.setdefault("attribute_comments", {})
            if r["comment"] is not None:
                parent.attrs["attribute_comments"][r["name"]] = r["comment"]
            b.oids[("pg_class", r["reloid"], r["attnum"])] = rid
            continue
        is_partition = parent.attrs.get("partition_of") is not None
        attrs = {
            "position": r["attnum"],
            "type": r["type"],
            "notnull": r["notnull"],
            "default": r["default"],
            "generated": r["generated"],
            "identity": r["identity"] or None,
            "identity_seq": r["identity_seq"] if r["identity"] else None,
            "identity_seq_name": r["identity_seq_name"] if r["identity"] else None,
            "collation": r["collation"],
            "comment": r["comment"],
            "acl": r["acl"],
            "inherited": bool(r["inhcount"] and not r["islocal"] and not is_partition),
            "from_parent": bool(r["inhcount"]),
        }
        if r["stattarget"] is not None:
            attrs["stattarget"] = r["stattarget"]
        if r["storage"] is not None:  # with the type's own, which a reset goes back to
            attrs["storage"], attrs["storage_default"] = r["storage"], r["storage_default"]
        if r["compression"] is not None:  # absent = the server's default_toast_compression
            attrs["compression"] = r["compression"]
        key = f"{parent.key}.{r['name']}"
        b.add(
            DbObject("column", key, parent.schema, r["name"], attrs, parent=rid, deps=[rid]),
            "pg_class",
            r["reloid"],
            r["attnum"],
        )

    index_owner: dict[int, str] = {}
    for r in rows.pop("constraints"):
        tid = node_id("table", _q(r["schema"], r["table_name"]))
        if tid not in b.cat.objects or (r["inhcount"] and not r["islocal"] and not r["has_parent"]):
            continue
        if r["clone_on_same_table"]:
            continue  # FK clones towards the partitions of a referenced partitioned table
        if r["contype"] in ("n", "t"):
            continue
        kind = "fkey" if r["contype"] == "f" else "constraint"
        attrs = {"contype": r["contype"], "definition": r["definition"], "comment": r["comment"]}
        deps = [tid]
        if r["inherited_from"]:
            attrs["inherited_from"] = r["inherited_from"]
            deps.append(node_id("fkey" if r["contype"] == "f" else "constraint", r["inherited_from"]))
        elif r["index_attached_to"]:
            attrs["index_attached_to"] = r["index_attached_to"]
            deps.append(node_id("index", r["index_attached_to"]))
        obj = b.add(
            DbObject(kind, f"{_q(r['schema'], r['table_name'])}.{r['name']}", r["schema"], r["name"], attrs,
                     parent=tid, deps=deps),
            "pg_constraint",
            r["oid"],
        )
        if r["conindid"] and r["contype"] in ("p", "u", "x"):
            index_owner[r["conindid"]] = obj.id
    for r in rows.pop("indexes"):
        if r["constraint_backed"]:
            cid = index_owner.get(r["oid"])
            if cid:
                b.oids[("pg_class", r["oid"], 0)] = cid
                attrs = b.cat.objects[cid].attrs
                if r["replident"]:
                    attrs["replica_identity"] = True
                if r["clustered"]:
                    attrs["clustered"] = True
                if r["comment"] is not None:  # COMMENT ON INDEX of the constraint's index
                    attrs["index_comment"] = r["comment"]
                if r["stattargets"]:  # ALTER INDEX ... ALTER COLUMN n SET STATISTICS (an exclusion expression)
                    attrs["index_stattargets"] = _stattargets(r["stattargets"])
            continue
        pkind = "matview" if r["relkind"] == "m" else "table"
        tid = node_id(pkind, _q(r["schema"], r["table_name"]))
        if tid not in b.cat.objects:
            continue
        attrs = {"definition": r["definition"], "comment": r["comment"], "clustered": r["clustered"],
                 "attached_to": r["attached_to"]}
        if r["replident"]:
            attrs["replica_identity"] = True
        if r["stattargets"]:  # ALTER INDEX ... ALTER COLUMN n SET STATISTICS (expression columns)
            attrs["stattargets"] = _stattargets(r["stattargets"])
        if not r["valid"]:
            attrs["invalid"] = True  # left by an interrupted CREATE INDEX CONCURRENTLY: rebuilt by the next plan
        deps = [tid] + ([node_id("index", r["attached_to"])] if r["attached_to"] else [])
        b.add(
            DbObject("index", _q(r["schema"], r["name"]), r["schema"], r["name"], attrs, parent=tid, deps=deps),
            "pg_class",
            r["oid"],
        )
    for r in rows.pop("functions"):
        if r["definition"] is None:
            continue  # ordered-set / hypothetical aggregates are not modelled
        key = f"{_q(r['schema'], r['name'])}({r['identity_args']})"
        attrs = {k: r[k] for k in ("prokind", "definition", "arguments", "result", "owner", "comment", "acl")}
        b.add(DbObject("function", key, r["schema"], r["name"], attrs), "pg_proc", r["oid"])
    # Triggers and rules have the same shape: a definition attached to a table, view or matview.
    for kind, query, catalog_table in (("trigger", "triggers", "pg_trigger"), ("rule", "rules", "pg_rewrite")):
        for r in rows.pop(query):
            pkind = {"v": "view", "m": "matview"}.get(r["relkind"], "table")
            tid = node_id(pkind, _q(r["schema"], r["table_name"]))
            if tid not in b.cat.objects:
                continue
            attrs = {"definition": r["definition"], "enabled": r["enabled"], "comment": r["comment"]}
            b.add(
                DbObject(kind, f"{_q(r['schema'], r['table_name'])}.{r['name']}", r["schema"], r["name"], attrs,
                         parent=tid, deps=[tid]),
                catalog_table,
                r["oid"],
            )
    for r in rows.pop("statistics"):
        pkind = "matview" if r["relkind"] == "m" else "table"
        tid = node_id(pkind, _q(r["table_schema"], r["table_name"]))
        if tid not in b.cat.objects:
            continue
        attrs = {"definition": r["definition"], "comment": r["comment"], "owner": r["owner"]}
        b.add(
            DbObject("statistics", _q(r["schema"], r["name"]), r["schema"], r["name"], attrs, parent=tid, deps=[tid]),
            "pg_statistic_ext",
            r["oid"],
        )
    for r in rows.pop("policies"):
        tid = node_id("table", _q(r["schema"], r["table_name"]))
        if tid not in b.cat.objects:
            continue
        attrs = {k: r[k] for k in ("cmd", "permissive", "roles", "qual", "with_check", "comment")}
        b.add(
            DbObject("policy", f"{_q(r['schema'], r['table_name'])}.{r['name']}", r["schema"], r["name"], attrs,
                     parent=tid, deps=[tid]),
            "pg_policy",
            r["oid"],
        )
    for r in rows.pop("default_acls"):
        if r["schema"] is not None and node_id("schema", r["schema"]) not in b.cat.objects:
            continue
        key = f"{r['role']}.{r['schema'] or ''}.{r['objtype']}"
        deps = [node_id("schema", r["schema"])] if r["schema"] else []
        b.add(DbObject("defacl", key, r["schema"], r["objtype"], {"role": r["role"], "objtype": r["objtype"],
                                                                    "acl": r["acl"]}, deps=deps))

    for r in rows.pop("event_triggers"):
        fid = b.oids.get(("pg_proc", r["funcoid"], 0))
        attrs = {k: r[k] for k in ("event", "tags", "function", "function_schema", "enabled", "owner", "comment")}
        b.add(DbObject("event_trigger", r["name"], None, r["name"], attrs, deps=[fid] if fid else []),
              "pg_event_trigger", r["oid"])

    for r in rows.pop("operators"):
        key = f"{_q(r['schema'], r['name'])}({r['leftarg'] or 'NONE'},{r['rightarg'] or 'NONE'})"
        attrs = {k: r[k] for k in ("leftarg", "rightarg", "function", "commutator", "negator", "restrict", "join",
                                   "hashes", "merges", "owner", "comment")}
        b.add(DbObject("operator", key, r["schema"], r["name"], attrs), "pg_operator", r["oid"])

    for kind, query, catalog_table, fields in (
            ("ts_dictionary", "ts_dictionaries", "pg_ts_dict", ("template", "options")),
            ("ts_configuration", "ts_configurations", "pg_ts_config", ("parser", "mappings"))):
        for r in rows.pop(query):
            attrs = {k: r[k] for k in (*fields, "owner", "comment")}
            if kind == "ts_configuration":
                attrs["mappings"] = r["mappings"] or []
            b.add(DbObject(kind, _q(r["schema"], r["name"]), r["schema"], r["name"], attrs), catalog_table, r["oid"])

    # Database-wide kinds: the schemas they name decide their scope (see _filter_schemas).
    scopes: dict[str, list[str] | None] = {}
    for r in rows.pop("publications"):
        attrs = {k: r[k] for k in ("all_tables", "publish", "via_root", "owner", "comment")}
        attrs.update(tables=r["tables"] or [], schemas=r["schemas"] or [])
        obj = b.add(DbObject("publication", r["name"], None, r["name"], attrs), "pg_publication", r["oid"])
        for cls, oids in (("pg_publication_rel", r["rel_oids"]), ("pg_publication_namespace", r["schema_oids"])):
            for oid in oids or []:
                b.oids[(cls, oid, 0)] = obj.id
        scopes[obj.id] = None if r["all_tables"] else sorted(set(r["rel_schemas"] or []) | set(r["schemas"] or []))
    for r in rows.pop("casts"):
        key = f"({r['source']} AS {r['target']})"
        attrs = {k: r[k] for k in ("source", "target", "method", "function", "context", "comment")}
        obj = b.add(DbObject("cast", key, None, key, attrs), "pg_cast", r["oid"])
        scopes[obj.id] = [s for s in r["schemas"] if s != "pg_catalog"]

    _add_dependencies(b, rows.pop("depends"))
    _filter_schemas(b.cat, include_schemas, exclude_schemas, scopes)
    return b.cat


def _add_dependencies(b: _Builder, dep_rows: list[dict[str, Any]]) -> None:
    objs = b.cat.objects
    schema_ids: dict[str, str] = {}  # one string per schema id, shared by every object's deps
    for o in objs.values():
        if o.schema is not None and o.kind != "defacl":
            sid = schema_ids.get(o.schema)
            if sid is None:
                sid = schema_ids[o.schema] = node_id("schema", o.schema)
            if sid in objs:
                o.deps.append(sid)

    def look(cls: str, oid: int, sub: int) -> str | None:
        return b.oids.get((cls, oid, sub)) or b.oids.get((cls, oid, 0))

    for r in dep_rows:
        if r["deptype"] == "e":
            ext = b.oids.get((r["refcls"], r["refobjid"], 0))
            if ext:
                b.oids.setdefault((r["cls"], r["objid"], 0), ext)
    for r in dep_rows:
        if r["deptype"] == "e":
            continue
        src = look(r["cls"], r["objid"], r["objsubid"])
        ref = look(r["refcls"], r["refobjid"], r["refobjsubid"])
        if not src or not ref or src == ref:
            continue
        so, ro = objs[src], objs[ref]
        if so.kind == "sequence" and ro.kind in ("column", "table"):
            continue  # OWNED BY is modelled by the seqowner node
        if so.kind == "column" and ro.id == so.parent:
            continue
        so.deps.append(ref)
    for o in objs.values():
        o.deps = sorted(set(o.deps) - {o.id})


def _filter_schemas(cat: Catalog, include: list[str] | None, exclude: list[str] | None,
                    scopes: dict[str, list[str] | None] | None = None) -> None:
    """Keep the objects of the managed schemas.

    Database-wide kinds have no schema of their own; `scopes` lists the schemas they name:
    a publication is in scope when every schema of its tables and of its `TABLES IN SCHEMA` is
    (a `FOR ALL TABLES` one, None, only when no schema filter is set: it spans unmanaged schemas);
    a cast when the schemas of its types and function other than pg_catalog are. Naming no schema
    (an empty publication, a cast between built-in types) keeps them in scope."""
    if not include and not exclude:
        return
    scopes = scopes or {}

    def in_scope(schema: str) -> bool:
        return not (include and schema not in include) and not (exclude and schema in exclude)

    def keep(o: DbObject) -> bool:
        if o.id in scopes:
            named = scopes[o.id]
            return named is not None and all(in_scope(s) for s in named)
        schema = o.key if o.kind == "schema" else o.schema
        if o.kind == "event_trigger":  # database-wide: in scope with the schema of its function
            schema = o.attrs.get("function_schema")
        if schema is None:
            return True
        if include and schema not in include:
            return False
        return not (exclude and schema in exclude)

    cat.objects = {k: o for k, o in cat.objects.items() if keep(o)}
    cat._index = cat._fingerprint = None
