"""SQL for publications (database-wide; the table list, options, owner and comment change in place).

Dropping a publication, for good or to recreate it (FOR ALL TABLES cannot change in place, or an object
it depends on is recreated), is a CORRECTNESS hazard: subscriptions name publications, so their
replication of it stops or must be refreshed.
"""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, literal
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Hazard, HazardType, Step, comment_steps, hz, owner_steps, step


def _objects(a: dict) -> str:
    """The `TABLE ..., TABLES IN SCHEMA ...` list of a publication ("" when it publishes nothing)."""
    return ", ".join([f"TABLE {t}" for t in a.get("tables") or []]
                     + [f"TABLES IN SCHEMA {ident(s)}" for s in a.get("schemas") or []])


def _drop_hazard(obj: DbObject, ctx: DiffContext) -> Hazard:
    """What dropping `obj` means to its subscribers: recreated (drop + create) or gone for good."""
    if obj.id in ctx.recreated:
        return hz(HazardType.CORRECTNESS,
                  f"recreates publication {obj.name} (drop + create): subscribers must refresh "
                  "(ALTER SUBSCRIPTION ... REFRESH PUBLICATION)")
    return hz(HazardType.CORRECTNESS,
              f"drops publication {obj.name}: subscriptions that use it stop receiving its changes")


def _options(a: dict) -> str:
    return (f"publish = {literal(a.get('publish') or '')}, "
            f"publish_via_partition_root = {'true' if a.get('via_root') else 'false'}")


class PublicationGenerator(Generator):
    kind = "publication"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        what = " FOR ALL TABLES" if a.get("all_tables") else (f" FOR {_objects(a)}" if _objects(a) else "")
        steps = [step(obj, "create", f"CREATE PUBLICATION {ident(obj.name)}{what} WITH ({_options(a)})")]
        return steps + self._extras(None, obj)

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP PUBLICATION IF EXISTS {ident(obj.name)}", _drop_hazard(obj, ctx))]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        o, a = old.attrs, new.attrs
        if o.get("all_tables") != a.get("all_tables"):
            return None  # FOR ALL TABLES cannot be added or removed in place
        ref = ident(new.name)
        tables: list[Step] = []
        if (o.get("tables"), o.get("schemas")) != (a.get("tables"), a.get("schemas")):
            if _objects(a):
                tables.append(step(new, "alter", f"ALTER PUBLICATION {ref} SET {_objects(a)}"))
            else:
                tables.append(step(new, "alter", f"ALTER PUBLICATION {ref} DROP {_objects(o)}"))
        options: list[Step] = []
        if _options(o) != _options(a):
            options.append(step(new, "alter", f"ALTER PUBLICATION {ref} SET ({_options(a)})"))
        # Row filters on partitioned tables need publish_via_partition_root: turn it on before, off after.
        steps = options + tables if a.get("via_root") else tables + options
        return steps + self._extras(old, new)

    def _extras(self, old: DbObject | None, new: DbObject) -> list[Step]:
        o = old.attrs if old else {}
        ref = f"PUBLICATION {ident(new.name)}"
        return owner_steps(new, ref, o.get("owner"), new.attrs.get("owner")) + \
            comment_steps(new, ref, o.get("comment"), new.attrs.get("comment"))
