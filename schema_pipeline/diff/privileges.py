"""SQL for default privileges (ALTER DEFAULT PRIVILEGES)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import HazardType, Step, default_acl, hz, step

_OBJTYPE = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


def _by_grantee(acl: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in acl:
        grantee, _, priv = item.rpartition("=")
        out.setdefault(grantee, set()).add(priv.rstrip("*"))
    return out


class DefaultPrivilegeGenerator(Generator):
    kind = "defacl"

    def _prefix(self, obj: DbObject) -> str:
        sql = f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(obj.attrs['role'])}"
        if obj.schema:
            sql += f" IN SCHEMA {ident(obj.schema)}"
        return sql

    def _change(self, obj: DbObject, old: list[str], new: list[str]) -> list[Step]:
        og, ng = _by_grantee(old), _by_grantee(new)
        steps: list[Step] = []
        what = _OBJTYPE.get(obj.attrs["objtype"], "TABLES")
        hazard = hz(HazardType.AUTHZ_UPDATE, "default privileges change")
        for g in sorted(set(og) | set(ng)):
            if og.get(g) == ng.get(g):
                continue
            if g in og:
                steps.append(step(obj, "revoke", f"{self._prefix(obj)} REVOKE ALL ON {what} FROM {g}", hazard))
            if g in ng:
                steps.append(step(obj, "grant", f"{self._prefix(obj)} GRANT {', '.join(sorted(ng[g]))} ON {what} TO {g}",
                                  hazard))
        return steps

    def _baseline(self, obj: DbObject) -> list[str]:
        """What PostgreSQL assumes without an entry: built-in defaults globally, nothing extra per schema."""
        if obj.schema:
            return []
        objtype = {"r": "TABLE", "S": "SEQUENCE", "f": "FUNCTION", "T": "TYPE", "n": "SCHEMA"}.get(
            obj.attrs["objtype"], "TABLE")
        return default_acl(objtype, obj.attrs["role"])

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return self._change(obj, self._baseline(obj), obj.attrs["acl"])

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return self._change(obj, obj.attrs["acl"], self._baseline(obj))

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        return self._change(new, old.attrs["acl"], new.attrs["acl"])
