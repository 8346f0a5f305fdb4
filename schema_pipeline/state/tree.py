"""Small readers of libpg_query's JSON parse tree (as pglast's parse_sql_json returns it)."""

from __future__ import annotations


def sval(node: dict | None) -> str | None:
    """The string of a String/A_Const node."""
    if not node:
        return None
    if "String" in node:
        return node["String"].get("sval", "")
    if "A_Const" in node:
        const = node["A_Const"]
        if "sval" in const:
            return const["sval"].get("sval", "")
        if "ival" in const:
            return str(const["ival"].get("ival", 0))
        if "boolval" in const:
            return "true" if const["boolval"].get("boolval") else "false"
        if "fval" in const:
            return const["fval"].get("fval", "")
    if "TypeCast" in node:
        return sval(node["TypeCast"].get("arg"))
    return None


def name_list(items: list | None) -> list[str]:
    """The strings of a list of String nodes (a qualified name)."""
    return [sval(i) or "" for i in items or ()]
