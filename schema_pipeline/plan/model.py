"""The plan: ordered steps with their SQL, the object they touch and typed hazards.

This is the contract between the diff (which produces steps) and everything that
consumes them (rendering, review, apply, Dagster metadata). Plain data, JSON-serialisable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum


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


@dataclass(frozen=True)
class Hazard:
    type: HazardType
    message: str

    def to_dict(self) -> dict:
        return {"type": str(self.type), "message": self.message}


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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hazards"] = [h.to_dict() for h in self.hazards]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Step:
        return cls(
            sql=d["sql"],
            object_kind=d["object_kind"],
            object_name=d["object_name"],
            action=d["action"],
            hazards=[Hazard(HazardType(h["type"]), h["message"]) for h in d.get("hazards", [])],
            transactional=d.get("transactional", True),
        )


@dataclass
class Plan:
    """Ordered steps that bring a target from its current catalog to the desired one."""

    steps: list[Step]
    target_fingerprint: str = ""
    desired_fingerprint: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def hazard_types(self) -> set[str]:
        return {str(h.type) for s in self.steps for h in s.hazards}

    def fingerprint(self) -> str:
        payload = json.dumps([s.to_dict() for s in self.steps], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "target_fingerprint": self.target_fingerprint,
            "desired_fingerprint": self.desired_fingerprint,
            "plan_fingerprint": self.fingerprint(),
            "hazards": sorted(self.hazard_types()),
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(
            steps=[Step.from_dict(s) for s in d.get("steps", [])],
            target_fingerprint=d.get("target_fingerprint", ""),
            desired_fingerprint=d.get("desired_fingerprint", ""),
        )
