"""The plan: ordered steps with their SQL, the object they touch and typed hazards.

This is the contract between the diff (which produces steps) and everything that
consumes them (rendering, review, apply, Dagster metadata). Plain data, JSON-serialisable.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum

PLAN_FILE_KIND = "schema_pipeline/plan"


class HazardType(StrEnum):
    DELETES_DATA = "DELETES_DATA"
    ACQUIRES_ACCESS_EXCLUSIVE_LOCK = "ACQUIRES_ACCESS_EXCLUSIVE_LOCK"
    TABLE_REWRITE = "TABLE_REWRITE"
    INDEX_BUILD = "INDEX_BUILD"
    INDEX_DROPPED = "INDEX_DROPPED"
    VALIDATES_CONSTRAINT = "VALIDATES_CONSTRAINT"
    AUTHZ_UPDATE = "AUTHZ_UPDATE"
    HAS_UNTRACKABLE_DEPENDENCIES = "HAS_UNTRACKABLE_DEPENDENCIES"
    CORRECTNESS = "CORRECTNESS"
    # ALTER TABLE ... SET UNLOGGED: the table's data is no longer WAL-logged, so it is truncated after a
    # crash and never reaches physical replicas (a failover leaves the table empty).
    UNLOGGED_TABLE = "UNLOGGED_TABLE"
    # A function that escapes SQL privileges: language C/internal or an untrusted procedural language
    # (runs code inside the server process), or SECURITY DEFINER with dynamic SQL that PUBLIC may
    # execute (anyone runs statements of their choosing as the function's owner).
    UNSAFE_FUNCTION = "UNSAFE_FUNCTION"


def human_count(n: float) -> str:
    """41234567 -> '41 M'; small numbers stay exact."""
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= factor:
            value = n / factor
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{int(n)}"


def human_bytes(n: float) -> str:
    """12884901888 -> '12 GB' (binary multiples, conventional unit names)."""
    for factor, unit in ((1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "kB")):
        if n >= factor:
            value = n / factor
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{int(n)} bytes"


@dataclass(frozen=True)
class Hazard:
    """A typed risk of a step. `relation`/`rows`/`bytes` are the target's size estimate of
    what the step touches (filled after the diff from the target's statistics)."""

    type: HazardType
    message: str
    relation: str | None = None
    rows: int | None = None
    bytes: int | None = None

    def size_text(self) -> str:
        """'public.events (41 M rows, 12 GB)', or '' when no size is known."""
        if self.relation is None or (self.rows is None and self.bytes is None):
            return ""
        parts = []
        if self.rows is not None:
            parts.append(f"{human_count(self.rows)} rows")
        if self.bytes is not None:
            parts.append(human_bytes(self.bytes))
        return f"{self.relation} ({', '.join(parts)})"

    def text(self) -> str:
        """The message with the size of what it touches, e.g. 'rewrites public.events (41 M rows, 12 GB)'."""
        size = self.size_text()
        if not size or not self.relation:
            return self.message
        standalone = re.compile(r"(?<![\w.$\"])" + re.escape(self.relation) + r"(?![\w.$\"])")
        if standalone.search(self.message):
            return standalone.sub(lambda _: size, self.message, count=1)
        return f"{self.message} ({size.replace(' (', ': ', 1)[:-1]})"

    def to_dict(self, *, sizes: bool = True) -> dict:
        d: dict = {"type": str(self.type), "message": self.message}
        if sizes and self.relation is not None:
            d.update(relation=self.relation, rows=self.rows, bytes=self.bytes, size=self.size_text() or None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Hazard:
        return cls(HazardType(d["type"]), d["message"], relation=d.get("relation"), rows=d.get("rows"),
                   bytes=d.get("bytes"))


@dataclass
class Step:
    """One SQL statement of a migration.

    `object_kind`/`object_name` identify what it touches (e.g. "table", "public.users");
    `action` is create | drop | alter | replace | comment | grant | ...
    `transactional` is False for statements PostgreSQL refuses inside a transaction
    block (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE on older servers, ...).
    """

    sql: str
    object_kind: str
    object_name: str
    action: str
    hazards: list[Hazard] = field(default_factory=list)
    transactional: bool = True

    def to_dict(self, *, sizes: bool = True) -> dict:
        d = asdict(self)
        d["hazards"] = [h.to_dict(sizes=sizes) for h in self.hazards]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Step:
        return cls(
            sql=d["sql"],
            object_kind=d["object_kind"],
            object_name=d["object_name"],
            action=d["action"],
            hazards=[Hazard.from_dict(h) for h in d.get("hazards", [])],
            transactional=d.get("transactional", True),
        )


@dataclass
class StepGroup:
    """Consecutive steps that run together: one transaction, or one statement outside any."""

    transactional: bool
    indices: list[int]

    def to_dict(self) -> dict:
        return {"transactional": self.transactional, "steps": [i + 1 for i in self.indices]}


@dataclass
class Plan:
    """Ordered steps that bring a target from its current catalog to the desired one.

    `target_fingerprint`/`desired_fingerprint` bind a saved plan to the catalogs it was made
    from; `server_version` and `created_at` describe the target at planning time.
    """

    steps: list[Step]
    target_fingerprint: str = ""
    desired_fingerprint: str = ""
    server_version: int = 0
    created_at: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def hazard_types(self) -> set[str]:
        return {str(h.type) for s in self.steps for h in s.hazards}

    def groups(self) -> list[StepGroup]:
        """Consecutive transactional steps form one group; each non-transactional step is its own."""
        groups: list[StepGroup] = []
        for i, step in enumerate(self.steps):
            if step.transactional and groups and groups[-1].transactional:
                groups[-1].indices.append(i)
            else:
                groups.append(StepGroup(step.transactional, [i]))
        return groups

    def fingerprint(self) -> str:
        """Hash of what the plan does (SQL, objects, hazard types); size estimates are excluded."""
        payload = json.dumps([s.to_dict(sizes=False) for s in self.steps], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "kind": PLAN_FILE_KIND,
            "version": 1,
            "target_fingerprint": self.target_fingerprint,
            "desired_fingerprint": self.desired_fingerprint,
            "plan_fingerprint": self.fingerprint(),
            "server_version": self.server_version,
            "created_at": self.created_at,
            "hazards": sorted(self.hazard_types()),
            "groups": [g.to_dict() for g in self.groups()],
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(
            steps=[Step.from_dict(s) for s in d.get("steps", [])],
            target_fingerprint=d.get("target_fingerprint", ""),
            desired_fingerprint=d.get("desired_fingerprint", ""),
            server_version=int(d.get("server_version") or 0),
            created_at=d.get("created_at") or "",
        )
