"""Declared conversions: `-- schema-pipeline: using EXPRESSION` on a column of a CREATE TABLE.

On the column's line (trailing) or on the line directly above it, the comment says how the column's values
are converted when its type changes: the plan writes `ALTER COLUMN ... TYPE ... USING EXPRESSION` instead of a
cast (and, where PostgreSQL has no cast, instead of deleting the values). The expression is checked here to be
one SQL expression (libpg_query); PostgreSQL checks the rest when the plan is rehearsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from pglast import parser as pg_parser

from schema_pipeline.errors import StateError
from schema_pipeline.state.splitter import LineIndex, Piece

USING_RE = re.compile(r"schema-pipeline:\s*using\b[ \t]*(.*?)\s*(?:\*/)?\s*$", re.IGNORECASE | re.MULTILINE)


def _one_expression(expr: str) -> bool:
    """True when `expr` is exactly one SQL expression (no second statement, no FROM, no comment tail)."""
    if not expr or "--" in expr or "/*" in expr:
        return False
    try:
        stmts = json.loads(pg_parser.parse_sql_json(f"SELECT ({expr})")).get("stmts") or []
    except pg_parser.ParseError:
        return False
    if len(stmts) != 1:
        return False
    select = (stmts[0].get("stmt") or {}).get("SelectStmt")
    return bool(select) and set(select) <= {"targetList", "limitOption", "op"} and len(select["targetList"]) == 1


def collect_conversions(node_type: str, node: dict, piece: Piece, index: LineIndex, char: Callable[[int], int],
                        default_schema: str, file: str) -> tuple[dict[str, str], list[StateError]]:
    """{"schema.table.column": expression} declared in one CREATE TABLE statement, and the errors of
    misplaced or malformed declarations."""
    comments = [c for c in (*piece.leading_comments, *piece.inner_comments) if "schema-pipeline" in c.text]
    if not comments:
        return {}, []
    directives = [(c, m) for c in comments for m in USING_RE.finditer(c.text)]
    if not directives:
        return {}, []
    if node_type != "CreateStmt":
        c, m = directives[0]
        return {}, [StateError("a `schema-pipeline: using` conversion belongs on a column of a CREATE TABLE (on the "
                               "column's line or the line directly above it)", file, *index.locate(c.start + m.start()))]
    rel = node.get("relation") or {}
    table = f"{rel.get('schemaname') or default_schema}.{rel.get('relname', '')}"
    by_line: dict[int, str] = {}
    for elt in node.get("tableElts") or ():
        col = elt.get("ColumnDef")
        if col and col.get("location", -1) >= 0:
            by_line.setdefault(index.locate(char(col["location"]))[0], col.get("colname", ""))
    out: dict[str, str] = {}
    errors: list[StateError] = []
    for c, m in directives:
        line, column = index.locate(c.start + m.start())
        name = by_line.get(line) or by_line.get(line + 1)
        expr = m.group(1).strip()
        if name is None:
            errors.append(StateError("a `schema-pipeline: using` conversion belongs on a column's line or on the line "
                                     f"directly above it; no column of {table} is there", file, line, column))
        elif not _one_expression(expr):
            errors.append(StateError(f"`schema-pipeline: using {expr}`: the conversion of {table}.{name} must be one "
                                     "SQL expression (of the column's old value, by its name), e.g. "
                                     f"`using {name}::text::uuid`", file, line, column))
        else:
            out[f"{table}.{name}"] = expr
    return out, errors
