"""The interface every per-kind SQL generator implements, and the context it sees."""

from __future__ import annotations

from dataclasses import dataclass, field

from schema_pipeline.catalog.model import Catalog, DbObject
from schema_pipeline.plan.model import Step


@dataclass
class DiffContext:
    """Both catalogs plus the decisions taken so far (what is dropped, created, recreated)."""

    current: Catalog
    desired: Catalog
    dropped: set[str] = field(default_factory=set)  # ids dropped for good
    created: set[str] = field(default_factory=set)  # ids created from scratch
    recreated: set[str] = field(default_factory=set)  # ids dropped then created again
    invalidated: set[str] = field(default_factory=set)  # ids whose view-like dependents must be recreated
    # Declared conversions for type changes: column key ("schema.table.column") -> USING expression.
    conversions: dict[str, str] = field(default_factory=dict)

    def gone(self, nid: str | None) -> bool:
        """True when `nid` is dropped (for good or to be recreated) in this migration."""
        return nid is not None and (nid in self.dropped or nid in self.recreated)

    def new(self, nid: str | None) -> bool:
        """True when `nid` is (re)created by this migration."""
        return nid is not None and (nid in self.created or nid in self.recreated)


class Generator:
    """SQL for one object kind. `alter` returns None when the change needs drop + create."""

    kind: str = ""

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        raise NotImplementedError

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        raise NotImplementedError

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        return None

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        """True when the parent's own CREATE/DROP already creates/drops this object."""
        return False
