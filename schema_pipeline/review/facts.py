"""What the state declares, read once for all state rules: tables, constraints, indexes, views."""

from __future__ import annotations

from dataclasses import dataclass, field

from schema_pipeline.state.classify import classify
from schema_pipeline.state.ddl import (
    ColumnDef,
    ConstraintDef,
    CreatedObject,
    IndexDef,
    TableDef,
    created_object,
    is_word,
    parse_alter_table,
    parse_create_index,
    parse_create_table,
    qualify,
    read_name,
)
from schema_pipeline.state.lexer import Token, based_tokens
from schema_pipeline.state.model import DesiredState, Statement
from schema_pipeline.state.resolve import default_schemas


@dataclass
class Source:
    """A statement with its code tokens, for locating findings at a token."""

    stmt: Statement
    toks: list[Token]
    base: int

    def position(self, token_index: int) -> tuple[int, int]:
        """1-based (line, column) in the file of toks[token_index] (statement start if out of range)."""
        stmt = self.stmt
        if not 0 <= token_index < len(self.toks):
            return stmt.line, stmt.column
        off = self.toks[token_index].start - self.base
        nl = stmt.sql.count("\n", 0, off)
        if nl == 0:
            return stmt.line, stmt.column + off
        return stmt.line + nl, off - stmt.sql.rfind("\n", 0, off)


@dataclass
class ColumnInfo:
    col: ColumnDef
    src: Source


@dataclass
class ConstraintInfo:
    con: ConstraintDef
    src: Source


@dataclass
class TableInfo:
    tdef: TableDef
    src: Source
    columns: list[ColumnInfo] = field(default_factory=list)
    constraints: list[ConstraintInfo] = field(default_factory=list)
    commented: bool = False
    commented_columns: set[str] = field(default_factory=set)


@dataclass
class IndexInfo:
    idef: IndexDef
    src: Source


@dataclass
class ObjectInfo:
    obj: CreatedObject
    src: Source


@dataclass
class StateFacts:
    tables: dict[str, TableInfo] = field(default_factory=dict)
    indexes: list[IndexInfo] = field(default_factory=list)
    objects: list[ObjectInfo] = field(default_factory=list)
    views: list[ObjectInfo] = field(default_factory=list)
    # (table, column) comments declared before/without the table (applied after collection).
    pending_comments: list[tuple[str, str | None]] = field(default_factory=list)


def _comment_target(toks: list[Token], schema: str) -> tuple[str, str | None] | None:
    """(qualified table, column or None) of COMMENT ON TABLE/COLUMN."""
    if not (is_word(toks[1] if len(toks) > 1 else None, "on")) or len(toks) < 4:
        return None
    what = toks[2].text.lower()
    parts, _ = read_name(toks, 3)
    if what == "table" and parts:
        s, n = qualify(parts, schema)
        return f"{s}.{n}", None
    if what == "column" and len(parts) >= 2:
        col = parts[-1]
        s, n = qualify(parts[:-1], schema)
        return f"{s}.{n}", col
    return None


def collect_facts(state: DesiredState) -> StateFacts:
    """Read every statement of the state once."""
    facts = StateFacts()
    alters: list[tuple[str, Source, list[ConstraintDef], list[ColumnDef]]] = []
    for stmt, schema in zip(state.statements, default_schemas(state.statements), strict=True):
        if stmt.session_only or stmt.run_once:  # drops, and definitions replaced later (state/identity.py)
            continue
        toks, base = based_tokens(stmt.sql)
        kind = stmt.kind or classify(toks)
        if not kind.startswith(("CREATE ", "ALTER TABLE", "COMMENT")):
            continue
        src = Source(stmt, toks, base)
        obj = created_object(toks, schema) if kind.startswith("CREATE ") else None
        if kind == "CREATE TABLE":
            tdef = parse_create_table(toks, schema, obj)
            if tdef is not None:
                info = TableInfo(tdef, src)
                info.columns = [ColumnInfo(c, src) for c in tdef.columns]
                info.constraints = [ConstraintInfo(c, src) for c in tdef.constraints]
                facts.tables.setdefault(tdef.qualified, info)
        elif kind == "CREATE INDEX":
            idef = parse_create_index(toks, schema, obj)
            if idef is not None:
                facts.indexes.append(IndexInfo(idef, src))
        elif kind == "ALTER TABLE":
            alter = parse_alter_table(toks, schema)
            if alter is not None and (alter.constraints or alter.columns):
                alters.append((f"{alter.schema}.{alter.name}", src, alter.constraints, alter.columns))
            continue
        elif kind == "COMMENT":
            target = _comment_target(toks, schema)
            if target is not None:
                facts.pending_comments.append(target)
            continue
        if obj is not None and obj.name:
            oi = ObjectInfo(obj, src)
            facts.objects.append(oi)
            if obj.kind in ("view", "materialized view"):
                facts.views.append(oi)
    for table, src, cons, cols in alters:
        info = facts.tables.get(table)
        if info is None:
            continue
        info.constraints.extend(ConstraintInfo(c, src) for c in cons)
        info.columns.extend(ColumnInfo(c, src) for c in cols)
    for table, col in facts.pending_comments:
        info = facts.tables.get(table)
        if info is None:
            continue
        if col is None:
            info.commented = True
        else:
            info.commented_columns.add(col)
    return facts
