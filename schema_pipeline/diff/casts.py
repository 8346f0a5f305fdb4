"""SQL for user-defined casts (database-wide; identity = source and target type; no owner)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Step, comment_steps, step

_CONTEXT = {"a": " AS ASSIGNMENT", "i": " AS IMPLICIT", "e": ""}


class CastGenerator(Generator):
    kind = "cast"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        how = {"f": f"WITH FUNCTION {a['function']}", "b": "WITHOUT FUNCTION", "i": "WITH INOUT"}[a["method"]]
        steps = [step(obj, "create", f"CREATE CAST {obj.key} {how}{_CONTEXT[a['context']]}")]
        return steps + comment_steps(obj, f"CAST {obj.key}", None, a.get("comment"))

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP CAST IF EXISTS {obj.key}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if any(old.attrs.get(k) != new.attrs.get(k) for k in ("method", "function", "context")):
            return None  # PostgreSQL has no ALTER CAST
        return comment_steps(new, f"CAST {new.key}", old.attrs.get("comment"), new.attrs.get("comment"))
