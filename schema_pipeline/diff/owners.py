"""Ownership is managed only where the state says so.

Objects the state creates without `ALTER ... OWNER TO` are owned, in the plan database, by the role that
loaded the state (`Catalog.role`). Such an owner means "unspecified": the target keeps the owner it has
(an existing object keeps its owner, even when recreated; a new one is owned by the role that applies
the plan), so a deploy role that differs from the owner of the target's objects changes no owner. An
explicit owner other than the plan role is still enforced.
"""

from __future__ import annotations

import re
from dataclasses import replace

from schema_pipeline.catalog.model import Catalog
from schema_pipeline.plan.model import Step

_IDENT = r"[a-z_][a-z0-9_$]*"


def _rendered_role(role: str) -> str:
    """A role as the catalog queries render grantees (quote_ident)."""
    return role if re.fullmatch(_IDENT, role) else '"' + role.replace('"', '""') + '"'


def unspecified_owners(current: Catalog, desired: Catalog) -> tuple[Catalog, set[str]]:
    """`desired` with implicit owners replaced by the owner the target keeps, and the ids of the objects
    created with an implicit owner (their OWNER TO step is left out)."""
    role = desired.role
    if not role:
        return desired, set()
    deploy = current.role or role
    implicit: set[str] = set()
    changed = {}
    for oid, obj in desired.objects.items():
        if obj.attrs.get("owner") != role:
            continue
        cur = current.objects.get(oid)
        if cur is None:
            implicit.add(oid)
        owner = (cur.attrs.get("owner") if cur is not None else None) or deploy
        if owner == role:
            continue
        attrs = dict(obj.attrs, owner=owner)
        if isinstance(attrs.get("acl"), list):
            old_g, new_g = _rendered_role(role), _rendered_role(owner)
            attrs["acl"] = sorted(new_g + item[len(old_g):] if item.rpartition("=")[0] == old_g else item
                                  for item in attrs["acl"])
        changed[oid] = replace(obj, attrs=attrs)
    if not changed:
        return desired, implicit
    out = Catalog(objects={**desired.objects, **changed}, server_version=desired.server_version, role=desired.role)
    return out, implicit


def drop_implicit_owner_steps(steps: list[Step], implicit: set[str]) -> list[Step]:
    """Leave out ALTER ... OWNER TO for objects created with an implicit owner."""
    if not implicit:
        return steps
    return [s for s in steps if not (s.action == "owner" and f"{s.object_kind}:{s.object_name}" in implicit)]
