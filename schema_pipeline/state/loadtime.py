"""How a state statement is run in the plan database: materialized views WITH NO DATA.

The plan database does not run the queries of materialized views: each is created `WITH NO DATA`
(PostgreSQL then neither plans nor runs its query), and whether the state declared it populated is kept
aside so the desired catalog still says so. The rewritten text is parsed again by libpg_query and used
only when it is the same statement with WITH NO DATA.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from pglast import parser as pg_parser

from schema_pipeline.state.model import Statement

_TRAILING_DATA = re.compile(r"\s+WITH\s+(NO\s+)?DATA\s*;?\s*\Z", re.IGNORECASE)


@dataclass(frozen=True)
class PlanDbText:
    """What the plan database runs for a statement, and what the state declared."""

    sql: str
    populated: bool  # a materialized view: declared WITH DATA (the default) rather than WITH NO DATA


def _tree(sql: str) -> dict | None:
    try:
        stmts = json.loads(pg_parser.parse_sql_json(sql)).get("stmts") or []
    except pg_parser.ParseError:
        return None
    return stmts[0]["stmt"] if len(stmts) == 1 else None


def _matview(tree: dict | None) -> dict | None:
    node = (tree or {}).get("CreateTableAsStmt")
    return node if node and node.get("objtype") == "OBJECT_MATVIEW" else None


@lru_cache(maxsize=4096)
def _without_data(sql: str) -> PlanDbText | None:
    node = _matview(_tree(sql))
    if node is None:
        return None
    populated = not (node.get("into") or {}).get("skipData")
    body = sql.rstrip().removesuffix(";").rstrip()
    m = _TRAILING_DATA.search(body + " ")
    text = (body[: m.start()] if m else body) + "\nWITH NO DATA"
    rewritten = _matview(_tree(text))
    same_query = rewritten is not None and rewritten.get("query") == node.get("query") \
        and (rewritten.get("into") or {}).get("skipData")
    return PlanDbText(text if same_query else sql, populated)


def matview_without_data(stmt: Statement) -> PlanDbText | None:
    """For CREATE MATERIALIZED VIEW: the same statement ending in WITH NO DATA (else None)."""
    if stmt.node and stmt.node != "CreateTableAsStmt":
        return None
    if not stmt.node and "materialized" not in stmt.sql[:200].lower():
        return None
    return _without_data(stmt.sql)
