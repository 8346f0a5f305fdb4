"""Diff two catalogs into ordered steps: decide per object, propagate recreations, order by dependencies."""

from __future__ import annotations

import re

from schema_pipeline.catalog.model import Catalog, DbObject
from schema_pipeline.catalog.names import ident, qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import step
from schema_pipeline.diff.graph import Node, order
from schema_pipeline.diff.owners import drop_redundant_owner_steps, unspecified_owners
from schema_pipeline.diff.registry import GENERATORS
from schema_pipeline.diff.renames import Renames, plan_renames
from schema_pipeline.plan.model import Step

# Kinds that may be dropped and created again when something they depend on changes.
RECREATABLE = {"view", "matview", "index", "constraint", "fkey", "trigger", "policy", "function", "seqowner", "rule",
               "statistics", "event_trigger", "operator", "cast", "publication",
               "ts_configuration"}
# Kinds that break when a column they use changes type (indexes/constraints are rebuilt by PostgreSQL).
TYPE_SENSITIVE = {"view", "matview", "policy", "trigger", "rule", "statistics"}


def _gen(kind: str) -> Generator:
    return GENERATORS[kind]


def _dependents(cat: Catalog) -> dict[str, list[str]]:
    rev: dict[str, list[str]] = {}
    for o in cat.objects.values():
        for d in o.deps:
            rev.setdefault(d, []).append(o.id)
    return rev


def diff_catalogs(current: Catalog, desired: Catalog, renames: Renames | None = None, *,
                  owners: str = "all") -> list[Step]:
    """Ordered steps whose execution transforms `current` into `desired` (empty when converged).

    `renames` are the state's declared renames ({(kind, qualified new name): old name}); pending ones
    become `ALTER ... RENAME` steps that run first, instead of a drop and a create. Entries of kind "using"
    are declared conversions ({("using", "schema.table.column"): expression}) for type changes. `owners` is
    the ownership mode for objects whose owner the state does not set (diff/owners.py).
    """
    conversions = {name: expr for (kind, name), expr in (renames or {}).items() if kind == "using"}
    if conversions:
        renames = {key: old for key, old in renames.items() if key[0] != "using"}
    current, rename_steps = plan_renames(current, desired, renames)
    desired = unspecified_owners(current, desired, owners)
    return drop_redundant_owner_steps(rename_steps + _diff(current, desired, conversions), desired,
                                      current.role or desired.role)


def _diff(current: Catalog, desired: Catalog, conversions: dict[str, str] | None = None) -> list[Step]:
    ctx = DiffContext(current, desired, conversions=conversions or {})
    cur, des = current.objects, desired.objects
    ctx.dropped = {k for k in cur if k not in des}
    ctx.created = {k for k in des if k not in cur}
    alters: dict[str, list[Step]] = {}
    for k in sorted(set(cur) & set(des)):
        old, new = cur[k], des[k]
        if _same_ignoring_position(old, new):
            continue
        steps = _gen(old.kind).alter(old, new, ctx)
        if steps is None:
            ctx.recreated.add(k)
        elif steps:
            alters[k] = steps
    _propagate(ctx, alters)

    nodes: list[Node] = []
    drop_node: dict[str, int] = {}
    create_node: dict[str, int] = {}

    def add(node: Node) -> int:
        nodes.append(node)
        return len(nodes) - 1

    # Drops, with children absorbed by their parent's DROP aliased to the parent's node.
    for k in sorted(ctx.dropped | ctx.recreated, key=lambda k: (cur[k].parent is not None, k)):
        o = cur[k]
        if o.parent and ctx.gone(o.parent) and o.parent in drop_node and _gen(o.kind).absorbed_by_parent(o, ctx, "drop"):
            drop_node[k] = drop_node[o.parent]
            continue
        drop_node[k] = add(Node(o.kind, k, "drop", _gen(o.kind).drop(o, ctx)))
    for k in sorted(ctx.created | ctx.recreated, key=lambda k: (des[k].parent is not None, k)):
        o = des[k]
        if o.parent and ctx.new(o.parent) and o.parent in create_node and _gen(o.kind).absorbed_by_parent(o, ctx, "create"):
            create_node[k] = create_node[o.parent]
            continue
        create_node[k] = add(Node(o.kind, k, "create", _gen(o.kind).create(o, ctx)))
    resets = _default_resets(ctx)
    for k, (drop_steps, set_steps) in resets.items():
        drop_node[k] = add(Node("column", k, "drop", drop_steps))
        own = [s for s in alters.get(k, []) if s.sql != drop_steps[0].sql]  # the reset has dropped it
        if k not in alters or cur[k].attrs.get("default") == des[k].attrs.get("default"):
            own += set_steps  # else the column's own ALTER sets the new default
        if own:
            alters[k] = own
        else:
            alters.pop(k, None)
    for k, steps in alters.items():
        create_node[k] = add(Node(cur[k].kind, k, "alter", steps))

    edges: set[tuple[int, int]] = set()
    for k, i in drop_node.items():
        for d in cur[k].deps:
            if d in drop_node:
                edges.add((i, drop_node[d]))  # drop dependents before what they depend on
            elif d in alters:
                edges.add((i, create_node[d]))  # drop dependents before altering what they use
        if k in create_node:
            edges.add((i, create_node[k]))
    soft = _function_body_deps(desired)
    for k, i in create_node.items():
        for d in list(des[k].deps) + soft.get(k, []):
            if d in create_node:
                edges.add((create_node[d], i))  # create what is needed first
        if k in alters:
            for d in cur[k].deps:
                if cur[k].kind == "table" and d.startswith("table:") and d in drop_node:
                    edges.add((drop_node[d], i))  # the old parent detaches its partitions when dropped
                elif d in drop_node and d not in create_node and k not in resets:
                    edges.add((i, drop_node[d]))  # stop using something before dropping it
    edges |= _name_edges(cur, des, drop_node, create_node)
    edges |= _default_privilege_edges(des, nodes, create_node)
    edges |= _disinheritance_edges(cur, des, alters, drop_node, create_node)
    ordered = order(nodes, edges)
    return [s for n in ordered for s in n.steps]


_RELATION_KINDS = {"table", "view", "matview", "sequence", "index", "type"}


def _relation_names(o: DbObject) -> list[tuple[str | None, str]]:
    """Names the object takes among the schema's relations and types (pg_class / pg_type)."""
    names: list[tuple[str | None, str]] = []
    if o.kind in _RELATION_KINDS or (o.kind == "constraint" and o.attrs.get("contype") in ("p", "u", "x")):
        names.append((o.schema, o.name))
    if o.kind == "column" and o.attrs.get("identity") and o.attrs.get("identity_seq_name"):
        schema, _, name = o.attrs["identity_seq_name"].rpartition(".")
        names.append((schema.strip('"'), name.strip('"')))
    return names


def _name_edges(cur: dict[str, DbObject], des: dict[str, DbObject], drop_node: dict[str, int],
                create_node: dict[str, int]) -> set[tuple[int, int]]:
    """A name freed by a drop is freed before a create or alter takes it (a serial's sequence dropped
    where an identity column's sequence of the same name is created, an index replaced by a table, ...)."""
    freed: dict[tuple[str | None, str], int] = {}
    for k, i in drop_node.items():
        if cur[k].kind != "column":
            for name in _relation_names(cur[k]):
                freed[name] = i
    edges: set[tuple[int, int]] = set()
    if freed:
        for k, i in create_node.items():
            for name in _relation_names(des[k]):
                j = freed.get(name)
                if j is not None and j != i:
                    edges.add((j, i))
    return edges


def _disinheritance_edges(cur: dict[str, DbObject], des: dict[str, DbObject], alters: dict[str, list[Step]],
                          drop_node: dict[str, int], create_node: dict[str, int]) -> set[tuple[int, int]]:
    """A table that stops inheriting from a parent does so before the parent drops columns: dropping a
    parent's column drops it from every child that only inherits it."""
    edges: set[tuple[int, int]] = set()
    for k in alters:
        if cur[k].kind != "table":
            continue
        for parent in set(cur[k].attrs.get("inherits") or []) - set(des[k].attrs.get("inherits") or []):
            if f"table:{parent}" in drop_node:  # the parent goes as a whole (see the edges of table alters)
                continue
            prefix = f"column:{parent}."
            edges |= {(create_node[k], i) for c, i in drop_node.items() if c.startswith(prefix)}
    return edges


_DEFACL_OBJTYPE = {"table": "r", "view": "r", "matview": "r", "sequence": "S", "function": "f", "type": "T",
                   "schema": "n"}


def _default_privilege_edges(des: dict[str, DbObject], nodes: list[Node],
                             create_node: dict[str, int]) -> set[tuple[int, int]]:
    """Default privileges are changed before the objects they apply to are created (see creation_acl)."""
    defacls = [(des[k], i) for k, i in create_node.items() if des[k].kind == "defacl"]
    edges: set[tuple[int, int]] = set()
    for k, j in create_node.items() if defacls else ():
        o = des[k]
        code = _DEFACL_OBJTYPE.get(o.kind)
        if code is None or nodes[j].phase != "create" or nodes[j].key != k:
            continue
        for d, i in defacls:
            if d.attrs["objtype"] == code and d.schema in (None, o.schema):
                edges.add((i, j))
    return edges


def _function_body_deps(cat: Catalog) -> dict[str, list[str]]:
    """Functions whose bodies call other catalog functions by name (bodies are not in pg_depend)."""
    funcs = [o for o in cat.objects.values() if o.kind == "function"]
    by_name: dict[str, list[str]] = {}
    for f in funcs:
        by_name.setdefault(f.name.lower(), []).append(f.id)
    out: dict[str, list[str]] = {}
    for f in funcs:
        body = f.attrs.get("definition", "").lower()
        start = body.find("\nas ")
        if start < 0:
            continue  # SQL-standard bodies are tracked in pg_depend
        called = {a or b for a, b in _CALL.findall(body[start:])}
        for name in called & by_name.keys():
            out.setdefault(f.id, []).extend(i for i in by_name[name] if i != f.id)
    return out


_CALL = re.compile(r'"([^"]+)"\s*\(|([a-z_][\w$]*)\s*\(')


def _default_resets(ctx: DiffContext) -> dict[str, tuple[list[Step], list[Step]]]:
    """Columns whose DEFAULT uses a function or sequence that is dropped: drop the default first, set it after."""
    out: dict[str, tuple[list[Step], list[Step]]] = {}
    gone = {k for k in ctx.dropped | ctx.recreated if k.startswith(("function:", "sequence:"))}
    if not gone:
        return out
    for k, o in ctx.current.objects.items():
        if o.kind != "column" or ctx.gone(k) or ctx.gone(o.parent) or k not in ctx.desired.objects:
            continue
        if o.attrs.get("default") is None or o.attrs.get("generated"):
            continue
        if gone.isdisjoint(o.deps):
            continue
        new = ctx.desired.objects[k]
        table = (o.parent or ":").split(":", 1)[1]
        schema, _, name = table.partition(".")
        col = f"ALTER TABLE {qname(schema, name)} ALTER COLUMN {ident(o.name)}"
        sets = [step(new, "alter", f"{col} SET DEFAULT {new.attrs['default']}")] if new.attrs.get("default") else []
        out[k] = ([step(o, "alter", f"{col} DROP DEFAULT")], sets)
    return out


def _same_ignoring_position(old: DbObject, new: DbObject) -> bool:
    if old.parent != new.parent:
        return False
    if old.attrs == new.attrs:  # nearly every object: no copies
        return True
    a = {k: v for k, v in old.attrs.items() if k != "position"}
    b = {k: v for k, v in new.attrs.items() if k != "position"}
    return a == b


def _propagate(ctx: DiffContext, alters: dict[str, list[Step]]) -> None:
    """Recreate exactly the dependents that a drop, recreate or column type change requires."""
    rev = _dependents(ctx.current)
    cur = ctx.current.objects
    changed = True
    while changed:  # partitions of a dropped/recreated table go with it
        changed = False
        for t in [o for o in cur.values() if o.kind == "table" and o.attrs.get("partition_of")]:
            parent = f"table:{t.attrs['partition_of']}"
            if ctx.gone(parent) and not ctx.gone(t.id):
                d = ctx.desired.get(t.id)
                if d is not None and d.attrs.get("partition_of") == t.attrs["partition_of"]:
                    ctx.recreated.add(t.id)
                    alters.pop(t.id, None)
                    changed = True
    for k in list(ctx.recreated):
        if ctx.current.objects[k].kind == "table":
            for child in ctx.current.objects.values():
                if child.parent == k and child.id in ctx.desired.objects:
                    ctx.recreated.add(child.id)
                    alters.pop(child.id, None)
    work = list(ctx.dropped | ctx.recreated)
    retyped_keys: dict[str, int] = {}
    for k in ctx.invalidated:
        for dep in rev.get(k, []):
            o = ctx.current.objects[dep]
            if o.kind == "fkey":
                retyped_keys[dep] = retyped_keys.get(dep, 0) + 1
            if o.kind in TYPE_SENSITIVE and dep in ctx.desired.objects and not ctx.gone(dep):
                ctx.recreated.add(dep)
                alters.pop(dep, None)
                work.append(dep)
    # A foreign key with columns on both sides changing type would pass through a state where they are
    # incompatible (PostgreSQL re-checks the key after each ALTER COLUMN TYPE): drop it before, add it after.
    for dep, n in retyped_keys.items():
        if n >= 2 and dep in ctx.desired.objects and not ctx.gone(dep):
            ctx.recreated.add(dep)
            alters.pop(dep, None)
            work.append(dep)
    while work:
        k = work.pop()
        for dep in rev.get(k, []):
            if ctx.gone(dep) or dep not in ctx.desired.objects:
                continue
            o = ctx.current.objects[dep]
            if o.kind not in RECREATABLE:
                continue
            if o.attrs.get("inherited_from") and k.split(":", 1)[1] == o.attrs["inherited_from"]:
                continue  # partition clones follow their parent constraint by themselves
            ctx.recreated.add(dep)
            alters.pop(dep, None)
            work.append(dep)
