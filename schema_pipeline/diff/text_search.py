"""SQL for text search dictionaries and configurations (the configuration's mappings change in place)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Step, comment_steps, owner_steps, step


def _extras(target: str, old: DbObject | None, new: DbObject) -> list[Step]:
    o = old.attrs if old else {}
    return owner_steps(new, target, o.get("owner"), new.attrs.get("owner")) + \
        comment_steps(new, target, o.get("comment"), new.attrs.get("comment"))


class TextSearchDictionaryGenerator(Generator):
    kind = "ts_dictionary"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        options = f", {a['options']}" if a.get("options") else ""
        ref = qname(obj.schema, obj.name)
        steps = [step(obj, "create", f"CREATE TEXT SEARCH DICTIONARY {ref} (TEMPLATE = {a['template']}{options})")]
        return steps + _extras(f"TEXT SEARCH DICTIONARY {ref}", None, obj)

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP TEXT SEARCH DICTIONARY IF EXISTS {qname(obj.schema, obj.name)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if (old.attrs.get("template"), old.attrs.get("options")) != (new.attrs.get("template"), new.attrs.get("options")):
            return None  # recreated (with the configurations that use it): options are not diffed one by one
        return _extras(f"TEXT SEARCH DICTIONARY {qname(new.schema, new.name)}", old, new)


def _mappings(a: dict) -> dict[str, str]:
    return dict(m.split(": ", 1) for m in a.get("mappings") or [])


class TextSearchConfigurationGenerator(Generator):
    kind = "ts_configuration"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        ref = qname(obj.schema, obj.name)
        steps = [step(obj, "create", f"CREATE TEXT SEARCH CONFIGURATION {ref} (PARSER = {obj.attrs['parser']})")]
        return steps + self._mapping_steps(obj, {}) + _extras(f"TEXT SEARCH CONFIGURATION {ref}", None, obj)

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {qname(obj.schema, obj.name)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if old.attrs.get("parser") != new.attrs.get("parser"):
            return None
        steps = self._mapping_steps(new, _mappings(old.attrs))
        return steps + _extras(f"TEXT SEARCH CONFIGURATION {qname(new.schema, new.name)}", old, new)

    def _mapping_steps(self, obj: DbObject, old: dict[str, str]) -> list[Step]:
        new = _mappings(obj.attrs)
        ref = f"ALTER TEXT SEARCH CONFIGURATION {qname(obj.schema, obj.name)}"
        steps: list[Step] = []
        gone = sorted(set(old) - set(new))
        if gone:
            steps.append(step(obj, "alter", f"{ref} DROP MAPPING FOR {', '.join(gone)}"))
        by_dicts: dict[tuple[str, bool], list[str]] = {}  # tokens with the same dictionaries: one statement
        for token in sorted(new):
            if old.get(token) != new[token]:
                by_dicts.setdefault((new[token], token in old), []).append(token)
        for (dicts, existed), tokens in sorted(by_dicts.items()):
            verb = "ALTER" if existed else "ADD"
            steps.append(step(obj, "alter", f"{ref} {verb} MAPPING FOR {', '.join(tokens)} WITH {dicts}"))
        return steps
