"""Online-by-default rewrite of a plan's steps (same end state, shorter locks).

Runs after the diff has ordered the steps, and only touches objects of relations that already
exist in the target (a relation created by the same plan is empty and needs none of this):

1. ``CREATE [UNIQUE] INDEX`` -> ``CREATE [UNIQUE] INDEX CONCURRENTLY`` (outside a transaction). A
   changed index (drop + create of one name) is built under a temporary name first, then the old
   one is dropped concurrently and the new one renamed, so the table always has an index.
   ``DROP INDEX`` -> ``DROP INDEX CONCURRENTLY``. Partitioned tables (and indexes attached to a
   partitioned index) are left alone: PostgreSQL refuses CONCURRENTLY there.
2. ``ADD CONSTRAINT ... FOREIGN KEY / CHECK`` -> added ``NOT VALID`` (brief lock, no scan), then
   ``VALIDATE CONSTRAINT`` on its own (SHARE UPDATE EXCLUSIVE: reads and writes go on). The VALIDATE
   of a constraint that exists NOT VALID also runs on its own.
3. ``ALTER COLUMN c SET NOT NULL`` -> a ``CHECK (c IS NOT NULL) NOT VALID``, validated on its own,
   then ``SET NOT NULL`` (PostgreSQL 12+ proves it from the check without a scan), then the check
   is dropped.
4. ``ADD CONSTRAINT ... UNIQUE / PRIMARY KEY (cols)`` -> ``CREATE UNIQUE INDEX CONCURRENTLY`` and
   ``ADD CONSTRAINT ... USING INDEX``.

Each rewrite recognises exactly the SQL the generators emit (rebuilt from the catalog objects and
compared verbatim); anything else is left unchanged. Steps are replaced in place, so everything
that depends on an index or constraint still comes after it. A step that must not share a
transaction with the lock taken before it (VALIDATE, CONCURRENTLY) is marked non-transactional,
which makes the executor run it alone in autocommit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from schema_pipeline.catalog.deparse import reproducible
from schema_pipeline.catalog.model import Catalog, DbObject
from schema_pipeline.catalog.names import ident, qname
from schema_pipeline.plan.model import Hazard, HazardType, Step

__all__ = ["online_steps"]

_ID = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)'
# pg_get_indexdef output: CREATE [UNIQUE] INDEX name ON schema.table USING method (...)
_INDEX_DEF = re.compile(rf"^CREATE (UNIQUE )?INDEX ({_ID}) ON (?!ONLY ){_ID}\.{_ID} USING ")
_INDEX_CREATE_PREFIX = re.compile(r"^CREATE (UNIQUE )?INDEX (IF NOT EXISTS )?")
# pg_get_constraintdef output of a plain UNIQUE / PRIMARY KEY that USING INDEX can express.
_KEY_DEF = re.compile(rf"^(UNIQUE|PRIMARY KEY) \(({_ID}(?:, {_ID})*)\)( DEFERRABLE(?: INITIALLY DEFERRED)?)?$")
_RELATION_KINDS = {"table", "index", "view", "matview", "sequence", "constraint", "type"}
_MAX_IDENT = 63  # NAMEDATALEN - 1, in bytes
_SET_NOT_NULL_MIN_VERSION = 120000  # SET NOT NULL uses a validated CHECK (IS NOT NULL) from 12 on

# Hazard types that no longer apply once the expensive part runs online.
_ONLINE_DROPS = {HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK, HazardType.VALIDATES_CONSTRAINT, HazardType.INDEX_BUILD}


@dataclass
class _Plan:
    """What the rewrite needs to know about the whole plan."""

    current: Catalog
    desired: Catalog
    steps: list[Step]
    new_or_gone: set[str] = field(default_factory=set)  # relations created, recreated or dropped by the plan
    taken: set[tuple[str | None, str]] = field(default_factory=set)  # (schema, name) in the relation namespace
    inherited: set[str] = field(default_factory=set)  # "schema.table" of tables that have inheritance children
    partitioned_indexes: set[str] = field(default_factory=set)  # keys of indexes others are attached to

    def __post_init__(self) -> None:
        for s in self.steps:
            if s.object_kind in ("table", "matview") and s.action in ("create", "drop"):
                self.new_or_gone.add(f"{s.object_kind}:{s.object_name}")
        for cat in (self.current, self.desired):
            for o in cat.objects.values():
                if o.kind in _RELATION_KINDS:
                    self.taken.add((o.schema, o.name))
        for o in self.current.objects.values():
            if o.kind == "table":
                self.inherited.update(o.attrs.get("inherits") or [])
            elif o.kind == "index" and o.attrs.get("attached_to"):
                self.partitioned_indexes.add(o.attrs["attached_to"])

    def existing(self, rel_id: str | None, kinds: tuple[str, ...] = ("table",)) -> DbObject | None:
        """The relation when it exists in the target, stays, is a plain table (or matview) and is not
        created, recreated or dropped by this plan; else None."""
        if not rel_id or rel_id.split(":", 1)[0] not in kinds or rel_id in self.new_or_gone:
            return None
        cur, des = self.current.get(rel_id), self.desired.get(rel_id)
        if cur is None or des is None:
            return None
        if cur.kind == "table" and cur.attrs.get("relkind", "r") != "r":
            return None  # partitioned (CONCURRENTLY refused), foreign, ...
        if cur.attrs.get("partkey") or des.attrs.get("partkey"):
            return None
        return cur

    def fresh_name(self, schema: str | None, base: str, suffix: str) -> str:
        """An unused relation/constraint name `base` + `suffix`, within PostgreSQL's 63 bytes."""
        for n in range(100):
            tail = suffix if n == 0 else f"{suffix}{n}"
            head = base
            while len((head + tail).encode()) > _MAX_IDENT:
                head = head[:-1]
            name = head + tail
            if (schema, name) not in self.taken:
                self.taken.add((schema, name))
                return name
        raise RuntimeError("no free temporary name")  # pragma: no cover


def _sid(s: Step) -> str:
    return f"{s.object_kind}:{s.object_name}"


def _stmt(sql: str) -> str:
    """A statement as the generators write it (diff/common.step), to compare with and to emit."""
    return reproducible(sql).rstrip().rstrip(";") + ";"


def _table_ref(rel_id: str) -> str:
    schema, _, name = rel_id.split(":", 1)[1].partition(".")
    return qname(schema, name)


def _keep(hazards: list[Hazard], drop: set[HazardType]) -> list[Hazard]:
    return [h for h in hazards if h.type not in drop]


def _like(s: Step, sql: str, hazards: list[Hazard], *, transactional: bool = True, action: str | None = None) -> Step:
    return replace(s, sql=_stmt(sql), hazards=list(hazards), transactional=transactional, action=action or s.action)


def online_steps(steps: list[Step], current: Catalog, desired: Catalog) -> list[Step]:
    """The steps with index builds, constraint validations and SET NOT NULL made online."""
    ctx = _Plan(current, desired, steps)
    drops = {_sid(s): i for i, s in enumerate(steps) if s.object_kind == "index" and s.action == "drop"}
    creates = {_sid(s): i for i, s in enumerate(steps) if s.object_kind == "index" and s.action == "create"
               and s.sql.startswith("CREATE ")}
    skip: set[int] = set()
    replacement: dict[int, list[Step]] = {}
    for sid, ci in creates.items():
        di = drops.get(sid)
        if di is not None and di < ci:
            swapped = _swap_index(ctx, steps, di, ci)
            if swapped is not None:
                skip.add(di)
                replacement[ci] = swapped
    out: list[Step] = []
    for i, s in enumerate(steps):
        if i in skip:
            continue
        if i in replacement:
            out += replacement[i]
            continue
        out += _rewrite(ctx, s) or [s]
    return out


def _rewrite(ctx: _Plan, s: Step) -> list[Step] | None:
    if s.object_kind == "index" and s.action == "create":
        return _create_index(ctx, s)
    if s.object_kind == "index" and s.action == "drop":
        return _drop_index(ctx, s)
    if s.object_kind in ("constraint", "fkey") and s.action == "create":
        return _add_constraint(ctx, s)
    if s.object_kind in ("constraint", "fkey") and s.action == "alter" and " VALIDATE CONSTRAINT " in s.sql:
        return _validate_alone(ctx, s)
    if s.object_kind == "column" and s.action == "alter" and s.sql.endswith(" SET NOT NULL;"):
        return _set_not_null(ctx, s)
    return None


# -- indexes -----------------------------------------------------------------------------------------

def _index_on_existing(ctx: _Plan, obj: DbObject | None) -> bool:
    return bool(obj and not obj.attrs.get("attached_to") and ctx.existing(obj.parent, ("table", "matview")))


def _create_index(ctx: _Plan, s: Step) -> list[Step] | None:
    obj = ctx.desired.get(_sid(s))
    if not _index_on_existing(ctx, obj):
        return None
    definition = obj.attrs.get("definition", "")
    if not _INDEX_DEF.match(definition) or s.sql != _stmt(definition):
        return None
    sql = _INDEX_CREATE_PREFIX.sub(lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY ", s.sql, count=1)
    return [_like(s, sql, _keep(s.hazards, {HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK}), transactional=False)]


def _drop_index(ctx: _Plan, s: Step) -> list[Step] | None:
    obj = ctx.current.get(_sid(s))
    if not _index_on_existing(ctx, obj) or s.sql != _stmt(f"DROP INDEX IF EXISTS {qname(obj.schema, obj.name)}"):
        return None
    if obj.key in ctx.partitioned_indexes:
        return None  # a partitioned index (its partitions' indexes are attached to it)
    return [_like(s, f"DROP INDEX CONCURRENTLY IF EXISTS {qname(obj.schema, obj.name)}",
                  _keep(s.hazards, {HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK}), transactional=False)]


def _swap_index(ctx: _Plan, steps: list[Step], di: int, ci: int) -> list[Step] | None:
    """A changed index: build the new definition under a temporary name, drop the old, rename."""
    sid = _sid(steps[ci])
    old, new = ctx.current.get(sid), ctx.desired.get(sid)
    if not (_index_on_existing(ctx, old) and _index_on_existing(ctx, new)) or old.parent != new.parent:
        return None
    drop, create = steps[di], steps[ci]
    if drop.sql != _stmt(f"DROP INDEX IF EXISTS {qname(old.schema, old.name)}"):
        return None
    definition = new.attrs.get("definition", "")
    m = _INDEX_DEF.match(definition)
    if not m or create.sql != _stmt(definition):
        return None
    # The old index stays until the new one exists: nothing in between may need it gone.
    keep_out = {d for d in old.deps if not d.startswith(("schema:", "table:", "matview:"))} | {sid}
    if any(_sid(s) in keep_out for s in steps[di + 1:ci]):
        return None
    tmp = ctx.fresh_name(new.schema, new.name, "_sp_new")
    build = definition[:m.start(2)] + ident(tmp) + definition[m.end(2):]
    build = _INDEX_CREATE_PREFIX.sub(lambda mm: f"CREATE {mm.group(1) or ''}INDEX CONCURRENTLY ", build, count=1)
    ref = qname(old.schema, old.name)
    return [
        _like(create, build, _keep(create.hazards, {HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK}), transactional=False),
        _like(drop, f"DROP INDEX CONCURRENTLY IF EXISTS {ref}", drop.hazards, transactional=False),
        _like(create, f"ALTER INDEX {qname(new.schema, tmp)} RENAME TO {ident(new.name)}", [], action="alter"),
    ]


# -- constraints --------------------------------------------------------------------------------------

def _add_constraint(ctx: _Plan, s: Step) -> list[Step] | None:
    obj = ctx.desired.get(_sid(s))
    if obj is None or obj.attrs.get("inherited_from") or obj.attrs.get("index_attached_to"):
        return None
    if not ctx.existing(obj.parent):
        return None
    ref = _table_ref(obj.parent)
    definition = obj.attrs.get("definition", "")
    if s.sql != _stmt(f"ALTER TABLE {ref} ADD CONSTRAINT {ident(obj.name)} {definition}"):
        return None
    contype = obj.attrs.get("contype")
    if contype in ("c", "f"):
        if definition.endswith("NOT VALID") or (contype == "c") != definition.startswith("CHECK ") \
                or (contype == "f") != definition.startswith("FOREIGN KEY "):
            return None
        add = _like(s, f"ALTER TABLE {ref} ADD CONSTRAINT {ident(obj.name)} {definition} NOT VALID",
                    _keep(s.hazards, _ONLINE_DROPS))
        validate = _like(s, f"ALTER TABLE {ref} VALIDATE CONSTRAINT {ident(obj.name)}",
                         [Hazard(HazardType.VALIDATES_CONSTRAINT, f"validates {obj.key} against existing rows "
                                 "(SHARE UPDATE EXCLUSIVE: reads and writes continue)")],
                         transactional=False, action="alter")
        return [add, validate]
    if contype in ("u", "p"):
        m = _KEY_DEF.match(definition)
        if not m:
            return None
        kind, cols, deferrable = m.group(1), m.group(2), m.group(3) or ""
        name = ident(obj.name)
        build = _like(s, f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {ref} USING btree ({cols})",
                      [Hazard(HazardType.INDEX_BUILD, f"builds the index of {obj.key}")], transactional=False)
        attach = _like(s, f"ALTER TABLE {ref} ADD CONSTRAINT {name} {kind} USING INDEX {name}{deferrable}",
                       _keep(s.hazards, _ONLINE_DROPS))
        return [build, attach]
    return None


def _validate_alone(ctx: _Plan, s: Step) -> list[Step] | None:
    """VALIDATE of a constraint that was NOT VALID: on its own, not under the locks of a transaction."""
    obj = ctx.desired.get(_sid(s))
    if obj is None or not ctx.existing(obj.parent) or not s.transactional:
        return None
    if s.sql != _stmt(f"ALTER TABLE {_table_ref(obj.parent)} VALIDATE CONSTRAINT {ident(obj.name)}"):
        return None
    return [_like(s, s.sql, s.hazards, transactional=False)]


# -- SET NOT NULL -------------------------------------------------------------------------------------

def _set_not_null(ctx: _Plan, s: Step) -> list[Step] | None:
    if (ctx.current.server_version or 0) < _SET_NOT_NULL_MIN_VERSION:
        return None
    col = ctx.current.get(_sid(s))
    if col is None or col.attrs.get("notnull") or ctx.desired.get(_sid(s)) is None:
        return None
    table = ctx.existing(col.parent)
    if table is None or table.attrs.get("inherits") or table.attrs.get("partition_of"):
        return None
    if col.parent.split(":", 1)[1] in ctx.inherited:
        return None  # has inheritance children: keep PostgreSQL's own recursion
    ref = _table_ref(col.parent)
    column = ident(col.name)
    if s.sql != _stmt(f"ALTER TABLE {ref} ALTER COLUMN {column} SET NOT NULL"):
        return None
    tmp = ident(ctx.fresh_name(table.schema, f"{col.name}", "_not_null_sp"))
    return [
        _like(s, f"ALTER TABLE {ref} ADD CONSTRAINT {tmp} CHECK ({column} IS NOT NULL) NOT VALID", []),
        _like(s, f"ALTER TABLE {ref} VALIDATE CONSTRAINT {tmp}",
              [Hazard(HazardType.VALIDATES_CONSTRAINT, f"checks {col.key} has no NULLs (SHARE UPDATE EXCLUSIVE: "
                      "reads and writes continue)")], transactional=False),
        _like(s, f"ALTER TABLE {ref} ALTER COLUMN {column} SET NOT NULL", _keep(s.hazards, _ONLINE_DROPS)),
        _like(s, f"ALTER TABLE {ref} DROP CONSTRAINT {tmp}", []),
    ]
