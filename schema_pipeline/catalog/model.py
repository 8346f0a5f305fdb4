"""Plain-data catalog model: every schema object is a `DbObject` identified by kind + qualified name.

Identity is by qualified name (never OID). `attrs` holds the canonical, server-rendered text of the
object's properties; `deps` holds the node ids ("kind:key") of objects it depends on.
"""

from __future__ import annotations

import gc
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

BOOKKEEPING_SCHEMA = "schema_pipeline"

# Object kinds, in the order their creation is usually preferred.
KINDS: tuple[str, ...] = (
    "schema",
    "extension",
    "collation",
    "type",
    "sequence",
    "table",
    "column",
    "constraint",
    "view",
    "function",
    "operator",
    "cast",
    "ts_dictionary",
    "ts_configuration",
    "matview",
    "index",
    "statistics",
    "fkey",
    "trigger",
    "rule",
    "policy",
    "seqowner",
    "defacl",
)


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building or walking large catalogs.

    Catalogs allocate hundreds of thousands of small dicts and lists and free none of them, so the
    collector's full passes (which rescan every live object) only cost time: up to half of a diff at
    5,000 tables. Reference counting still frees everything; nesting and threads are counted.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


_FINGERPRINT_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def node_id(kind: str, key: str) -> str:
    """Graph node id of an object."""
    return f"{kind}:{key}"


@dataclass(slots=True)  # ~62k of them at 5,000 tables: slots keep them small
class DbObject:
    """One object of the catalog (table, column, index, view, function, ...)."""

    kind: str
    key: str
    schema: str | None
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    deps: list[str] = field(default_factory=list)
    # "kind:key", computed once (read ~150,000 times by a 5,000-table diff): the key changes only by rekey()
    id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.id = node_id(self.kind, self.key)

    def rekey(self, key: str, name: str) -> None:
        """Give the object a new key and name (a declared rename); its id follows."""
        self.key, self.name = key, name
        self.id = node_id(self.kind, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "schema": self.schema,
            "name": self.name,
            "attrs": self.attrs,
            "parent": self.parent,
            "deps": sorted(set(self.deps)),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DbObject:
        return cls(
            kind=d["kind"],
            key=d["key"],
            schema=d.get("schema"),
            name=d["name"],
            attrs=dict(d.get("attrs", {})),
            parent=d.get("parent"),
            deps=list(d.get("deps", [])),
        )


@dataclass
class ColumnSummary:
    name: str
    type: str
    nullable: bool
    default: str | None
    comment: str | None


@dataclass
class TableSummary:
    schema: str
    name: str
    comment: str | None
    columns: list[ColumnSummary]
    constraints: list[str]


@dataclass
class Catalog:
    """The whole introspected schema: objects by node id."""

    objects: dict[str, DbObject] = field(default_factory=dict)
    server_version: int = 0
    role: str | None = None  # the role that read it (owns what the state created without an explicit owner)
    _index: dict[str, list[DbObject]] | None = field(default=None, repr=False, compare=False)
    _index_size: int = field(default=-1, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def add(self, obj: DbObject) -> None:
        self.objects[obj.id] = obj
        self._index = None
        self._fingerprint = None

    def _children_index(self) -> dict[str, list[DbObject]]:
        if self._index is None or self._index_size != len(self.objects):
            index: dict[str, list[DbObject]] = {}
            for o in self.objects.values():
                if o.parent:
                    index.setdefault(o.parent, []).append(o)
            for lst in index.values():
                lst.sort(key=lambda o: (o.attrs.get("position", 0), o.key))
            self._index, self._index_size = index, len(self.objects)
        return self._index

    def get(self, nid: str) -> DbObject | None:
        return self.objects.get(nid)

    def of_kind(self, kind: str) -> list[DbObject]:
        return sorted((o for o in self.objects.values() if o.kind == kind), key=lambda o: o.key)

    def children(self, parent_id: str, kind: str | None = None) -> list[DbObject]:
        """Objects whose parent is `parent_id` (columns in attribute order), optionally of one kind."""
        return [o for o in self._children_index().get(parent_id, []) if kind is None or o.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "server_version": self.server_version,
            "role": self.role,
            "objects": [self.objects[k].to_dict() for k in sorted(self.objects)],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Catalog:
        cat = cls(server_version=d.get("server_version", 0), role=d.get("role"))
        with gc_paused():
            for od in d.get("objects", []):
                cat.add(DbObject.from_dict(od))
        return cat

    def content(self) -> list[dict[str, Any]]:
        # What defines each object for equality (no dependency bookkeeping), minus attrs["position"]; attrs are
        # copied only where there is a position (only columns have one): this runs over every object.
        out = []
        objects = self.objects
        for k in sorted(objects):
            o = objects[k]
            attrs = o.attrs
            if "position" in attrs:
                attrs = {a: v for a, v in attrs.items() if a != "position"}
            out.append({"kind": o.kind, "key": o.key, "parent": o.parent, "attrs": attrs})
        return out

    def fingerprint(self) -> str:
        """Stable hash of the catalog content (independent of OIDs and ordering).

        Computed once per catalog (a shared desired catalog is fingerprinted by every drift target's
        plan); catalogs are not changed in place once built (renames and owners work on copies)."""
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        # Hashes exactly the bytes of json.dumps(self.content(), sort_keys=True, default=str), one object
        # at a time: no whole-catalog list or JSON string in memory (tens of MB at 5,000 tables).
        encode = _FINGERPRINT_ENCODER.encode
        h = hashlib.sha256(b"[")
        sep = b""
        with gc_paused():
            objects = self.objects
            for k in sorted(objects):
                o = objects[k]
                attrs = o.attrs
                if "position" in attrs:
                    attrs = attrs.copy()
                    del attrs["position"]
                h.update(sep)
                h.update(encode({"kind": o.kind, "key": o.key, "parent": o.parent, "attrs": attrs}).encode())
                sep = b", "
        h.update(b"]")
        return h.hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Catalog) and self.content() == other.content()

    def table_summaries(self) -> list[TableSummary]:
        """Tables with their columns and constraint definitions (for review and display)."""
        out: list[TableSummary] = []
        for t in self.of_kind("table"):
            cols = [
                ColumnSummary(
                    name=c.name,
                    type=c.attrs.get("type", ""),
                    nullable=not c.attrs.get("notnull", False),
                    default=c.attrs.get("default"),
                    comment=c.attrs.get("comment"),
                )
                for c in self.children(t.id, "column")
            ]
            cons = [c.attrs.get("definition", "") for c in self.children(t.id) if c.kind in ("constraint", "fkey")]
            out.append(
                TableSummary(
                    schema=t.schema or "", name=t.name, comment=t.attrs.get("comment"), columns=cols, constraints=cons
                )
            )
        return out

    def object_counts(self) -> dict[str, int]:
        """Number of objects by kind (foreign keys count as constraints)."""
        counts: dict[str, int] = {}
        for o in self.objects.values():
            kind = "constraint" if o.kind == "fkey" else o.kind
            if kind in ("seqowner",):
                continue
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))
