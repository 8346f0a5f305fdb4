"""SQL for functions and procedures (identity = schema.name(argument types))."""

from __future__ import annotations

from dataclasses import replace

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
from schema_pipeline.diff.function_safety import unsafe_function_reason


def _keyword(obj: DbObject) -> str:
    return {"p": "PROCEDURE", "a": "AGGREGATE"}.get(obj.attrs.get("prokind", "f"), "FUNCTION")


def _ref(obj: DbObject) -> str:
    args = obj.key[obj.key.index("(") :]
    return f"{qname(obj.schema, obj.name)}{args}"


class FunctionGenerator(Generator):
    kind = "function"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "create", obj.attrs["definition"], *_unsafe(obj))] + self._extras(None, obj, ctx)

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
                              hz(HazardType.HAS_UNTRACKABLE_DEPENDENCIES, f"body of {new.key} changes"),
                              *_unsafe(new)))
            return steps + self._extras(old, new, ctx)
        extras = self._extras(old, new, ctx)
        unsafe = _unsafe(new)
        if unsafe and unsafe_function_reason(old) is None:
            # the same body made executable by PUBLIC: the GRANT is what makes it unsafe
            extras = [replace(s, hazards=s.hazards + unsafe) if s.action == "grant" and " TO PUBLIC" in s.sql
                      else s for s in extras]
        return steps + extras


def _unsafe(obj: DbObject) -> list:
    """The UNSAFE_FUNCTION hazard of a function that escapes SQL privileges (diff/function_safety.py)."""
    why = unsafe_function_reason(obj)
    return [hz(HazardType.UNSAFE_FUNCTION, why)] if why else []
