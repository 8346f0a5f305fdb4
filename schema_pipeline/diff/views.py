"""SQL for views and materialized views."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.columns import setting_steps
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


def _body(obj: DbObject) -> str:
    return obj.attrs["definition"].strip().rstrip(";")


def _with(obj: DbObject) -> str:
    opts = obj.attrs.get("options")
    return f" WITH ({', '.join(opts)})" if opts else ""


class ViewGenerator(Generator):
    kind = "view"
    keyword = "VIEW"

    def _create_sql(self, obj: DbObject, replace: bool = False) -> str:
        ref = qname(obj.schema, obj.name)
        return f"CREATE {'OR REPLACE ' if replace else ''}VIEW {ref}{_with(obj)} AS\n{_body(obj)}"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "create", self._create_sql(obj))] + self._extras(None, obj, ctx)

    def _extras(self, old: DbObject | None, new: DbObject, ctx: DiffContext) -> list[Step]:
        ref = qname(new.schema, new.name)
        o = old.attrs if old else {}
        a = new.attrs
        steps = comment_steps(new, f"{self.keyword} {ref}", o.get("comment"), a.get("comment"))
        old_cc = o.get("column_comments") or {}
        for col, text in sorted((a.get("column_comments") or {}).items()):
            steps += comment_steps(new, f"COLUMN {ref}.{ident(col)}", old_cc.get(col), text)
        for col in sorted(set(old_cc) - set(a.get("column_comments") or {})):
            if any(c[0] == col for c in a.get("columns", [])):
                steps += comment_steps(new, f"COLUMN {ref}.{ident(col)}", old_cc[col], None)
        old_cs, new_cs = o.get("column_settings") or {}, a.get("column_settings") or {}
        for col in sorted(set(old_cs) | set(new_cs)):
            if col in new_cs or any(c[0] == col for c in a.get("columns", [])):
                steps += setting_steps(new, ref, col, old_cs.get(col, {}), new_cs.get(col, {}))
        steps += owner_steps(new, f"TABLE {ref}", o.get("owner"), a.get("owner"))
        if old is None:
            steps += create_acl_steps(new, "TABLE", ref, ctx)
        else:
            steps += acl_steps(new, "TABLE", ref, o.get("acl"), a.get("acl"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP {self.keyword} IF EXISTS {qname(obj.schema, obj.name)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        steps: list[Step] = []
        if old.attrs["definition"] != new.attrs["definition"] or old.attrs.get("options") != new.attrs.get("options"):
            oc, nc = old.attrs["columns"], new.attrs["columns"]
            if nc[: len(oc)] != oc or (old.attrs.get("options") or []) != (new.attrs.get("options") or []):
                return None
            steps.append(step(new, "replace", self._create_sql(new, replace=True),
                              hz(HazardType.HAS_UNTRACKABLE_DEPENDENCIES, "view definition changes")))
        return steps + self._extras(old, new, ctx)


class MaterializedViewGenerator(ViewGenerator):
    kind = "matview"
    keyword = "MATERIALIZED VIEW"

    def _create_sql(self, obj: DbObject, replace: bool = False) -> str:
        ref = qname(obj.schema, obj.name)
        data = "" if obj.attrs.get("populated", True) else "\nWITH NO DATA"
        return f"CREATE MATERIALIZED VIEW {ref}{_with(obj)} AS\n{_body(obj)}{data}"

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        for k in ("definition", "options", "populated", "columns"):
            if old.attrs.get(k) != new.attrs.get(k):
                return None
        return self._extras(old, new, ctx)
