"""SQL for tables: CREATE/DROP TABLE and table-level ALTERs (persistence, partitions, RLS, ...)."""

from __future__ import annotations

import re

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.columns import column_definition, column_setting_steps
from schema_pipeline.diff.common import (
    HazardType,
    Step,
    acl_steps,
    comment_steps,
    create_acl_steps,
    hz,
    ident,
    owner_steps,
    qname,
    step,
)
from schema_pipeline.diff.constraints import inline_in_new_partition


def _qual(dotted: str) -> str:
    schema, _, name = dotted.partition(".")
    return qname(schema, name)


def table_ref(obj: DbObject) -> str:
    return qname(obj.schema, obj.name)


class TableGenerator(Generator):
    kind = "table"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        ref = table_ref(obj)
        unlogged = "UNLOGGED " if a["persistence"] == "u" else ""
        # an inheritance child declares its own columns, also those it merges with a parent's (attislocal)
        cols = [c for c in ctx.desired.children(obj.id, "column") if not c.attrs.get("inherited")]
        inline = [c for c in ctx.desired.children(obj.id, "constraint") if inline_in_new_partition(c, ctx)]
        attach = ""
        if a.get("partition_of") and inline:
            # built standalone with its own keys, then attached: ATTACH adopts them for the parent's indexes
            checks = [k for k in ctx.desired.children(f"table:{a['partition_of']}", "constraint")
                      if k.attrs.get("contype") == "c"]  # ATTACH requires the parent's checks
            body = ",\n    ".join([column_definition(c) for c in ctx.desired.children(obj.id, "column")] +
                                  [f"CONSTRAINT {ident(k.name)} {k.attrs['definition']}" for k in checks + inline])
            sql = f"CREATE {unlogged}TABLE {ref} (\n    {body}\n)"
            attach = f"ALTER TABLE {_qual(a['partition_of'])} ATTACH PARTITION {ref} {a['partbound']}"
        elif a.get("partition_of"):
            sql = f"CREATE {unlogged}TABLE {ref} PARTITION OF {_qual(a['partition_of'])} {a['partbound']}"
        else:
            body = ",\n    ".join(column_definition(c) for c in cols)
            sql = f"CREATE {unlogged}TABLE {ref} (\n    {body}\n)" if body else f"CREATE {unlogged}TABLE {ref} ()"
            if a.get("inherits"):
                sql += " INHERITS (" + ", ".join(_qual(p) for p in a["inherits"]) + ")"
        if a.get("partkey"):
            sql += f" PARTITION BY {a['partkey']}"
        if a.get("options"):
            sql += " WITH (" + ", ".join(a["options"]) + ")"
        steps = [step(obj, "create", sql)]
        if attach:
            steps.append(step(obj, "alter", attach))
        else:
            parents = [a["partition_of"]] if a.get("partition_of") else a.get("inherits") or []
            for c in ctx.desired.children(obj.id, "column"):
                if c.attrs.get("from_parent"):
                    steps += _inherited_column_steps(c, ctx, parents)
        steps += self._extras(obj, None, ctx)
        for k in inline:
            steps += comment_steps(k, f"CONSTRAINT {ident(k.name)} ON {ref}", None, k.attrs.get("comment"))
        for c in ctx.desired.children(obj.id, "column"):
            cref = f"COLUMN {ref}.{ident(c.name)}"
            steps += column_setting_steps(c, None)
            steps += comment_steps(c, cref, None, c.attrs.get("comment"))
            steps += acl_steps(c, "COLUMN", ref, [], c.attrs.get("acl"), column=c.name)
        return steps

    def _extras(self, obj: DbObject, old: DbObject | None, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        o = old.attrs if old else {"rls": False, "force_rls": False, "replident": "d", "owner": None, "comment": None}
        ref = table_ref(obj)
        steps: list[Step] = []
        if a["rls"] != o.get("rls"):
            steps.append(step(obj, "alter", f"ALTER TABLE {ref} {'ENABLE' if a['rls'] else 'DISABLE'} ROW LEVEL SECURITY"))
        if a["force_rls"] != o.get("force_rls"):
            steps.append(step(obj, "alter", f"ALTER TABLE {ref} {'' if a['force_rls'] else 'NO '}FORCE ROW LEVEL SECURITY"))
        if a["replident"] != o.get("replident") and a["replident"] in ("d", "f", "n"):
            ident_sql = {"d": "DEFAULT", "f": "FULL", "n": "NOTHING"}[a["replident"]]
            steps.append(step(obj, "alter", f"ALTER TABLE {ref} REPLICA IDENTITY {ident_sql}"))
        steps += comment_steps(obj, f"TABLE {ref}", o.get("comment"), a.get("comment"))
        steps += owner_steps(obj, f"TABLE {ref}", o.get("owner"), a.get("owner"))
        if old is None:
            steps += create_acl_steps(obj, "TABLE", ref, ctx)
        else:
            acl = acl_steps(obj, "TABLE", ref, o.get("acl"), a.get("acl"))
            steps += acl
            revoked = {s.sql.rsplit(" FROM ", 1)[1].rstrip(";") for s in acl if s.action == "revoke"}
            for grantee in sorted(revoked):  # a table-level REVOKE also removes column privileges
                for c in ctx.desired.children(obj.id, "column"):
                    mine = [x for x in c.attrs.get("acl") or [] if x.rpartition("=")[0] == grantee]
                    old_col = ctx.current.get(c.id)
                    if mine and old_col is not None:
                        steps += acl_steps(c, "COLUMN", ref, [], mine, column=c.name)
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        steps: list[Step] = []
        partitions = ctx.current.of_kind("table") if obj.attrs.get("relkind") == "p" else []
        for part in partitions:
            if part.attrs.get("partition_of") == obj.key and not ctx.gone(part.id):
                steps.append(step(obj, "alter", f"ALTER TABLE {table_ref(obj)} DETACH PARTITION {table_ref(part)}"))
                for idx in ctx.current.children(part.id, "index"):  # clones that DETACH leaves behind
                    if idx.attrs.get("attached_to") and ctx.gone(idx.id):
                        steps.append(step(idx, "drop", f"DROP INDEX IF EXISTS {qname(idx.schema, idx.name)}",
                                          hz(HazardType.INDEX_DROPPED, f"drops index {idx.key}")))
        steps.append(step(obj, "drop", f"DROP TABLE IF EXISTS {table_ref(obj)}",
                          hz(HazardType.DELETES_DATA, f"drops table {obj.key} and its data")))
        return steps

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        a, o = new.attrs, old.attrs
        if a["relkind"] != o["relkind"] or a.get("partkey") != o.get("partkey"):
            return None
        ref = table_ref(new)
        steps: list[Step] = []
        lock = hz(HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK, "partition change locks the parent")
        if o.get("partition_of") != a.get("partition_of") or o.get("partbound") != a.get("partbound"):
            if o.get("partition_of") and not ctx.gone(f"table:{o['partition_of']}"):
                steps.append(step(new, "alter", f"ALTER TABLE {_qual(o['partition_of'])} DETACH PARTITION {ref}", lock))
            if a.get("partition_of"):
                lookalikes = _local_lookalike_indexes(new, ctx)
                steps += [step(i, "drop", f"DROP INDEX {qname(i.schema, i.name)}") for i in lookalikes]
                steps += _precreate_partition_indexes(new, ctx)
                steps.append(step(new, "alter", f"ALTER TABLE {_qual(a['partition_of'])} ATTACH PARTITION {ref} "
                                  f"{a['partbound']}", lock))
                steps += [step(i, "create", i.attrs["definition"], hz(HazardType.INDEX_BUILD, f"rebuilds {i.key}"))
                          for i in lookalikes]
        if a["persistence"] != o["persistence"]:
            hazards = [hz(HazardType.TABLE_REWRITE, "changing persistence rewrites the table")]
            if a["persistence"] == "u":
                hazards.append(hz(HazardType.UNLOGGED_TABLE, f"{new.key} becomes UNLOGGED: its data is not written "
                                  "to the WAL, is emptied after a crash and is not replicated to standbys"))
            steps.append(step(new, "alter", f"ALTER TABLE {ref} SET {'UNLOGGED' if a['persistence'] == 'u' else 'LOGGED'}",
                              *hazards))
        # New parents first: a column the old and the new parent both give stays inherited (not local)
        # when the old parent lets go of it.
        for p in a.get("inherits") or []:
            if p not in (o.get("inherits") or []):
                steps.append(step(new, "alter", f"ALTER TABLE {ref} INHERIT {_qual(p)}"))
        for p in o.get("inherits") or []:
            if p not in (a.get("inherits") or []):
                steps.append(step(new, "alter", f"ALTER TABLE {ref} NO INHERIT {_qual(p)}"))
        if (a.get("options") or []) != (o.get("options") or []):
            removed = [x.split("=", 1)[0] for x in o.get("options") or [] if x not in (a.get("options") or [])]
            if removed:
                steps.append(step(new, "alter", f"ALTER TABLE {ref} RESET ({', '.join(removed)})"))
            if a.get("options"):
                steps.append(step(new, "alter", f"ALTER TABLE {ref} SET ({', '.join(a['options'])})"))
        steps += self._extras(new, old, ctx)
        return steps


def _inherited_column_steps(col: DbObject, ctx: DiffContext, parents: list[str]) -> list[Step]:
    """Defaults and NOT NULL that a new partition or inheritance child sets on a column it gets from a parent
    (other column properties follow the parent; with several parents, the first that has the column)."""
    pcol = next((p for p in (ctx.desired.get(f"column:{parent}.{col.name}") for parent in parents) if p), None)
    if pcol is None:
        return []
    ref = f"ALTER TABLE {table_ref(ctx.desired.objects[col.parent or ''])} ALTER COLUMN {ident(col.name)}"
    steps: list[Step] = []
    if col.attrs.get("notnull") and not pcol.attrs.get("notnull"):
        steps.append(step(col, "alter", f"{ref} SET NOT NULL"))
    if col.attrs.get("default") != pcol.attrs.get("default") and not col.attrs.get("generated"):
        default = col.attrs.get("default")
        steps.append(step(col, "alter", f"{ref} DROP DEFAULT" if default is None else f"{ref} SET DEFAULT {default}"))
    return steps


def _unnamed(definition: str) -> str:
    return re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON ", r"CREATE \1INDEX ON ", definition)


def _local_lookalike_indexes(table: DbObject, ctx: DiffContext) -> list[DbObject]:
    """Indexes that stay local but look like one that ATTACH must adopt: PostgreSQL would adopt the older one
    (the local index), so it is dropped before ATTACH and built again after it."""
    wanted = {_unnamed(i.attrs["definition"]) for i in ctx.desired.children(table.id, "index")
              if i.attrs.get("attached_to") and i.id not in ctx.current.objects}
    out = []
    for i in ctx.current.children(table.id, "index"):
        d = ctx.desired.get(i.id)
        if d is not None and not d.attrs.get("attached_to") and not i.attrs.get("attached_to") \
                and _unnamed(i.attrs["definition"]) in wanted and d.attrs["definition"] == i.attrs["definition"]:
            out.append(d)
    return out


def _precreate_partition_indexes(table: DbObject, ctx: DiffContext) -> list[Step]:
    """Create a partition's missing indexes before ATTACH so PostgreSQL attaches them instead of inventing names."""
    steps: list[Step] = []
    for idx in ctx.desired.children(table.id, "index"):
        if idx.attrs.get("attached_to") and idx.id not in ctx.current.objects:
            definition = re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX IF NOT EXISTS ", idx.attrs["definition"])
            steps.append(step(idx, "create", definition))
    return steps
