"""What a CREATE statement declares, read from libpg_query's parse tree: (name group, identity, label).

Two statements that declare the same identity in one group declare one object twice (the loader
refuses that). Relations, indexes and sequences share one namespace; so do types and domains; so do
functions, procedures and aggregates (their identity includes the argument types).
"""

from __future__ import annotations

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
