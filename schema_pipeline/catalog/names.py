"""SQL identifier quoting shared by the catalog and the SQL generators."""

from __future__ import annotations


def ident(name: str) -> str:
    """Always-quoted SQL identifier (safe for keywords, mixed case and special characters)."""
    return '"' + name.replace('"', '""') + '"'


def qname(schema: str | None, name: str) -> str:
    """Quoted schema-qualified name."""
    return f"{ident(schema)}.{ident(name)}" if schema else ident(name)


def literal(value: str) -> str:
    """SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
