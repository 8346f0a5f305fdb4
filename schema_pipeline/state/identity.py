"""What a CREATE statement declares, read from libpg_query's parse tree: (name group, identity, label).

Two statements that declare the same identity in one group declare one object twice (the loader
refuses that). Relations, indexes and sequences share one namespace; so do types and domains; so do
functions, procedures and aggregates (their identity includes the argument types).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schema_pipeline.errors import StateError
from schema_pipeline.state.tree import name_list


def _type_name(node: dict | None) -> str:
    tn = (node or {}).get("TypeName", node) or {}
    names = name_list(tn.get("names"))
    if len(names) == 2 and names[0] == "pg_catalog":
        names = names[1:]
    return ".".join(names) + "[]" * len(tn.get("arrayBounds") or ())


def _qualify(items: list | None, default_schema: str) -> str:
    names = name_list(items)
    return ".".join(names if len(names) > 1 else [default_schema, *names])


def _rel(rel: dict | None, default_schema: str) -> str:
    rel = rel or {}
    return f"{rel.get('schemaname') or default_schema}.{rel.get('relname', '')}"


def _routine_args(params: list | None) -> str:
    args = []
    for p in params or ():
        fp = p.get("FunctionParameter", {})
        if fp.get("mode") in ("FUNC_PARAM_OUT", "FUNC_PARAM_TABLE"):
            continue
        args.append(_type_name(fp.get("argType")))
    return ",".join(args)


def declared_identity(node_type: str, node: dict, default_schema: str) -> tuple[str, str, str] | None:
    """(group, identity, label) of the object a CREATE statement declares, or None."""
    if node_type == "CreateStmt":
        name = _rel(node.get("relation"), default_schema)
        return "relation", name, f"table {name}"
    if node_type == "ViewStmt":
        name = _rel(node.get("view"), default_schema)
        return "relation", name, f"view {name}"
    if node_type == "CreateTableAsStmt":
        name = _rel((node.get("into") or {}).get("rel"), default_schema)
        kind = "materialized view" if node.get("objtype") == "OBJECT_MATVIEW" else "table"
        return "relation", name, f"{kind} {name}"
    if node_type == "CreateSeqStmt" and not node.get("if_not_exists"):
        name = _rel(node.get("sequence"), default_schema)
        return "relation", name, f"sequence {name}"
    if node_type == "IndexStmt" and node.get("idxname") and not node.get("if_not_exists"):
        schema = (node.get("relation") or {}).get("schemaname") or default_schema
        name = f"{schema}.{node['idxname']}"
        return "relation", name, f"index {name}"
    if node_type == "CompositeTypeStmt":
        name = _rel(node.get("typevar"), default_schema)
        return "type", name, f"type {name}"
    if node_type in ("CreateEnumStmt", "CreateRangeStmt"):
        name = _qualify(node.get("typeName"), default_schema)
        return "type", name, f"type {name}"
    if node_type == "CreateDomainStmt":
        name = _qualify(node.get("domainname"), default_schema)
        return "type", name, f"domain {name}"
    if node_type == "DefineStmt" and node.get("kind") == "OBJECT_TYPE" and node.get("definition"):
        name = _qualify(node.get("defnames"), default_schema)  # a shell type (no definition) is not counted
        return "type", name, f"type {name}"
    if node_type == "CreateFunctionStmt":
        name = f"{_qualify(node.get('funcname'), default_schema)}({_routine_args(node.get('parameters'))})"
        return "routine", name, f"{'procedure' if node.get('is_procedure') else 'function'} {name}"
    if node_type == "DefineStmt" and node.get("kind") == "OBJECT_AGGREGATE":
        args = node.get("args") or []
        first = args[0].get("List", {}).get("items") if args and "List" in args[0] else None
        name = f"{_qualify(node.get('defnames'), default_schema)}({_routine_args(first)})"
        return "routine", name, f"aggregate {name}"
    return None


# CREATE OR REPLACE of these kinds redefines an object the state declared earlier (pg_dump's placeholder views,
# a function written again later); the last definition wins, as in the plan database.
_REPLACEABLE = ("view", "function", "procedure", "aggregate")


def replaces(node_type: str, node: dict) -> bool:
    """True for CREATE OR REPLACE VIEW / FUNCTION / PROCEDURE / AGGREGATE."""
    return node_type in ("ViewStmt", "CreateFunctionStmt", "DefineStmt") and bool(node.get("replace"))


def only_drops(node_type: str, node: dict) -> bool:
    """DROP ..., and ALTER TABLE whose every command drops a constraint or a column default (pg_dump --clean)."""
    if node_type == "DropStmt":
        return True
    cmds = [c.get("AlterTableCmd") or {} for c in node.get("cmds") or ()] if node_type == "AlterTableStmt" else []
    return bool(cmds) and all(c.get("subtype") == "AT_DropConstraint"
                              or (c.get("subtype") == "AT_ColumnDefault" and c.get("def") is None) for c in cmds)


_DROP_GROUPS = {
    "OBJECT_TABLE": "relation", "OBJECT_VIEW": "relation", "OBJECT_MATVIEW": "relation",
    "OBJECT_SEQUENCE": "relation", "OBJECT_INDEX": "relation", "OBJECT_TYPE": "type", "OBJECT_DOMAIN": "type",
    "OBJECT_FUNCTION": "routine", "OBJECT_PROCEDURE": "routine", "OBJECT_AGGREGATE": "routine",
    "OBJECT_ROUTINE": "routine",
}


def dropped_identities(node_type: str, node: dict, default_schema: str) -> list[tuple[str, str, bool]]:
    """(group, identity, exact) of each object a DROP statement names, for the kinds `declared_identity` knows;
    `exact` is False for a routine named without its argument list (the identity is then "schema.name(")."""
    group = _DROP_GROUPS.get(node.get("removeType") or "") if node_type == "DropStmt" else None
    if group is None:
        return []
    out = []
    for obj in node.get("objects") or ():
        if group == "routine":
            owa = obj.get("ObjectWithArgs") or {}
            name = _qualify(owa.get("objname"), default_schema)
            if owa.get("args_unspecified"):
                out.append((group, f"{name}(", False))
            elif owa.get("objfuncargs") is not None:
                out.append((group, f"{name}({_routine_args(owa.get('objfuncargs'))})", True))
            else:
                args = ",".join(_type_name(a) for a in owa.get("objargs") or ())
                out.append((group, f"{name}({args})", True))
        elif "TypeName" in obj:
            out.append((group, _qualify(obj["TypeName"].get("names"), default_schema), True))
        else:
            out.append((group, _qualify((obj.get("List") or {}).get("items"), default_schema), True))
    return out


@dataclass
class _Declared:
    file: str
    line: int
    column: int
    label: str  # "view public.w"

    @property
    def kind(self) -> str:
        """"view" for "view public.w" (the labels `declared_identity` writes)."""
        return next((k for k in _KINDS if self.label.startswith(k + " ")), "")


_KINDS = ("materialized view", "view", "table", "sequence", "index", "type", "domain", "function", "procedure",
          "aggregate")


@dataclass
class Declarations:
    """What the state's statements declare, followed in load order as the plan database would have it.

    Each object is declared once. Two idioms of pg_dump's output redefine or drop an object on purpose:
    a placeholder view (or function) declared first and redefined later by CREATE OR REPLACE, and the
    DROP ... [IF EXISTS] statements of a `--clean` dump. A later CREATE OR REPLACE of the same kind replaces
    the earlier definition; a DROP ends a declaration, which a later statement may declare again. Definitions
    that a later statement replaces or drops, every DROP, and every ALTER TABLE that only drops (pg_dump --clean
    writes DROP CONSTRAINT and ALTER COLUMN ... DROP DEFAULT) are run once, where they are written
    (`Statement.run_once`): the plan database ends as psql would leave an empty database (an object declared and
    then dropped for good is not in the desired state).
    """

    live: dict[tuple[str, str], _Declared] = field(default_factory=dict)
    run_once: set[tuple[str, int, int]] = field(default_factory=set)  # (file, line, column) of statements

    def create(self, group: str, identity: str, label: str, replace: bool, file: str, line: int,
               column: int) -> list[StateError]:
        key, new = (group, identity), _Declared(file, line, column, label)
        prev = self.live.get(key)
        if prev is None:
            self.live[key] = new
            return []
        if replace and prev.kind == new.kind and new.kind in _REPLACEABLE:
            self.run_once.add((prev.file, prev.line, prev.column))
            self.live[key] = new
            return []
        replace_hint = (" (a later CREATE OR REPLACE of the same kind may redefine it)"
                        if prev.kind == new.kind and new.kind in _REPLACEABLE else "")
        return [
            StateError(f"duplicate definition: {label} is already defined at {prev.file}:{prev.line} ({prev.label}); "
                       f"each object must be declared exactly once{replace_hint}", file, line, column),
            StateError(f"duplicate definition: {prev.label} is defined again at {file}:{line}",
                       prev.file, prev.line, prev.column),
        ]

    def drop(self, targets: list[tuple[str, str, bool]], file: str, line: int, column: int) -> None:
        """A statement that only drops (`only_drops`), naming `targets` (`dropped_identities`)."""
        self.run_once.add((file, line, column))
        for group, identity, exact in targets:
            if exact:
                keys = [(group, identity)] if (group, identity) in self.live else []
            else:
                keys = [k for k in self.live if k[0] == group and k[1].startswith(identity)]
                keys = keys if len(keys) == 1 else []  # ambiguous: PostgreSQL refuses the DROP
            for key in keys:
                prev = self.live.pop(key)
                self.run_once.add((prev.file, prev.line, prev.column))
