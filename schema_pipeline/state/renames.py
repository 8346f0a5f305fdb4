"""Declared renames: `-- schema-pipeline: renamed from OLD_NAME` comments.

Above a CREATE statement (table, index, type, view, sequence, ...) the comment renames the
object; on a column or constraint line of a CREATE TABLE (trailing, or on the line directly
above it) it renames that column or constraint. Only parsed and recorded here.
"""

from __future__ import annotations

import re

from schema_pipeline.state.ddl import created_object, parse_alter_table, parse_create_table
from schema_pipeline.state.lexer import Token
from schema_pipeline.state.splitter import LineIndex, Piece

RENAME_RE = re.compile(r'schema-pipeline:\s*renamed\s+from\s+("(?:[^"]|"")+"(?:\.\S+)?|\S+)', re.IGNORECASE)


def _old_name(raw: str) -> str:
    parts = re.findall(r'"((?:[^"]|"")+)"|([^."]+)', raw.rstrip(";,*/ "))
    return ".".join(q.replace('""', '"') if q else u.lower() for q, u in parts)


def _directives(comments: list[Token], index: LineIndex) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for c in comments:
        m = RENAME_RE.search(c.text)
        if m:
            line, _ = index.locate(c.start + m.start())
            out.append((line, _old_name(m.group(1))))
    return out


def _directly_above(comments: list[Token], index: LineIndex, stmt_line: int) -> str | None:
    """The rename directive in the comment block that ends on the line above `stmt_line`."""
    expected = stmt_line - 1
    for c in reversed(comments):
        first_line, _ = index.locate(c.start)
        last_line, _ = index.locate(max(c.end - 1, c.start))
        if last_line not in (expected, stmt_line):
            break
        m = RENAME_RE.search(c.text)
        if m:
            return _old_name(m.group(1))
        expected = first_line - 1
    return None


def collect_renames(
    text: str, index: LineIndex, piece: Piece, toks: list[Token], kind: str, default_schema: str
) -> dict[tuple[str, str], str]:
    """Rename declarations attached to one statement: {(kind, qualified new name): old name}."""
    out: dict[tuple[str, str], str] = {}
    has_inner = any("schema-pipeline" in c.text for c in piece.inner_comments)
    has_lead = any("schema-pipeline" in c.text for c in piece.leading_comments)
    if not has_inner and not has_lead:
        return out
    if kind.startswith("CREATE ") and has_lead:
        old = _directly_above(piece.leading_comments, index, piece.line)
        obj = created_object(toks, default_schema)
        if old is not None and obj is not None and obj.name:
            out[(obj.kind, obj.qualified)] = old
    table_name: str | None = None
    targets: list[tuple[int, str, str]] = []  # (line, kind, qualified name)
    if kind == "CREATE TABLE" and has_inner:
        table = parse_create_table(toks, default_schema)
        if table is not None:
            table_name = table.qualified
            for col in table.columns:
                targets.append((index.locate(toks[col.token].start)[0], "column", f"{table_name}.{col.name}"))
            for con in table.constraints:
                if con.name and not con.column_level:
                    targets.append(
                        (index.locate(toks[con.token].start)[0], "constraint", f"{table_name}.{con.name}")
                    )
    elif kind == "ALTER TABLE":
        alter = parse_alter_table(toks, default_schema)
        if alter is not None:
            table_name = f"{alter.schema}.{alter.name}"
            for con in alter.constraints:
                if con.name:
                    targets.append(
                        (index.locate(toks[con.token].start)[0], "constraint", f"{table_name}.{con.name}")
                    )
            if has_lead:
                old = _directly_above(piece.leading_comments, index, piece.line)
                if old is not None and len(alter.constraints) == 1 and alter.constraints[0].name:
                    out[("constraint", f"{table_name}.{alter.constraints[0].name}")] = old
    if targets:
        by_line: dict[int, tuple[str, str]] = {}
        for line, k, name in targets:
            by_line.setdefault(line, (k, name))
        for line, old in _directives(piece.inner_comments, index):
            target = by_line.get(line) or by_line.get(line + 1)
            if target is not None:
                out[target] = old
    return out
