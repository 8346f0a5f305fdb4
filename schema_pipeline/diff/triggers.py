"""SQL for triggers (incl. constraint triggers and INSTEAD OF triggers on views)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Step, comment_steps, step

_ENABLED = {"D": "DISABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "O": "ENABLE TRIGGER"}


def _table_ref(obj: DbObject) -> str:
    schema, _, name = (obj.parent or ":").split(":", 1)[1].partition(".")
    return qname(schema, name)


class TriggerGenerator(Generator):
    kind = "trigger"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        return phase == "drop"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        steps = [step(obj, "create", obj.attrs["definition"])]
        steps += self._extras(None, obj)
        return steps

    def _extras(self, old: DbObject | None, new: DbObject) -> list[Step]:
        steps: list[Step] = []
        o = old.attrs if old else {"enabled": "O"}
        if o.get("enabled") != new.attrs.get("enabled"):
            steps.append(step(new, "alter", f"ALTER TABLE {_table_ref(new)} {_ENABLED[new.attrs['enabled']]} "
                              f"{ident(new.name)}"))
        steps += comment_steps(new, f"TRIGGER {ident(new.name)} ON {_table_ref(new)}", o.get("comment"),
                               new.attrs.get("comment"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP TRIGGER IF EXISTS {ident(obj.name)} ON {_table_ref(obj)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if old.attrs["definition"] != new.attrs["definition"]:
            return None
        return self._extras(old, new)
