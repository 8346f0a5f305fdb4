"""Saved plan files: `plan --format json` writes one, `apply --plan FILE` reads it back.

A plan file is the plan's JSON (`Plan.to_dict`) plus, when known, the desired catalog, so a
later apply can verify convergence and rehearse without the state files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.plan.model import PLAN_FILE_KIND, Plan


class PlanFileError(SchemaPipelineError):
    """A plan file that cannot be read, or whose content does not match its fingerprints."""


@dataclass
class PlanFile:
    """A saved plan: the plan, the desired catalog (if saved) and the schema scope it was made with."""

    plan: Plan
    desired: object | None = None  # schema_pipeline.catalog.Catalog
    scope: dict | None = None  # {"include_schemas": [...] | None, "exclude_schemas": [...] | None}


def plan_file_dict(plan: Plan, desired=None, scope: dict | None = None) -> dict:
    """The JSON document of a plan file; `desired` is the desired `Catalog` (optional)."""
    d = plan.to_dict()
    if scope is not None:
        d["scope"] = scope
    if desired is not None:
        d["desired_catalog"] = desired.to_dict()
    return d


def parse_plan_file(doc: object, source: str = "plan file") -> PlanFile:
    """Validate a decoded plan file."""
    from schema_pipeline.catalog import Catalog

    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise PlanFileError(f"{source}: not a schema-pipeline plan (no 'steps' list)")
    if doc.get("kind", PLAN_FILE_KIND) != PLAN_FILE_KIND or doc.get("version") != 1:
        raise PlanFileError(f"{source}: unsupported plan kind/version {doc.get('kind')!r}/{doc.get('version')!r}")
    try:
        plan = Plan.from_dict(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{source}: malformed step or hazard ({type(exc).__name__}: {exc})") from None
    if not plan.target_fingerprint or not plan.desired_fingerprint:
        raise PlanFileError(f"{source}: the plan has no target/desired fingerprint; re-create it with "
                            "`schema-pipeline plan --format json`")
    recorded = doc.get("plan_fingerprint")
    if recorded and recorded != plan.fingerprint():
        raise PlanFileError(f"{source}: the steps were modified after planning (plan fingerprint "
                            f"{plan.fingerprint()} != recorded {recorded}); re-create the plan")
    desired = None
    if doc.get("desired_catalog") is not None:
        try:
            desired = Catalog.from_dict(doc["desired_catalog"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanFileError(f"{source}: malformed desired catalog ({type(exc).__name__})") from None
        if desired.fingerprint() != plan.desired_fingerprint:
            raise PlanFileError(f"{source}: the desired catalog does not match the desired fingerprint; "
                                "re-create the plan")
    scope = doc.get("scope") if isinstance(doc.get("scope"), dict) else None
    return PlanFile(plan, desired, scope)


def read_plan_file(path: str | Path) -> PlanFile:
    """Read and validate a plan file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"cannot read plan file {p}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"{p}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return parse_plan_file(doc, str(p))


class PlanOutdated(SchemaPipelineError):
    """The target or the desired state changed since the plan was made; nothing was applied."""
