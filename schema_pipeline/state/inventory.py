"""Object inventory of a desired state: what it declares and where (used by review and the UI)."""

from __future__ import annotations

from collections import Counter

from schema_pipeline.state.classify import classify
from schema_pipeline.state.ddl import created_object
from schema_pipeline.state.lexer import code_tokens
from schema_pipeline.state.model import DeclaredObject, DesiredState, Statement
from schema_pipeline.state.resolve import default_schemas


def declared_object(stmt: Statement, default_schema: str = "public") -> DeclaredObject | None:
    """The object a CREATE statement declares, or None for other statements."""
    if stmt.session_only or stmt.run_once or (stmt.kind and not stmt.kind.startswith("CREATE ")):
        return None
    toks = code_tokens(stmt.sql)
    if not stmt.kind and not classify(toks).startswith("CREATE "):
        return None
    obj = created_object(toks, default_schema)
    if obj is None or not obj.name:
        return None
    return DeclaredObject(obj.kind, obj.qualified, stmt.file, stmt.line)


def object_inventory(state: DesiredState) -> list[DeclaredObject]:
    """Every object the state's CREATE statements declare, in load order."""
    out: list[DeclaredObject] = []
    for stmt, schema in zip(state.statements, default_schemas(state.statements), strict=True):
        obj = declared_object(stmt, schema)
        if obj is not None:
            out.append(obj)
    return out


def count_by_kind(objects: list[DeclaredObject]) -> dict[str, int]:
    """Object counts by kind, e.g. {"table": 12, "index": 30}."""
    return dict(sorted(Counter(o.kind for o in objects).items()))
