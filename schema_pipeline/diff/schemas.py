"""SQL for schemas."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident
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


class SchemaGenerator(Generator):
    kind = "schema"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        ref = ident(obj.name)
        steps = [step(obj, "create", f"CREATE SCHEMA {ref}")]
        steps += comment_steps(obj, f"SCHEMA {ref}", None, obj.attrs.get("comment"))
        steps += owner_steps(obj, f"SCHEMA {ref}", None, obj.attrs.get("owner"))
        steps += create_acl_steps(obj, "SCHEMA", ref, ctx)
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP SCHEMA IF EXISTS {ident(obj.name)}",
                     hz(HazardType.DELETES_DATA, f"drops schema {obj.name}"))]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        ref = ident(new.name)
        o, a = old.attrs, new.attrs
        steps = comment_steps(new, f"SCHEMA {ref}", o.get("comment"), a.get("comment"))
        steps += owner_steps(new, f"SCHEMA {ref}", o.get("owner"), a.get("owner"))
        steps += acl_steps(new, "SCHEMA", ref, o.get("acl"), a.get("acl"))
        return steps
