"""SQL for collations."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import literal, qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Step, comment_steps, owner_steps, step


class CollationGenerator(Generator):
    kind = "collation"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        ref = qname(obj.schema, obj.name)
        if a["provider"] == "i":
            opts = f"provider = icu, locale = {literal(a.get('icu_locale') or a.get('lc_collate') or '')}"
        else:
            opts = f"provider = libc, lc_collate = {literal(a['lc_collate'])}, lc_ctype = {literal(a['lc_ctype'])}"
        if not a.get("deterministic", True):
            opts += ", deterministic = false"
        steps = [step(obj, "create", f"CREATE COLLATION {ref} ({opts})")]
        steps += comment_steps(obj, f"COLLATION {ref}", None, a.get("comment"))
        steps += owner_steps(obj, f"COLLATION {ref}", None, a.get("owner"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP COLLATION IF EXISTS {qname(obj.schema, obj.name)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        for k in ("provider", "lc_collate", "lc_ctype", "icu_locale", "deterministic"):
            if old.attrs.get(k) != new.attrs.get(k):
                return None
        ref = qname(new.schema, new.name)
        return comment_steps(new, f"COLLATION {ref}", old.attrs.get("comment"), new.attrs.get("comment")) + \
            owner_steps(new, f"COLLATION {ref}", old.attrs.get("owner"), new.attrs.get("owner"))
