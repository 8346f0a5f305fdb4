"""SQL for extensions (the objects an extension owns are never diffed)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, literal
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import HazardType, Step, comment_steps, hz, step


class ExtensionGenerator(Generator):
    kind = "extension"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        sql = f"CREATE EXTENSION IF NOT EXISTS {ident(obj.name)} WITH SCHEMA {ident(a['schema'])} " \
              f"VERSION {literal(a['version'])}"
        # CREATE EXTENSION gives the extension the comment of the target server's control file; the state's
        # comment (pg_dump writes one for every extension, in the words of the server it dumped) is set after it.
        comment = a.get("comment")
        return [step(obj, "create", sql),
                step(obj, "comment", f"COMMENT ON EXTENSION {ident(obj.name)} IS "
                     f"{'NULL' if comment is None else literal(comment)}")]

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP EXTENSION IF EXISTS {ident(obj.name)}",
                     hz(HazardType.DELETES_DATA, f"drops extension {obj.name} and its objects"))]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        steps: list[Step] = []
        ref = ident(new.name)
        if old.attrs["schema"] != new.attrs["schema"]:
            steps.append(step(new, "alter", f"ALTER EXTENSION {ref} SET SCHEMA {ident(new.attrs['schema'])}"))
        if old.attrs["version"] != new.attrs["version"]:
            steps.append(step(new, "alter", f"ALTER EXTENSION {ref} UPDATE TO {literal(new.attrs['version'])}"))
        steps += comment_steps(new, f"EXTENSION {ref}", old.attrs.get("comment"), new.attrs.get("comment"))
        return steps
