"""Shared SQL-generation helpers: steps, comments, owners and privileges."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from schema_pipeline.catalog.deparse import reproducible
from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, literal, qname
from schema_pipeline.plan.model import Hazard, HazardType, Step

if TYPE_CHECKING:
    from schema_pipeline.diff.base import DiffContext

__all__ = ["Hazard", "HazardType", "Step", "ident", "literal", "qname", "step", "comment_steps", "owner_steps",
           "acl_steps", "regrant_steps", "creation_acl", "create_acl_steps", "default_acl", "hz"]


def hz(kind: HazardType, message: str) -> Hazard:
    return Hazard(kind, message)


def step(obj: DbObject, action: str, sql: str, *hazards: Hazard, transactional: bool = True) -> Step:
    """One step touching `obj`. Deparsed expressions in `sql` are written so that the target prints them
    back exactly as the catalog holds them (catalog/deparse.py; quoted text, such as a function body
    written as a string, is left as it is)."""
    return Step(
        sql=reproducible(sql).rstrip().rstrip(";") + ";",
        object_kind=obj.kind,
        object_name=obj.key,
        action=action,
        hazards=list(hazards),
        transactional=transactional,
    )


def comment_steps(obj: DbObject, target: str, old: str | None, new: str | None) -> list[Step]:
    """COMMENT ON `target` when the comment changed."""
    if old == new:
        return []
    value = "NULL" if new is None else literal(new)
    return [step(obj, "comment", f"COMMENT ON {target} IS {value}")]


def owner_steps(obj: DbObject, target: str, old: str | None, new: str | None) -> list[Step]:
    """ALTER ... OWNER TO when the owner changed."""
    if old == new or new is None:
        return []
    # A new object's owner is part of creating it; only a change of an existing owner is a hazard.
    hazards = [] if old is None else [hz(HazardType.AUTHZ_UPDATE, f"owner changes from {old} to {new}")]
    return [step(obj, "owner", f"ALTER {target} OWNER TO {ident(new)}", *hazards)]


_DEFAULTS = {
    "TABLE": ["DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"],
    "SEQUENCE": ["SELECT", "UPDATE", "USAGE"],
    "FUNCTION": ["EXECUTE"],
    "PROCEDURE": ["EXECUTE"],
    "TYPE": ["USAGE"],
    "DOMAIN": ["USAGE"],
    "SCHEMA": ["CREATE", "USAGE"],
}
_PUBLIC_DEFAULTS = {"FUNCTION": ["EXECUTE"], "PROCEDURE": ["EXECUTE"], "TYPE": ["USAGE"], "DOMAIN": ["USAGE"]}


def _q_role(role: str) -> str:
    return role if re.fullmatch(r"[a-z_][a-z0-9_$]*", role) else ident(role)


def default_acl(objtype: str, owner: str) -> list[str]:
    """The aclitems PostgreSQL gives a new object of this type (as rendered by the catalog queries)."""
    own = _q_role(owner)
    items = [f"{own}={p}" for p in _DEFAULTS.get(objtype, [])]
    items += [f"PUBLIC={p}" for p in _PUBLIC_DEFAULTS.get(objtype, [])]
    return sorted(items)


def _by_grantee(acl: Iterable[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in acl:
        grantee, _, priv = item.rpartition("=")
        out.setdefault(grantee, set()).add(priv)
    return out


def acl_steps(
    obj: DbObject, objtype: str, target: str, old: list[str] | None, new: list[str] | None, column: str | None = None
) -> list[Step]:
    """REVOKE/GRANT so that the privileges on `target` go from `old` to `new`."""
    on = f"{objtype} {target}" if objtype != "COLUMN" else f"TABLE {target}"
    cols = f" ({ident(column)})" if column else ""
    return regrant_steps(
        obj, old, new, hz(HazardType.AUTHZ_UPDATE, "privilege change"),
        revoke=lambda grantee: f"REVOKE ALL{cols} ON {on} FROM {grantee}",
        grant=lambda privileges, grantee: f"GRANT {', '.join(p + cols for p in privileges)} ON {on} TO {grantee}")


def regrant_steps(obj: DbObject, old: list[str] | None, new: list[str] | None, hazard: Hazard, *,
                  revoke: Callable[[str], str], grant: Callable[[list[str], str], str]) -> list[Step]:
    """For each grantee whose privileges change: REVOKE ALL, then GRANT the new ones (`PRIV*` items
    WITH GRANT OPTION). `revoke(grantee)` and `grant(privileges, grantee)` render the statements."""
    old_g, new_g = _by_grantee(old or []), _by_grantee(new or [])
    steps: list[Step] = []
    for grantee in sorted(set(old_g) | set(new_g)):
        if old_g.get(grantee, set()) == new_g.get(grantee, set()):
            continue
        if grantee in old_g:
            steps.append(step(obj, "revoke", revoke(grantee), hazard))
        privs = new_g.get(grantee, set())
        plain = sorted(p for p in privs if not p.endswith("*"))
        grantable = sorted(p[:-1] for p in privs if p.endswith("*"))
        if plain:
            steps.append(step(obj, "grant", grant(plain, grantee), hazard))
        if grantable:
            steps.append(step(obj, "grant", grant(grantable, grantee) + " WITH GRANT OPTION", hazard))
    return steps


DEFACL_OBJTYPE = {"TABLE": "r", "SEQUENCE": "S", "FUNCTION": "f", "PROCEDURE": "f", "TYPE": "T", "DOMAIN": "T",
                  "SCHEMA": "n"}


def creation_acl(obj: DbObject, objtype: str, ctx: DiffContext) -> list[str]:
    """The aclitems a new object gets: PostgreSQL's defaults, or the creating role's default privileges
    (global, plus the schema's) as the plan leaves them (their changes run before any CREATE), with the
    creator's own items moved to the owner (ALTER ... OWNER TO does that)."""
    owner = obj.attrs.get("owner") or ""
    creator = ctx.current.role or ctx.desired.role or owner
    code = DEFACL_OBJTYPE[objtype]
    glob = ctx.desired.objects.get(f"defacl:{creator}..{code}")
    items = list(glob.attrs["acl"]) if glob else default_acl(objtype, creator)
    in_schema = ctx.desired.objects.get(f"defacl:{creator}.{obj.schema}.{code}") if obj.schema else None
    if in_schema and objtype != "SCHEMA":
        items += in_schema.attrs["acl"]
    if owner and owner != creator:
        theirs, mine = _q_role(creator), _q_role(owner)
        items = [f"{mine}={item.rpartition('=')[2]}" if item.rpartition("=")[0] == theirs else item for item in items]
    return sorted(set(items))


def create_acl_steps(obj: DbObject, objtype: str, target: str, ctx: DiffContext) -> list[Step]:
    """Privileges of a newly created object, relative to what it gets when created."""
    return acl_steps(obj, objtype, target, creation_acl(obj, objtype, ctx), obj.attrs.get("acl"))


def cluster_steps(obj: DbObject, table_ref: str, index_name: str, old: bool, new: bool, ctx: DiffContext) -> list[Step]:
    """CLUSTER ON an index (`obj`: the index, or the constraint that owns it). A table has one clustered index:
    CLUSTER ON another one moves the mark, so SET WITHOUT CLUSTER only when no index of the table takes it."""
    if old == new:
        return []
    if new:
        return [step(obj, "alter", f"ALTER TABLE {table_ref} CLUSTER ON {ident(index_name)}")]
    taken = any(o.attrs.get("clustered") for kind in ("index", "constraint")
                for o in ctx.desired.children(obj.parent or "", kind))
    return [] if taken else [step(obj, "alter", f"ALTER TABLE {table_ref} SET WITHOUT CLUSTER")]


def replica_identity_steps(obj: DbObject, table_ref: str, index_name: str, old: bool, new: bool) -> list[Step]:
    """ALTER TABLE ... REPLICA IDENTITY USING INDEX when an index becomes the replica identity."""
    if new and not old:
        return [step(obj, "alter", f"ALTER TABLE {table_ref} REPLICA IDENTITY USING INDEX {ident(index_name)}")]
    return []
