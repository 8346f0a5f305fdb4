"""Declared renames: `ALTER ... RENAME` steps instead of drop + create, and the current catalog as it
will look once they ran (so the rest of the diff compares like with like).

Renames come from the state (`DesiredState.renames`, keyed `(kind, qualified new name)` -> old name;
see `state/renames.py`). A declaration only acts when the old object exists in the target and the new
one does not yet (so it is ignored once the rename happened), and the desired state has the new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from schema_pipeline.catalog.model import Catalog, DbObject, node_id
from schema_pipeline.catalog.names import ident, literal, qname
from schema_pipeline.diff.common import HazardType, Step, hz, step

Renames = Mapping[tuple[str, str], str]

# State kinds -> catalog kinds of the objects renamed as a whole.
_RELATION_KINDS = {"table": "table", "view": "view", "materialized view": "matview", "matview": "matview",
                   "sequence": "sequence", "index": "index", "type": "type", "domain": "type"}
_ALTER_KEYWORD = {"table": "TABLE", "view": "VIEW", "matview": "MATERIALIZED VIEW", "sequence": "SEQUENCE",
                  "index": "INDEX", "type": "TYPE"}
_SET_SCHEMA_OK = {"table", "view", "matview", "sequence", "type"}
# Attributes holding unquoted dotted names ("schema.table[.column]") rather than SQL text.
_DOTTED_ATTRS = ("partition_of", "owned_by", "inherited_from", "attached_to", "index_attached_to")
# Attributes that are free text or privileges, never rewritten.
_PLAIN_ATTRS = {"comment", "column_comments", "attribute_comments", "acl", "owner", "position"}
_IDENT_RE = re.compile(r"[a-z_][a-z0-9_$]*")


def render_ident(name: str) -> str:
    """An identifier as PostgreSQL renders it (quoted only when needed)."""
    return name if _IDENT_RE.fullmatch(name) else ident(name)


def _rendered(schema: str, name: str) -> str:
    return f"{render_ident(schema)}.{render_ident(name)}"


def _token_re(rendered: str) -> re.Pattern[str]:
    """`rendered` as a whole token, outside string literals (single quotes are skipped by the caller)."""
    return re.compile(r"(?<![\w$\".])" + re.escape(rendered) + r"(?![\w$\"])")


def _outside_literals(text: str, fn: Callable[[str], str]) -> str:
    """Apply `fn` to the parts of `text` that are not inside '...' string literals."""
    parts = re.split(r"('(?:[^']|'')*')", text)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(parts))


def _map_value(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return _outside_literals(value, fn)
    if isinstance(value, list):
        return [_map_value(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_value(v, fn) for k, v in value.items()}
    return value


def _dotted(value: Any, old: str, new: str) -> Any:
    """Replace the dotted-name prefix `old` by `new` (exact or followed by '.')."""
    if isinstance(value, list):
        return [_dotted(v, old, new) for v in value]
    if isinstance(value, str) and (value == old or value.startswith(old + ".")):
        return new + value[len(old):]
    return value


class _Rewriter:
    """Rewrites a catalog copy in place: ids, keys, names, parents, deps and name references in SQL text."""

    def __init__(self, cat: Catalog) -> None:
        self.cat = cat
        self.pairs: list[tuple[str, str, str]] = []  # (table key, old name, new name) of tables and columns

    def rekey(self, ids: dict[str, tuple[str, str]]) -> None:
        """Give the objects `ids` (old id -> (new key, new name)) their new identity; fix every reference."""
        if not ids:
            return
        new_ids = {old: node_id(old.split(":", 1)[0], key) for old, (key, _name) in ids.items()}
        objects: dict[str, DbObject] = {}
        for oid, o in self.cat.objects.items():
            if oid in ids:
                o.rekey(*ids[oid])
            o.parent = new_ids.get(o.parent, o.parent) if o.parent else None
            o.deps = sorted({new_ids.get(d, d) for d in o.deps})
            objects[o.id] = o
        self.cat.objects = objects
        self.cat._index = None

    def text(self, fn: Callable[[str], str], only: Callable[[DbObject], bool] | None = None,
             keys: bool = False, attrs: set[str] | None = None) -> None:
        """Apply `fn` to the SQL text attributes (and with `keys` to function identities) of objects."""
        renamed: dict[str, tuple[str, str]] = {}
        for o in self.cat.objects.values():
            if only is not None and not only(o):
                continue
            for a, v in list(o.attrs.items()):
                if a not in _PLAIN_ATTRS and a not in _DOTTED_ATTRS and (attrs is None or a in attrs):
                    o.attrs[a] = _map_value(v, fn)
            if keys and o.kind == "function":
                key = fn(o.key)
                if key != o.key:
                    renamed[o.id] = (key, o.name)
        self.rekey(renamed)

    def regclass(self, old: str, new: str) -> None:
        """Rewrite 'old'::regclass literals (sequence defaults and the like)."""
        pattern, repl = literal(old) + "::regclass", literal(new) + "::regclass"
        for o in self.cat.objects.values():
            for a, v in list(o.attrs.items()):
                if a not in _PLAIN_ATTRS and isinstance(v, str) and pattern in v:
                    o.attrs[a] = v.replace(pattern, repl)

    def dotted(self, old: str, new: str) -> None:
        """Rewrite the dotted-name attributes that start with `old`."""
        for o in self.cat.objects.values():
            for a in _DOTTED_ATTRS:
                if o.attrs.get(a):
                    o.attrs[a] = _dotted(o.attrs[a], old, new)
            if o.attrs.get("inherits"):
                o.attrs["inherits"] = _dotted(o.attrs["inherits"], old, new)


def _hazard(what: str, old: str, new: str) -> Any:
    return hz(HazardType.CORRECTNESS, f"renames {what} {old} to {new}; clients using the old name break")


def _split_old(old: str, schema: str) -> tuple[str, str]:
    parts = old.split(".")
    return (parts[0], parts[1]) if len(parts) == 2 else (schema, old)


def plan_renames(current: Catalog, desired: Catalog, renames: Renames | None) -> tuple[Catalog, list[Step]]:
    """The rename steps still pending, and `current` as it will be after them (a copy; unchanged if none)."""
    if not renames:
        return current, []
    cat = Catalog.from_dict(current.to_dict())
    cat.server_version = current.server_version
    rw = _Rewriter(cat)
    steps: list[Step] = []
    decls = sorted(renames.items())
    for (kind, new_q), old in decls:  # whole objects first: later names refer to their new names
        if kind in _RELATION_KINDS:
            steps += _rename_relation(rw, desired, _RELATION_KINDS[kind], new_q, old)
    for (kind, new_q), old in decls:
        if kind == "column":
            steps += _rename_column(rw, desired, new_q, old)
    for (kind, new_q), old in decls:
        if kind == "constraint":
            steps += _rename_constraint(rw, desired, new_q, old)
    for (kind, new_q), old in decls:
        if kind == "enum_value":
            steps += _rename_enum_value(rw, desired, new_q, old)
    steps += _implied_renames(rw, desired)
    return (cat, steps) if steps else (current, [])


def _implied_renames(rw: _Rewriter, desired: Catalog) -> list[Step]:
    """Names PostgreSQL derived from a renamed table or column (users_pkey, users_email_key, users_id_seq):
    renamed along with it when the desired object has the derived name and the same definition."""
    steps: list[Step] = []
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table_key, old, new in rw.pairs:
        by_table.setdefault(table_key, []).append((old, new))

    def derive(name: str, pairs: list[tuple[str, str]]) -> str:
        for old, new in pairs:
            name = name.replace(old, new)
        return name

    for table_key, pairs in by_table.items():
        for c in list(rw.cat.children(node_id("table", table_key))):
            derived = derive(c.name, pairs)
            if c.kind not in ("constraint", "fkey", "index") or c.id in desired.objects or derived == c.name:
                continue
            new_key = f"{c.schema}.{derived}" if c.kind == "index" else f"{table_key}.{derived}"
            want = desired.get(node_id(c.kind, new_key))
            if want is None or node_id(c.kind, new_key) in rw.cat.objects:
                continue
            have = c.attrs.get("definition", "")
            if c.kind == "index":
                have = have.replace(f"INDEX {render_ident(c.name)} ON", f"INDEX {render_ident(derived)} ON", 1)
                if have == want.attrs.get("definition"):
                    steps += _rename_relation(rw, desired, "index", new_key, c.name)
            elif have == want.attrs.get("definition"):
                steps += _rename_constraint(rw, desired, new_key, c.name)
        for so in [o for o in rw.cat.of_kind("seqowner") if o.attrs["owned_by"].startswith(table_key + ".")]:
            derived = derive(so.name, pairs)
            if derived != so.name and node_id("sequence", so.key) not in desired.objects:
                steps += _rename_relation(rw, desired, "sequence", f"{so.schema}.{derived}", so.name)
    return steps


def _pending(cat: Catalog, desired: Catalog, old_id: str, new_id: str) -> DbObject | None:
    """The old object when the rename is still to be done (old here, new not yet, new desired)."""
    obj = cat.get(old_id)
    if obj is None or new_id in cat.objects or new_id not in desired.objects:
        return None
    return obj


def _rename_relation(rw: _Rewriter, desired: Catalog, kind: str, new_q: str, old: str) -> list[Step]:
    schema, _, name = new_q.partition(".")
    if not name or "(" in new_q:
        return []
    old_schema, old_name = _split_old(old, schema)
    if old_schema != schema and kind not in _SET_SCHEMA_OK:
        return []
    cat = rw.cat
    obj = _pending(cat, desired, node_id(kind, f"{old_schema}.{old_name}"), node_id(kind, new_q))
    if obj is None:
        return []
    keyword = "DOMAIN" if kind == "type" and obj.attrs.get("typtype") == "d" else _ALTER_KEYWORD[kind]
    hazard = _hazard(kind, obj.key, new_q)
    steps: list[Step] = []
    ref = qname(old_schema, old_name)
    if old_schema != schema:
        steps.append(step(obj, "rename", f"ALTER {keyword} {ref} SET SCHEMA {ident(schema)}", hazard))
        ref = qname(schema, old_name)
    if old_name != name:
        steps.append(step(obj, "rename", f"ALTER {keyword} {ref} RENAME TO {ident(name)}", hazard))
    old_key = obj.key
    ids = {obj.id: (new_q, name)}
    if kind == "table":
        rw.pairs.append((new_q, old_name, name))
    if kind == "sequence" and node_id("seqowner", old_key) in cat.objects:
        ids[node_id("seqowner", old_key)] = (new_q, name)
    if kind == "table":  # children are keyed under the table
        for o in cat.objects.values():
            if o.parent == obj.id and o.key.startswith(old_key + "."):
                ids[o.id] = (new_q + o.key[len(old_key):], o.name)
    if kind == "index":
        pattern = re.compile(r"^(CREATE (?:UNIQUE )?INDEX )" + re.escape(render_ident(old_name)) + " ON ")
        obj.attrs["definition"] = pattern.sub(lambda m: m.group(1) + render_ident(name) + " ON ",
                                              obj.attrs["definition"])
    rw.rekey(ids)
    rw.dotted(old_key, new_q)
    old_r, new_r = _rendered(old_schema, old_name), _rendered(schema, name)
    tok = _token_re(old_r)
    rw.text(lambda s: tok.sub(new_r, s), keys=kind == "type")
    rw.regclass(old_r, new_r)
    if kind in ("table", "type"):  # the array type follows the type's name
        arr_old, arr_new = _rendered(old_schema, "_" + old_name), _rendered(schema, "_" + name)
        arr = _token_re(arr_old)
        rw.text(lambda s: arr.sub(arr_new, s), keys=True)
    return steps


def _table_family(cat: Catalog, table_key: str) -> list[str]:
    """The table and every partition/child that inherits its columns, recursively (keys)."""
    out, work = [table_key], [table_key]
    while work:
        parent = work.pop()
        for t in cat.of_kind("table"):
            inherits = t.attrs.get("partition_of") == parent or parent in (t.attrs.get("inherits") or [])
            if inherits and t.key not in out:
                out.append(t.key)
                work.append(t.key)
    return out


def _rename_column(rw: _Rewriter, desired: Catalog, new_q: str, old: str) -> list[Step]:
    table_key, _, name = new_q.rpartition(".")
    cat = rw.cat
    col = _pending(cat, desired, node_id("column", f"{table_key}.{old}"), node_id("column", new_q))
    if col is None or col.attrs.get("from_parent"):
        return []
    schema, _, tname = table_key.partition(".")
    steps = [step(col, "rename", f"ALTER TABLE {qname(schema, tname)} RENAME COLUMN {ident(old)} TO {ident(name)}",
                  _hazard("column", col.key, new_q))]
    family = _table_family(cat, table_key)
    rw.pairs.append((table_key, old, name))
    ids: dict[str, tuple[str, str]] = {}
    for t in family:
        cid = node_id("column", f"{t}.{old}")
        if cid in cat.objects and (t == table_key or cat.objects[cid].attrs.get("from_parent")):
            ids[cid] = (f"{t}.{name}", name)
    rw.rekey(ids)
    for t in family:
        rw.dotted(f"{t}.{old}", f"{t}.{name}")
    tok = _token_re(render_ident(old))
    local = {node_id("table", t) for t in family}

    def on_table(o: DbObject) -> bool:
        return o.parent in local or o.id in local

    def fix(s: str) -> str:
        if " REFERENCES " in s:  # foreign key: the local column list only
            head, _, tail = s.partition(" REFERENCES ")
            return tok.sub(render_ident(name), head) + " REFERENCES " + tail
        return tok.sub(render_ident(name), s)

    rw.text(fix, only=on_table, attrs={"definition", "default", "generated", "qual", "with_check", "partkey"})
    referenced = [_rendered(*t.split(".", 1)) for t in family]

    def fix_reference(s: str) -> str:  # columns referenced by foreign keys (on any table)
        for r in referenced:
            marker = f" REFERENCES {r}("
            if marker in s:
                head, _, tail = s.partition(marker)
                cols, close, rest = tail.partition(")")
                s = head + marker + tok.sub(render_ident(name), cols) + close + rest
        return s

    rw.text(fix_reference, only=lambda o: o.kind == "fkey", attrs={"definition"})
    return steps


def _rename_constraint(rw: _Rewriter, desired: Catalog, new_q: str, old: str) -> list[Step]:
    table_key, _, name = new_q.rpartition(".")
    cat = rw.cat
    for kind in ("constraint", "fkey"):
        con = _pending(cat, desired, node_id(kind, f"{table_key}.{old}"), node_id(kind, new_q))
        if con is not None:
            break
    else:
        return []
    schema, _, tname = table_key.partition(".")
    steps = [step(con, "rename", f"ALTER TABLE {qname(schema, tname)} RENAME CONSTRAINT {ident(old)} TO "
                  f"{ident(name)}", _hazard("constraint", con.key, new_q))]
    rw.rekey({con.id: (new_q, name)})
    rw.dotted(f"{table_key}.{old}", new_q)
    if con.attrs.get("contype") in ("p", "u", "x"):  # its index is renamed with it
        rw.dotted(f"{schema}.{old}", f"{schema}.{name}")
        rw.rekey({node_id("index", f"{schema}.{old}"): (f"{schema}.{name}", name)})
    return steps


def _rename_enum_value(rw: _Rewriter, desired: Catalog, new_q: str, old: str) -> list[Step]:
    keys = [t.key for t in desired.of_kind("type") if new_q.startswith(t.key + ".")]
    if not keys:
        return []
    type_key = max(keys, key=len)
    label = new_q[len(type_key) + 1:]
    typ = rw.cat.get(node_id("type", type_key))
    want = desired.get(node_id("type", type_key))
    if typ is None or want is None or typ.attrs.get("typtype") != "e":
        return []
    labels = typ.attrs.get("labels") or []
    if old not in labels or label in labels or label not in (want.attrs.get("labels") or []):
        return []
    schema, _, tname = type_key.partition(".")
    steps = [step(typ, "rename", f"ALTER TYPE {qname(schema, tname)} RENAME VALUE {literal(old)} TO {literal(label)}",
                  _hazard("enum value", f"{type_key}.{old}", label))]
    typ.attrs["labels"] = [label if x == old else x for x in labels]
    cast = re.compile(re.escape(literal(old)) + r"(::" + re.escape(_rendered(schema, tname)) + r"(?![\w$\"]))")
    for o in rw.cat.objects.values():  # literals cast to the type: defaults, checks, view and index predicates
        for a, v in list(o.attrs.items()):
            if a not in _PLAIN_ATTRS and isinstance(v, str) and literal(old) in v:
                o.attrs[a] = cast.sub(lambda m: literal(label) + m.group(1), v)
    return steps


_ENUM_RE = re.compile(r"^\s*CREATE\s+TYPE\s+((?:\"(?:[^\"]|\"\")+\"|[\w$]+)(?:\s*\.\s*(?:\"(?:[^\"]|\"\")+\"|[\w$]+))?)"
                      r"\s+AS\s+ENUM\s*\((.*)\)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_LABEL_RE = re.compile(r"'((?:[^']|'')*)'")
_VALUE_RENAME_RE = re.compile(r"schema-pipeline:\s*renamed\s+from\s+(?:'((?:[^']|'')*)'|(\S+))", re.IGNORECASE)


def _unquote(part: str) -> str:
    part = part.strip()
    return part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()


def enum_value_renames(statements: Any, desired: Catalog) -> dict[tuple[str, str], str]:
    """`'new' -- schema-pipeline: renamed from old` on an enum label (trailing, or on the line above it).

    Keys are ("enum_value", "schema.type.new label"); the type is resolved in the desired catalog.
    """
    out: dict[tuple[str, str], str] = {}
    for st in statements:
        if "renamed" not in st.sql or not st.sql.lstrip().upper().startswith("CREATE TYPE"):
            continue
        m = _ENUM_RE.match(st.sql)
        if m is None:
            continue
        parts = [_unquote(p) for p in re.findall(r'"(?:[^"]|"")+"|[\w$]+', m.group(1))]
        types = [t for t in desired.of_kind("type") if t.attrs.get("typtype") == "e" and t.name == parts[-1]
                 and (len(parts) == 1 or t.schema == parts[0])]
        pending: str | None = None
        for line in m.group(2).split("\n"):
            code, _, comment = line.partition("--")
            labels = [x.replace("''", "'") for x in _LABEL_RE.findall(code)]
            d = _VALUE_RENAME_RE.search(comment)
            old = (d.group(1).replace("''", "'") if d.group(1) is not None else d.group(2).rstrip(",")) if d else None
            if labels:
                old = old or pending
                pending = None
                matches = [t for t in types if labels[0] in (t.attrs.get("labels") or [])]
                if old and len(matches) == 1:
                    out[("enum_value", f"{matches[0].key}.{labels[0]}")] = old
            elif old:
                pending = old
    return out
