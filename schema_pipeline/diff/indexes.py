"""SQL for indexes that do not back a constraint."""

from __future__ import annotations

import re

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import (
    HazardType,
    Step,
    cluster_steps,
    comment_steps,
    hz,
    replica_identity_steps,
    step,
)


def _table(obj: DbObject) -> str:
    schema, _, name = (obj.parent or ":").split(":", 1)[1].partition(".")
    return qname(schema, name)


def _on_partitioned_table(obj: DbObject, ctx: DiffContext) -> bool:
    """A partitioned index is INVALID until every partition has one attached (ATTACH repairs it)."""
    table = ctx.current.get(obj.parent or "")
    return bool(table and table.attrs.get("relkind") == "p")


def stattarget_steps(obj: DbObject, index: str, old: dict | None, new: dict | None) -> list[Step]:
    """ALTER INDEX ... ALTER COLUMN n SET STATISTICS where an index column's statistics target changed
    (`old`/`new`: {"1": 3000} by column number; only expression columns have one)."""
    o, n = old or {}, new or {}
    return [step(obj, "alter", f"ALTER INDEX {index} ALTER COLUMN {col} SET STATISTICS {n.get(col, -1)}")
            for col in sorted(set(o) | set(n), key=int) if o.get(col) != n.get(col)]


class IndexGenerator(Generator):
    kind = "index"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        return phase == "drop"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        hazards = [] if ctx.new(obj.parent) else [hz(HazardType.INDEX_BUILD, f"builds index {obj.key}")]
        ref = qname(obj.schema, obj.name)
        definition = obj.attrs["definition"]
        parent_index = obj.attrs.get("attached_to")
        if parent_index:
            # a new partition may already have received this index from its parent
            definition = re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX IF NOT EXISTS ", definition)
        steps = [step(obj, "create", definition, *hazards)]
        if parent_index:
            pschema, _, pname = parent_index.partition(".")
            steps.append(step(obj, "alter", f"ALTER INDEX {qname(pschema, pname)} ATTACH PARTITION {ref}"))
        steps += cluster_steps(obj, _table(obj), obj.name, False, bool(obj.attrs.get("clustered")), ctx)
        steps += comment_steps(obj, f"INDEX {ref}", None, obj.attrs.get("comment"))
        steps += replica_identity_steps(obj, _table(obj), obj.name, False, bool(obj.attrs.get("replica_identity")))
        steps += stattarget_steps(obj, ref, None, obj.attrs.get("stattargets"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        parent_index = obj.attrs.get("attached_to")
        if parent_index and ctx.gone(f"index:{parent_index}"):
            return []  # dropped together with its parent index
        # a partition's constraint attached to this index blocks a plain DROP (and cannot be dropped itself)
        attached = [o for o in ctx.current.objects.values() if o.kind == "constraint"
                    and o.attrs.get("index_attached_to") == obj.key and ctx.gone(o.id)]
        cascade = " CASCADE" if attached else ""
        return [step(obj, "drop", f"DROP INDEX IF EXISTS {qname(obj.schema, obj.name)}{cascade}",
                     hz(HazardType.INDEX_DROPPED, f"drops index {obj.key}"
                        + (f" and the partition constraints attached to it ({', '.join(o.key for o in attached)})"
                           if attached else "")))]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if old.attrs["definition"] != new.attrs["definition"]:
            return None
        if old.attrs.get("invalid") and not new.attrs.get("invalid") and not _on_partitioned_table(old, ctx):
            return None  # an interrupted CREATE INDEX CONCURRENTLY left it INVALID: rebuild it
        if old.attrs.get("attached_to") != new.attrs.get("attached_to"):
            if old.attrs.get("attached_to"):
                table_old, table_new = ctx.current.get(old.parent or ""), ctx.desired.get(new.parent or "")
                detached = table_old and table_new and \
                    table_old.attrs.get("partition_of") != table_new.attrs.get("partition_of")
                if not new.attrs.get("attached_to") and (detached or ctx.gone(f"index:{old.attrs['attached_to']}")):
                    return []  # DETACH (or dropping the parent index) leaves it as a plain index
                return None
            pschema, _, pname = new.attrs["attached_to"].partition(".")
            return [step(new, "alter", f"ALTER INDEX {qname(pschema, pname)} ATTACH PARTITION "
                         f"{qname(new.schema, new.name)}")]
        steps: list[Step] = []
        steps += cluster_steps(new, _table(new), new.name, bool(old.attrs.get("clustered")),
                               bool(new.attrs.get("clustered")), ctx)
        steps += comment_steps(new, f"INDEX {qname(new.schema, new.name)}", old.attrs.get("comment"),
                               new.attrs.get("comment"))
        steps += replica_identity_steps(new, _table(new), new.name, bool(old.attrs.get("replica_identity")),
                                        bool(new.attrs.get("replica_identity")))
        steps += stattarget_steps(new, qname(new.schema, new.name), old.attrs.get("stattargets"),
                                  new.attrs.get("stattargets"))
        return steps
