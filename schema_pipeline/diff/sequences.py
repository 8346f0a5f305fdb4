"""SQL for sequences and their OWNED BY link."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, qname
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

_OPTS = (("data_type", "AS {}"), ("increment", "INCREMENT BY {}"), ("min", "MINVALUE {}"), ("max", "MAXVALUE {}"),
         ("start", "START WITH {}"), ("cache", "CACHE {}"))


def _cycle(v: str) -> str:
    return "CYCLE" if v in ("True", "t", "true") else "NO CYCLE"


class SequenceGenerator(Generator):
    kind = "sequence"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        a = obj.attrs
        ref = qname(obj.schema, obj.name)
        opts = " ".join(fmt.format(a[k]) for k, fmt in _OPTS)
        unlogged = "UNLOGGED " if a.get("persistence") == "u" else ""
        steps = [step(obj, "create", f"CREATE {unlogged}SEQUENCE {ref} {opts} {_cycle(a['cycle'])}")]
        steps += comment_steps(obj, f"SEQUENCE {ref}", None, a.get("comment"))
        steps += owner_steps(obj, f"SEQUENCE {ref}", None, a.get("owner"))
        steps += create_acl_steps(obj, "SEQUENCE", ref, ctx)
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP SEQUENCE IF EXISTS {qname(obj.schema, obj.name)}",
                     hz(HazardType.DELETES_DATA, f"drops sequence {obj.key}"))]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        o, a = old.attrs, new.attrs
        ref = qname(new.schema, new.name)
        changes = [fmt.format(a[k]) for k, fmt in _OPTS if o[k] != a[k]]
        if o["cycle"] != a["cycle"]:
            changes.append(_cycle(a["cycle"]))
        if changes and not int(a["min"]) <= int(o["start"]) <= int(a["max"]):
            changes.append(f"RESTART WITH {a['start']}")
        steps: list[Step] = []
        if changes:
            steps.append(step(new, "alter", f"ALTER SEQUENCE {ref} {' '.join(changes)}"))
        if o.get("persistence") != a.get("persistence"):
            steps.append(step(new, "alter", f"ALTER SEQUENCE {ref} SET {'UNLOGGED' if a['persistence'] == 'u' else 'LOGGED'}"))
        steps += comment_steps(new, f"SEQUENCE {ref}", o.get("comment"), a.get("comment"))
        steps += owner_steps(new, f"SEQUENCE {ref}", o.get("owner"), a.get("owner"))
        steps += acl_steps(new, "SEQUENCE", ref, o.get("acl"), a.get("acl"))
        return steps


def _col_ref(dotted: str) -> str:
    schema, table, col = dotted.split(".", 2)
    return f"{qname(schema, table)}.{ident(col)}"


class SequenceOwnerGenerator(Generator):
    kind = "seqowner"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "alter", f"ALTER SEQUENCE {qname(obj.schema, obj.name)} OWNED BY "
                     f"{_col_ref(obj.attrs['owned_by'])}")]

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        seq_id = f"sequence:{obj.key}"
        if ctx.gone(seq_id):
            return []
        return [step(obj, "alter", f"ALTER SEQUENCE IF EXISTS {qname(obj.schema, obj.name)} OWNED BY NONE")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        return self.create(new, ctx)
