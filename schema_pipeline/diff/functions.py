"""SQL for functions and procedures (identity = schema.name(argument types))."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import (
    HazardType,
    Step,
    acl_steps,
    comment_steps,
    create_acl_steps,
    hz,
    owner_steps,
    step,
)


def _keyword(obj: DbObject) -> str:
    return {"p": "PROCEDURE", "a": "AGGREGATE"}.get(obj.attrs.get("prokind", "f"), "FUNCTION")


def _ref(obj: DbObject) -> str:
    args = obj.key[obj.key.index("(") :]
    return f"{qname(obj.schema, obj.name)}{args}"


class FunctionGenerator(Generator):
    kind = "function"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "create", obj.attrs["definition"])] + self._extras(None, obj, ctx)

    def _extras(self, old: DbObject | None, new: DbObject, ctx: DiffContext) -> list[Step]:
        target = f"{_keyword(new)} {_ref(new)}"
        o = old.attrs if old else {}
        steps = comment_steps(new, target, o.get("comment"), new.attrs.get("comment"))
        steps += owner_steps(new, target, o.get("owner"), new.attrs.get("owner"))
        acl_kw = "PROCEDURE" if new.attrs.get("prokind") == "p" else "FUNCTION"
        if old is None:
            steps += create_acl_steps(new, acl_kw, _ref(new), ctx)
        else:
            steps += acl_steps(new, acl_kw, _ref(new), o.get("acl"), new.attrs.get("acl"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP {_keyword(obj)} IF EXISTS {_ref(obj)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        steps: list[Step] = []
        if old.attrs["definition"] != new.attrs["definition"]:
            if new.attrs.get("prokind") == "a":
                return None
            for k in ("prokind", "arguments", "result"):
                if old.attrs.get(k) != new.attrs.get(k):
                    return None
            steps.append(step(new, "replace", new.attrs["definition"],
                              hz(HazardType.HAS_UNTRACKABLE_DEPENDENCIES, f"body of {new.key} changes")))
        return steps + self._extras(old, new, ctx)
