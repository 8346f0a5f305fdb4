"""SQL for event triggers (database-wide; the ones an extension owns are never read, so never touched)."""

from __future__ import annotations

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, literal
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Step, comment_steps, owner_steps, step

# pg_event_trigger.evtenabled -> ALTER EVENT TRIGGER action.
_ENABLED = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def create_sql(obj: DbObject) -> str:
    """CREATE EVENT TRIGGER for `obj` (its enabled state, owner and comment are separate steps)."""
    a = obj.attrs
    when = f"\n  WHEN TAG IN ({', '.join(literal(t) for t in a['tags'])})" if a.get("tags") else ""
    return f"CREATE EVENT TRIGGER {ident(obj.name)} ON {ident(a['event'])}{when}\n  EXECUTE FUNCTION {a['function']}()"


class EventTriggerGenerator(Generator):
    kind = "event_trigger"

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "create", create_sql(obj))] + self._extras(None, obj)

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        return [step(obj, "drop", f"DROP EVENT TRIGGER IF EXISTS {ident(obj.name)}")]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        if any(old.attrs.get(k) != new.attrs.get(k) for k in ("event", "tags", "function")):
            return None  # PostgreSQL cannot change these in place
        return self._extras(old, new)

    def _extras(self, old: DbObject | None, new: DbObject) -> list[Step]:
        o = old.attrs if old else {"enabled": "O"}  # CREATE EVENT TRIGGER makes an enabled (origin) trigger
        a = new.attrs
        ref = ident(new.name)
        steps: list[Step] = []
        if o.get("enabled") != a.get("enabled"):
            steps.append(step(new, "alter", f"ALTER EVENT TRIGGER {ref} {_ENABLED[a['enabled']]}"))
        steps += owner_steps(new, f"EVENT TRIGGER {ref}", o.get("owner"), a.get("owner"))
        steps += comment_steps(new, f"EVENT TRIGGER {ref}", o.get("comment"), a.get("comment"))
        return steps
