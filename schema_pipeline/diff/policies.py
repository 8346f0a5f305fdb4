"""SQL for row-level security policies."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import HazardType, Step, comment_steps, hz, step

_CMD = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def _table_ref(obj: DbObject) -> str:
    schema, _, name = (obj.parent or ":").split(":", 1)[1].partition(".")
    return qname(schema, name)


class PolicyGenerator(Generator):
    kind = "policy"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        return phase == "drop"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        sql = f"CREATE POLICY {ident(obj.name)} ON {_table_ref(obj)}"
        if not a["permissive"]:
            sql += " AS RESTRICTIVE"
        sql += f" FOR {_CMD[a['cmd']]} TO {', '.join(a['roles'] or ['PUBLIC'])}"
        if a.get("qual"):
            sql += f" USING ({a['qual']})"
        if a.get("with_check"):
            sql += f" WITH CHECK ({a['with_check']})"
        steps = [step(obj, "create", sql, hz(HazardType.AUTHZ_UPDATE, f"row-level security policy {obj.key}"))]
        steps += comment_steps(obj, f"POLICY {ident(obj.name)} ON {_table_ref(obj)}", None, a.get("comment"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP POLICY IF EXISTS {ident(obj.name)} ON {_table_ref(obj)}",
                     hz(HazardType.AUTHZ_UPDATE, f"drops policy {obj.key}"))]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        for k in ("cmd", "permissive", "roles", "qual", "with_check"):
            if old.attrs.get(k) != new.attrs.get(k):
                return None
        return comment_steps(new, f"POLICY {ident(new.name)} ON {_table_ref(new)}", old.attrs.get("comment"),
                             new.attrs.get("comment"))
