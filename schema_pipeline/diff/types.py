"""SQL for user-defined types: enums, domains, composite and range types."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, literal, qname
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


def _keyword(obj: DbObject) -> str:
    return "DOMAIN" if obj.attrs["typtype"] == "d" else "TYPE"


def _is_subsequence(old: list[str], new: list[str]) -> bool:
    it = iter(new)
    return all(x in it for x in old)


class TypeGenerator(Generator):
    kind = "type"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        ref = qname(obj.schema, obj.name)
        t = a["typtype"]
        if t == "e":
            sql = f"CREATE TYPE {ref} AS ENUM ({', '.join(literal(x) for x in a['labels'])})"
        elif t == "c":
            sql = f"CREATE TYPE {ref} AS ({', '.join(a['attributes'])})"
        elif t == "r":
            sql = f"CREATE TYPE {ref} AS RANGE ({a['range_def']})"
        else:
            sql = f"CREATE DOMAIN {ref} AS {a['basetype']}"
            if a.get("collation"):
                sql += f" COLLATE {a['collation']}"
            if a.get("default") is not None:
                sql += f" DEFAULT {a['default']}"
            if a.get("notnull"):
                sql += " NOT NULL"
            for c in a.get("constraints") or []:
                sql += f" CONSTRAINT {c}"
        return [step(obj, "create", sql)] + self._extras(None, obj, ctx)

    def _extras(self, old: DbObject | None, new: DbObject, ctx: DiffContext) -> list[Step]:
        ref = qname(new.schema, new.name)
        kw = _keyword(new)
        o = old.attrs if old else {}
        steps = comment_steps(new, f"{kw} {ref}", o.get("comment"), new.attrs.get("comment"))
        if new.attrs["typtype"] == "c":
            oc = o.get("attribute_comments") or {}
            for col, text in sorted((new.attrs.get("attribute_comments") or {}).items()):
                steps += comment_steps(new, f"COLUMN {ref}.{ident(col)}", oc.get(col), text)
        steps += owner_steps(new, f"{kw} {ref}", o.get("owner"), new.attrs.get("owner"))
        if old is None:
            steps += create_acl_steps(new, "TYPE", ref, ctx)
        else:
            steps += acl_steps(new, "TYPE", ref, o.get("acl"), new.attrs.get("acl"))
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP {_keyword(obj)} IF EXISTS {qname(obj.schema, obj.name)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        o, a = old.attrs, new.attrs
        if o["typtype"] != a["typtype"]:
            return None
        ref = qname(new.schema, new.name)
        steps: list[Step] = []
        t = a["typtype"]
        if t == "e" and o["labels"] != a["labels"]:
            if not _is_subsequence(o["labels"], a["labels"]):
                return enum_recreate(old, new, ctx)
            present = list(o["labels"])
            for i, label in enumerate(a["labels"]):
                if label in present:
                    continue
                if i == 0:
                    where = f" BEFORE {literal(present[0])}" if present else ""
                else:
                    where = f" AFTER {literal(a['labels'][i - 1])}"
                steps.append(step(new, "alter", f"ALTER TYPE {ref} ADD VALUE {literal(label)}{where}",
                                  transactional=False))
                present.insert(i, label)
        elif t == "c" and o["attributes"] != a["attributes"]:
            old_names = {x.split(" ", 1)[0]: x for x in o["attributes"]}
            new_names = {x.split(" ", 1)[0]: x for x in a["attributes"]}
            for n, spec in old_names.items():
                if n not in new_names:
                    steps.append(step(new, "alter", f"ALTER TYPE {ref} DROP ATTRIBUTE {n}",
                                      hz(HazardType.DELETES_DATA, f"drops attribute {n} of {new.key}")))
                elif new_names[n] != spec:
                    steps.append(step(new, "alter", f"ALTER TYPE {ref} ALTER ATTRIBUTE {n} TYPE "
                                      f"{new_names[n].split(' ', 1)[1]}"))
            for n, spec in new_names.items():
                if n not in old_names:
                    steps.append(step(new, "alter", f"ALTER TYPE {ref} ADD ATTRIBUTE {spec}"))
        elif t == "r" and o["range_def"] != a["range_def"]:
            return None
        elif t == "d":
            if o["basetype"] != a["basetype"] or o.get("collation") != a.get("collation"):
                return None
            if o.get("default") != a.get("default"):
                sql = "DROP DEFAULT" if a.get("default") is None else f"SET DEFAULT {a['default']}"
                steps.append(step(new, "alter", f"ALTER DOMAIN {ref} {sql}"))
            if o.get("notnull") != a.get("notnull"):
                steps.append(step(new, "alter", f"ALTER DOMAIN {ref} {'SET' if a['notnull'] else 'DROP'} NOT NULL"))
            oc, nc = set(o.get("constraints") or []), set(a.get("constraints") or [])
            for c in sorted(oc - nc):
                steps.append(step(new, "alter", f"ALTER DOMAIN {ref} DROP CONSTRAINT {c.split(' ', 1)[0]}"))
            for c in sorted(nc - oc):
                steps.append(step(new, "alter", f"ALTER DOMAIN {ref} ADD CONSTRAINT {c}",
                                  hz(HazardType.VALIDATES_CONSTRAINT, f"validates {new.key}")))
        return steps + self._extras(old, new, ctx)


def enum_recreate(old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step]:
    """Rename the old enum away, create the new one, move every column over, drop the old one."""
    ref = qname(new.schema, new.name)
    tmp_name = f"{new.name}__old"
    tmp = qname(new.schema, tmp_name)
    labels = ", ".join(literal(x) for x in new.attrs["labels"])
    removed = sorted(set(old.attrs["labels"]) - set(new.attrs["labels"]))
    hazard = hz(HazardType.CORRECTNESS, f"enum {new.key} loses or reorders values {removed}")
    steps = [
        step(new, "alter", f"ALTER TYPE {ref} RENAME TO {ident(tmp_name)}", hazard),
        step(new, "create", f"CREATE TYPE {ref} AS ENUM ({labels})"),
    ]
    for col in ctx.current.objects.values():
        if col.kind != "column" or old.id not in col.deps or ctx.gone(col.id) or col.attrs.get("from_parent"):
            continue
        table = col.parent.split(":", 1)[1] if col.parent else ""
        schema, _, tname = table.partition(".")
        tref = qname(schema, tname)
        ctype = col.attrs["type"]
        default = col.attrs.get("default")
        cname = ident(col.name)
        if default is not None:
            steps.append(step(col, "alter", f"ALTER TABLE {tref} ALTER COLUMN {cname} DROP DEFAULT"))
        arr = "[]" if ctype.endswith("[]") else ""
        desired_col = ctx.desired.get(col.id)
        if desired_col is not None and desired_col.attrs["type"] != ctype:
            # the column leaves the type: park it as text, its own ALTER converts it to the desired type
            steps.append(step(col, "alter", f"ALTER TABLE {tref} ALTER COLUMN {cname} TYPE text{arr} USING "
                              f"{cname}::text{arr}", hz(HazardType.TABLE_REWRITE, f"column {col.key} is rewritten")))
            ctx.invalidated.add(col.id)
            continue
        hazards = [hz(HazardType.TABLE_REWRITE, f"column {col.key} is rewritten")]
        if removed:  # rows holding a removed value have no value of the new type to go to
            hazards.insert(0, hz(HazardType.DELETES_DATA, f"enum {new.key} loses values {removed}: rows of "
                                 f"{col.key} holding them cannot be converted"))
        steps.append(step(col, "alter", f"ALTER TABLE {tref} ALTER COLUMN {cname} TYPE {ctype} USING "
                          f"{cname}::text{arr}::{ref}{arr}", *hazards))
        ddefault = desired_col.attrs.get("default") if desired_col else None
        if ddefault is not None:
            steps.append(step(col, "alter", f"ALTER TABLE {tref} ALTER COLUMN {cname} SET DEFAULT {ddefault}"))
        ctx.invalidated.add(col.id)
    for o in ctx.current.objects.values():  # objects bound to the old type's OID must be rebuilt
        if o.kind in ("function", "view", "matview", "index", "constraint", "trigger", "policy") and \
                old.id in o.deps and o.id in ctx.desired.objects and not ctx.gone(o.id):
            ctx.recreated.add(o.id)
    steps.append(step(new, "drop", f"DROP TYPE {tmp}"))
    return steps + TypeGenerator()._extras(old, new, ctx)
