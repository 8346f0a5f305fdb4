"""Typed catalog model of a PostgreSQL schema and its fast introspection."""

from schema_pipeline.catalog.introspect import introspect
from schema_pipeline.catalog.model import (
    BOOKKEEPING_SCHEMA,
    Catalog,
    ColumnSummary,
    DbObject,
    TableSummary,
    node_id,
)

__all__ = [
    "BOOKKEEPING_SCHEMA",
    "Catalog",
    "ColumnSummary",
    "DbObject",
    "TableSummary",
    "introspect",
    "node_id",
]
