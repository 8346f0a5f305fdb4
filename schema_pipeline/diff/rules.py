"""SQL for rewrite rules (CREATE RULE) and extended statistics (CREATE STATISTICS)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Step, comment_steps, owner_steps, step

_ENABLED = {"D": "DISABLE RULE", "R": "ENABLE REPLICA RULE", "A": "ENABLE ALWAYS RULE", "O": "ENABLE RULE"}


def _table_ref(obj: DbObject) -> str:
    schema, _, name = (obj.parent or ":").split(":", 1)[1].partition(".")
    return qname(schema, name)


class RuleGenerator(Generator):
    kind = "rule"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        return phase == "drop"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "create", obj.attrs["definition"])] + self._extras(None, obj)

    def _extras(self, old: DbObject | None, new: DbObject) -> list[Step]:
        o = old.attrs if old else {"enabled": "O"}
        steps: list[Step] = []
        if o.get("enabled") != new.attrs.get("enabled"):
            steps.append(step(new, "alter", f"ALTER TABLE {_table_ref(new)} {_ENABLED[new.attrs['enabled']]} "
                              f"{ident(new.name)}"))
        steps += comment_steps(new, f"RULE {ident(new.name)} ON {_table_ref(new)}", o.get("comment"),
                               new.attrs.get("comment"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP RULE IF EXISTS {ident(obj.name)} ON {_table_ref(obj)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if old.attrs["definition"] != new.attrs["definition"]:
            return None
        return self._extras(old, new)


class StatisticsGenerator(Generator):
    kind = "statistics"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        return phase == "drop"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        ref = qname(obj.schema, obj.name)
        steps = [step(obj, "create", obj.attrs["definition"])]
        steps += comment_steps(obj, f"STATISTICS {ref}", None, obj.attrs.get("comment"))
        steps += owner_steps(obj, f"STATISTICS {ref}", None, obj.attrs.get("owner"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP STATISTICS IF EXISTS {qname(obj.schema, obj.name)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if old.attrs["definition"] != new.attrs["definition"]:
            return None
        ref = qname(new.schema, new.name)
        return comment_steps(new, f"STATISTICS {ref}", old.attrs.get("comment"), new.attrs.get("comment")) + \
            owner_steps(new, f"STATISTICS {ref}", old.attrs.get("owner"), new.attrs.get("owner"))
