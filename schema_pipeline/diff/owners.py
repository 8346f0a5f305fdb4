"""Owners the state does not set.

Objects the state creates without `ALTER ... OWNER TO` are owned, in the plan database, by the role that
loaded the state (`Catalog.role`); such an owner means "unspecified". What it becomes in the target
depends on the ownership mode:

- "all" (the default, full convergence): the role that applies the plan, as if the state had been
  loaded into the target by it; an object owned by someone else is given back to that role.
- "declared": the target keeps the owner it has (an existing object keeps its owner, even when
  recreated; a new one is owned by the role that applies the plan), so a deploy role that differs from
  the owner of the target's objects changes no owner.

In both modes an explicit owner other than the plan role is enforced, and an object the plan creates
gets no `OWNER TO` step when its owner is the applying role (which creates it).
"""

from __future__ import annotations

import re
from dataclasses import replace

from schema_pipeline.catalog.model import Catalog
from schema_pipeline.plan.model import Step

_IDENT = r"[a-z_][a-z0-9_$]*"


def rendered_role(role: str) -> str:
    """A role as the catalog queries render grantees (quote_ident)."""
    return role if re.fullmatch(_IDENT, role) else '"' + role.replace('"', '""') + '"'


OWNER_MODES = ("all", "declared")


def unspecified_owners(current: Catalog, desired: Catalog, mode: str = "all") -> Catalog:
    """`desired` with implicit owners replaced by the owner they get in the target (see the module
    docstring for `mode`)."""
    if mode not in OWNER_MODES:
        raise ValueError(f"unknown ownership mode {mode!r} (expected one of {', '.join(OWNER_MODES)})")
    role = desired.role
    if not role:
        return desired
    deploy = current.role or role
    changed = {}
    for oid, obj in desired.objects.items():
        if obj.attrs.get("owner") != role:
            continue
        cur = current.objects.get(oid)
        kept = cur.attrs.get("owner") if cur is not None and mode == "declared" else None
        owner = kept or deploy
        if owner == role:
            continue
        attrs = dict(obj.attrs, owner=owner)
        if isinstance(attrs.get("acl"), list):
            old_g, new_g = rendered_role(role), rendered_role(owner)
            attrs["acl"] = sorted(new_g + item[len(old_g):] if item.rpartition("=")[0] == old_g else item
                                  for item in attrs["acl"])
        changed[oid] = replace(obj, attrs=attrs)
    if not changed:
        return desired
    return Catalog(objects={**desired.objects, **changed}, server_version=desired.server_version, role=desired.role)


def drop_redundant_owner_steps(steps: list[Step], desired: Catalog, applier: str | None) -> list[Step]:
    """Leave out ALTER ... OWNER TO the applying role for objects the plan creates (it owns them already)."""
    if not applier:
        return steps
    created = {f"{s.object_kind}:{s.object_name}" for s in steps if s.action == "create"}

    def redundant(s: Step) -> bool:
        oid = f"{s.object_kind}:{s.object_name}"
        obj = desired.objects.get(oid)
        return s.action == "owner" and oid in created and obj is not None and obj.attrs.get("owner") == applier

    return [s for s in steps if not redundant(s)]
