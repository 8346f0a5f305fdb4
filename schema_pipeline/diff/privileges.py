"""SQL for default privileges (ALTER DEFAULT PRIVILEGES)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import HazardType, Step, default_acl, hz, regrant_steps

_OBJTYPE = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


class DefaultPrivilegeGenerator(Generator):
    kind = "defacl"

    def _prefix(self, obj: DbObject) -> str:
        sql = f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(obj.attrs['role'])}"
        if obj.schema:
            sql += f" IN SCHEMA {ident(obj.schema)}"
        return sql

    def _change(self, obj: DbObject, old: list[str], new: list[str]) -> list[Step]:
        what = _OBJTYPE.get(obj.attrs["objtype"], "TABLES")
        prefix = self._prefix(obj)
        return regrant_steps(
            obj, old, new, hz(HazardType.AUTHZ_UPDATE, "default privileges change"),
            revoke=lambda grantee: f"{prefix} REVOKE ALL ON {what} FROM {grantee}",
            grant=lambda privileges, grantee: f"{prefix} GRANT {', '.join(privileges)} ON {what} TO {grantee}")

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
