"""SQL for operators (identity = schema.name(left type,right type); shell operators are not modelled)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Step, comment_steps, owner_steps, step


def _ref(obj: DbObject) -> str:
    a = obj.attrs
    return f"{ident(obj.schema or '')}.{obj.name} ({a.get('leftarg') or 'NONE'}, {a.get('rightarg') or 'NONE'})"


def _est(a: dict) -> str:
    return f"RESTRICT = {a.get('restrict') or 'NONE'}, JOIN = {a.get('join') or 'NONE'}"


class OperatorGenerator(Generator):
    kind = "operator"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        opts = [f"FUNCTION = {a['function']}"]
        opts += [f"{k.upper()} = {a[k]}" for k in ("leftarg", "rightarg", "commutator", "negator", "restrict", "join")
                 if a.get(k)]
        opts += [k.upper() for k in ("hashes", "merges") if a.get(k)]
        sql = f"CREATE OPERATOR {ident(obj.schema or '')}.{obj.name} ({', '.join(opts)})"
        return [step(obj, "create", sql)] + self._extras(None, obj)

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP OPERATOR IF EXISTS {_ref(obj)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        o, a = old.attrs, new.attrs
        if any(o.get(k) != a.get(k) for k in ("function", "commutator", "negator", "hashes", "merges")):
            return None  # only RESTRICT and JOIN can change in place (PostgreSQL 15)
        steps = [step(new, "alter", f"ALTER OPERATOR {_ref(new)} SET ({_est(a)})")] if _est(o) != _est(a) else []
        return steps + self._extras(old, new)

    def _extras(self, old: DbObject | None, new: DbObject) -> list[Step]:
        o = old.attrs if old else {}
        ref = f"OPERATOR {_ref(new)}"
        return owner_steps(new, ref, o.get("owner"), new.attrs.get("owner")) + \
            comment_steps(new, ref, o.get("comment"), new.attrs.get("comment"))
