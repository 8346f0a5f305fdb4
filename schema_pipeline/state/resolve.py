"""Name resolution helpers: the default schema in effect at each statement (SET search_path)."""

from __future__ import annotations

import json

from pglast import parser as pg_parser

from schema_pipeline.state.model import Statement
from schema_pipeline.state.policy import first_schema, search_path_value


def _search_path_of(stmt: Statement) -> str | None:
    """The search_path a session statement sets (SET search_path, pg_dump's set_config line), if any."""
    try:
        tree = json.loads(pg_parser.parse_sql_json(stmt.sql))
    except pg_parser.ParseError:
        return None
    stmts = tree.get("stmts") or []
    if len(stmts) != 1:
        return None
    ((node_type, node),) = stmts[0]["stmt"].items()
    return search_path_value(node_type, node)


def default_schemas(statements: list[Statement]) -> list[str]:
    """The default schema in effect for each statement (reset to public at each new file)."""
    out: list[str] = []
    current = "public"
    last_file: str | None = None
    for s in statements:
        if s.file != last_file:
            current = "public"
            last_file = s.file
        out.append(current)
        if s.session_only and s.kind in ("SET", "SELECT") and (path := _search_path_of(s)) is not None:
            current = first_schema(path)
    return out
