"""SQL for table constraints: primary key, unique, check, exclusion and foreign keys."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, qname
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
from schema_pipeline.diff.indexes import stattarget_steps


def _table_ref(obj: DbObject) -> str:
    schema, _, name = (obj.parent or ":").split(":", 1)[1].partition(".")
    return qname(schema, name)


def _attach_steps(obj: DbObject) -> list[Step]:
    """Attach the constraint's index to its partitioned parent index."""
    parent_index = obj.attrs.get("index_attached_to")
    if not parent_index:
        return []
    schema, _, name = parent_index.partition(".")
    return [step(obj, "alter", f"ALTER INDEX {qname(schema, name)} ATTACH PARTITION {qname(obj.schema, obj.name)}")]


def _index_steps(obj: DbObject, old: dict, new: dict, ctx: DiffContext) -> list[Step]:
    """What is set on the index of a primary key, unique or exclusion constraint: CLUSTER ON, its comment and
    the statistics targets of its expression columns."""
    steps = cluster_steps(obj, _table_ref(obj), obj.name, bool(old.get("clustered")), bool(new.get("clustered")), ctx)
    steps += comment_steps(obj, f"INDEX {qname(obj.schema, obj.name)}", old.get("index_comment"),
                           new.get("index_comment"))
    steps += stattarget_steps(obj, qname(obj.schema, obj.name), old.get("index_stattargets"),
                              new.get("index_stattargets"))
    return steps


def inline_in_new_partition(obj: DbObject, ctx: DiffContext) -> bool:
    """A new partition's own primary key / unique constraint that backs a partition of a parent index: it is
    declared in CREATE TABLE ... PARTITION OF, so PostgreSQL attaches it instead of building an index of its own."""
    if obj.kind != "constraint" or obj.attrs.get("contype") not in ("p", "u") or obj.attrs.get("inherited_from"):
        return False
    table = ctx.desired.get(obj.parent or "")
    return bool(obj.attrs.get("index_attached_to") and table and table.attrs.get("partition_of")
                and ctx.new(table.id))


class ConstraintGenerator(Generator):
    kind = "constraint"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        return phase == "drop" or inline_in_new_partition(obj, ctx)

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        parent_con = obj.attrs.get("inherited_from")
        if parent_con and (self._auto_cloned(obj, ctx) or obj.attrs["contype"] not in ("p", "u", "x")):
            return []  # PostgreSQL clones it onto the partition
        ref = _table_ref(obj)
        definition = obj.attrs["definition"]
        hazards = []
        if not ctx.new(obj.parent):
            if obj.attrs["contype"] in ("p", "u", "x"):
                hazards.append(hz(HazardType.INDEX_BUILD, f"builds the index of {obj.key}"))
            if not definition.endswith("NOT VALID"):
                hazards.append(hz(HazardType.VALIDATES_CONSTRAINT, f"validates {obj.key} against existing rows"))
            hazards.append(hz(HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK, f"adding {obj.key} locks the table"))
        steps = [step(obj, "create", f"ALTER TABLE {ref} ADD CONSTRAINT {ident(obj.name)} {definition}", *hazards)]
        steps += _attach_steps(obj)
        if parent_con:
            schema, table_and_name = parent_con.split(".", 1)
            parent_index = qname(schema, table_and_name.split(".", 1)[1])
            steps.append(step(obj, "alter", f"ALTER INDEX {parent_index} ATTACH PARTITION {qname(obj.schema, obj.name)}"))
        steps += replica_identity_steps(obj, ref, obj.name, False, bool(obj.attrs.get("replica_identity")))
        steps += comment_steps(obj, f"CONSTRAINT {ident(obj.name)} ON {ref}", None, obj.attrs.get("comment"))
        steps += _index_steps(obj, {}, obj.attrs, ctx)
        return steps

    @staticmethod
    def _auto_cloned(obj: DbObject, ctx: DiffContext) -> bool:
        """True when creating the parent constraint or attaching the partition creates this clone."""
        parent_kind = "fkey" if obj.kind == "fkey" else "constraint"
        if ctx.new(f"{parent_kind}:{obj.attrs['inherited_from']}") or ctx.new(obj.parent):
            return True
        old_table, new_table = ctx.current.get(obj.parent or ""), ctx.desired.get(obj.parent or "")
        return bool(old_table and new_table and old_table.attrs.get("partition_of") != new_table.attrs.get("partition_of"))

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        if obj.attrs.get("inherited_from"):
            return []  # goes with its parent constraint (or becomes local on DETACH)
        if obj.attrs.get("index_attached_to") and ctx.gone(f"index:{obj.attrs['index_attached_to']}"):
            return []  # attached to a parent index that is dropped (with CASCADE, the only way)
        hazards = [hz(HazardType.INDEX_DROPPED, f"drops the index of {obj.key}")] if obj.attrs["contype"] in "pux" else []
        return [step(obj, "drop", f"ALTER TABLE IF EXISTS {_table_ref(obj)} DROP CONSTRAINT IF EXISTS {ident(obj.name)}",
                     *hazards)]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        od, nd = old.attrs["definition"], new.attrs["definition"]
        ref = _table_ref(new)
        steps: list[Step] = []
        if old.attrs.get("inherited_from") or new.attrs.get("inherited_from"):
            return [] if od == nd else None  # clones follow their parent; DETACH/ATTACH convert them
        if old.attrs.get("index_attached_to") != new.attrs.get("index_attached_to"):
            if old.attrs.get("index_attached_to"):
                return None
            steps += _attach_steps(new)
        if od != nd:
            if od == nd + " NOT VALID":
                steps.append(step(new, "alter", f"ALTER TABLE {ref} VALIDATE CONSTRAINT {ident(new.name)}",
                                  hz(HazardType.VALIDATES_CONSTRAINT, f"validates {new.key}")))
            else:
                return None
        steps += comment_steps(new, f"CONSTRAINT {ident(new.name)} ON {ref}", old.attrs.get("comment"),
                               new.attrs.get("comment"))
        steps += replica_identity_steps(new, ref, new.name, bool(old.attrs.get("replica_identity")),
                                        bool(new.attrs.get("replica_identity")))
        steps += _index_steps(new, old.attrs, new.attrs, ctx)
        return steps


class ForeignKeyGenerator(ConstraintGenerator):
    kind = "fkey"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        """Absorbed by DROP TABLE unless it references another table that is dropped too (FK cycles)."""
        if phase != "drop":
            return False
        for d in obj.deps:
            dep = ctx.current.get(d)
            owner = (dep.parent if dep and dep.parent else d) if dep else d
            if owner != obj.parent and owner.startswith("table:") and ctx.gone(owner):
                return False
        return True
