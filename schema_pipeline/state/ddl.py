"""Light DDL reading over tokens: created object names, CREATE TABLE bodies, indexes, constraints.

This is not a full parser. It reads the shapes that declarations (and pg_dump) use and returns
None where it does not understand something; PostgreSQL remains the semantic authority.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schema_pipeline.state.classify import CREATE_MODIFIERS, object_type, words_of
from schema_pipeline.state.lexer import COMMENT, PUNCT, QIDENT, WORD, Token, ident_value

_IDENT = (WORD, QIDENT)
_TIGHTEN = ((" (", "("), ("( ", "("), (" )", ")"), (" ,", ","), (" [", "["), ("[ ", "["), (" ]", "]"))


def code_only(tokens: list[Token] | tuple[Token, ...]) -> list[Token]:
    """Tokens without comments."""
    return [t for t in tokens if t.kind != COMMENT]


def is_word(tok: Token | None, *words: str) -> bool:
    return tok is not None and tok.kind == WORD and tok.text.lower() in words


def tok_at(toks: list[Token], i: int) -> Token | None:
    return toks[i] if 0 <= i < len(toks) else None


def read_name(toks: list[Token], i: int) -> tuple[list[str], int]:
    """Read `a`, `a.b` or `a.b.c` starting at i; returns the parts (folded) and the next index."""
    parts: list[str] = []
    if i < len(toks) and toks[i].kind in _IDENT:
        parts.append(ident_value(toks[i]))
        i += 1
        while i + 1 < len(toks) and toks[i].text == "." and toks[i + 1].kind in _IDENT:
            parts.append(ident_value(toks[i + 1]))
            i += 2
    return parts, i


def skip_if_not_exists(toks: list[Token], i: int) -> int:
    if (
        is_word(tok_at(toks, i), "if")
        and is_word(tok_at(toks, i + 1), "not")
        and is_word(tok_at(toks, i + 2), "exists")
    ):
        return i + 3
    return i


def skip_if_exists(toks: list[Token], i: int) -> int:
    if is_word(tok_at(toks, i), "if") and is_word(tok_at(toks, i + 1), "exists"):
        return i + 2
    return i


def matching_paren(toks: list[Token], i: int) -> int:
    """Index of the ')' matching the '(' at i (or len(toks) when unbalanced)."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t.kind == PUNCT:
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
                if depth == 0:
                    return j
    return len(toks)


def split_commas(toks: list[Token], start: int, end: int) -> list[tuple[int, int]]:
    """Top-level comma-separated ranges [a, b) of toks[start:end]."""
    out: list[tuple[int, int]] = []
    depth = 0
    a = start
    for j in range(start, end):
        t = toks[j]
        if t.kind == PUNCT:
            if t.text in "([":
                depth += 1
            elif t.text in ")]":
                depth -= 1
            elif t.text == "," and depth == 0:
                out.append((a, j))
                a = j + 1
    if a < end:
        out.append((a, end))
    return out


def qualify(parts: list[str], default_schema: str) -> tuple[str, str]:
    """(schema, name) of a possibly qualified name; a three-part name drops the database part."""
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return default_schema, parts[0] if parts else ""


def text_of(toks: list[Token], a: int, b: int) -> str:
    """Normalised text of toks[a:b]: tokens joined by single spaces, words lower-cased."""
    text = " ".join(t.text.lower() if t.kind == WORD else t.text for t in toks[a:b])
    for a_, b_ in _TIGHTEN:
        text = text.replace(a_, b_)
    return text


# Object kinds whose duplicate declarations are errors, by the namespace they share in PostgreSQL
# (a table and an index of the same name collide; functions are identified with their arguments).
DUPLICATE_GROUPS = {
    "table": "relation",
    "view": "relation",
    "materialized view": "relation",
    "index": "relation",
    "sequence": "relation",
    "foreign table": "relation",
    "type": "type",
    "domain": "type",
    "function": "routine",
    "procedure": "routine",
    "aggregate": "routine",
}


@dataclass
class CreatedObject:
    """The object a CREATE statement declares."""

    kind: str  # "table", "index", "view", "materialized view", "function", ...
    schema: str | None  # None for objects outside schemas (schema itself, extension, language, ...)
    name: str
    args: str | None = None  # functions: normalised argument list text
    table: str | None = None  # index/trigger/policy: qualified table name
    name_token: int = -1  # index of the name token in the code tokens (-1: unnamed)
    or_replace: bool = False
    if_not_exists: bool = False

    @property
    def qualified(self) -> str:
        base = f"{self.schema}.{self.name}" if self.schema else self.name
        return f"{base}({self.args})" if self.args is not None else base


_SCHEMA_LESS = {
    "schema",
    "extension",
    "language",
    "event trigger",
    "foreign data wrapper",
    "server",
    "publication",
    "subscription",
    "access method",
    "database",
    "role",
    "user",
    "group",
    "tablespace",
    "user mapping",
    "cast",
    "transform",
}


def created_object(toks: list[Token], default_schema: str) -> CreatedObject | None:
    """Name of the object a CREATE statement (code tokens) declares, or None if unrecognised."""
    w = words_of(toks, 12)
    if not w or w[0] != "create":
        return None
    i = 1
    or_replace = False
    while i < len(w) and w[i] in CREATE_MODIFIERS:
        if w[i] == "replace":
            or_replace = True
        i += 1
    kind, i = object_type(w, i)
    if not kind:
        return None
    if kind == "index":
        if is_word(tok_at(toks, i), "concurrently"):
            i += 1
        j = skip_if_not_exists(toks, i)
        ine = j != i
        i = j
        name = ""
        name_tok = -1
        if not is_word(tok_at(toks, i), "on"):
            parts, i2 = read_name(toks, i)
            if parts:
                name, name_tok, i = parts[-1], i, i2
        if not is_word(tok_at(toks, i), "on"):
            return None
        i += 1
        if is_word(tok_at(toks, i), "only"):
            i += 1
        parts, _ = read_name(toks, i)
        if not parts:
            return None
        schema, table = qualify(parts, default_schema)
        return CreatedObject("index", schema, name, None, f"{schema}.{table}", name_tok, or_replace, ine)
    j = skip_if_not_exists(toks, i)
    ine = j != i
    i = j
    if kind == "schema":
        if is_word(tok_at(toks, i), "authorization"):
            parts, _ = read_name(toks, i + 1)
            return CreatedObject(
                "schema", None, parts[0] if parts else "", name_token=i + 1, if_not_exists=ine
            )
        parts, _ = read_name(toks, i)
        return (
            CreatedObject("schema", None, parts[0] if parts else "", name_token=i, if_not_exists=ine)
            if parts
            else None
        )
    if kind == "cast":
        return CreatedObject("cast", None, text_of(toks, i, matching_paren(toks, i) + 1))
    if kind == "user mapping":
        return CreatedObject("user mapping", None, text_of(toks, i, len(toks)))
    if kind == "operator":
        # CREATE OPERATOR schema.+ (...)
        end = next((k for k in range(i, len(toks)) if toks[k].text == "("), len(toks))
        parts = [t.text for t in toks[i:end] if t.text != "."]
        schema = parts[0] if len(parts) == 2 else default_schema
        return CreatedObject("operator", schema, parts[-1] if parts else "", name_token=i)
    parts, after = read_name(toks, i)
    if not parts:
        return None
    name_tok = i
    if kind in _SCHEMA_LESS:
        return CreatedObject(
            kind, None, parts[-1], name_token=name_tok, or_replace=or_replace, if_not_exists=ine
        )
    schema, name = qualify(parts, default_schema)
    obj = CreatedObject(kind, schema, name, name_token=name_tok, or_replace=or_replace, if_not_exists=ine)
    if kind in ("function", "procedure", "aggregate") and tok_at(toks, after) and toks[after].text == "(":
        close = matching_paren(toks, after)
        obj.args = text_of(toks, after + 1, close)
    elif kind in ("trigger", "policy", "rule"):
        k = after
        while k < len(toks) and not is_word(toks[k], "on"):
            k += 1
        if k < len(toks):
            k += 1
            if is_word(tok_at(toks, k), "only"):
                k += 1
            tparts, _ = read_name(toks, k)
            if tparts:
                ts, tn = qualify(tparts, default_schema)
                obj.table = f"{ts}.{tn}"
                obj.schema = ts
    return obj


def is_shell_type(toks: list[Token], obj: CreatedObject) -> bool:
    """`CREATE TYPE name;` — a placeholder pg_dump writes before a base type's definition."""
    if obj.kind != "type" or obj.name_token < 0:
        return False
    _, after = read_name(toks, obj.name_token)
    return after >= len(toks) or toks[after].text == ";"


# ---------------------------------------------------------------- tables and constraints


@dataclass
class ColumnDef:
    name: str
    type_text: str  # normalised type text, e.g. "character varying ( 20 )" or "varchar ( 20 )"
    type_words: list[str]  # lower-cased words of the type, e.g. ["varchar"]
    token: int  # index of the column name token
    not_null: bool = False
    has_default: bool = False
    identity: bool = False
    generated: bool = False


@dataclass
class ConstraintDef:
    kind: str  # "primary key" | "unique" | "foreign key" | "check" | "exclude"
    name: str | None
    columns: list[str]
    token: int  # index of the token that starts it (CONSTRAINT or the keyword)
    ref_table: str | None = None
    ref_columns: list[str] = field(default_factory=list)
    not_valid: bool = False
    column_level: bool = False
    on_delete_cascade: bool = False


@dataclass
class TableDef:
    schema: str
    name: str
    columns: list[ColumnDef]
    constraints: list[ConstraintDef]
    partition_of: bool = False  # PARTITION OF / OF type: columns come from elsewhere
    name_token: int = -1

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


_TABLE_CONSTRAINT_WORDS = ("constraint", "primary", "unique", "foreign", "check", "exclude", "like")


def _ident_list(toks: list[Token], open_idx: int) -> tuple[list[str], int]:
    """Column names of a parenthesised list at open_idx; expressions yield "" entries."""
    close = matching_paren(toks, open_idx)
    cols: list[str] = []
    for a, b in split_commas(toks, open_idx + 1, close):
        if a < b and toks[a].kind in _IDENT:
            cols.append(ident_value(toks[a]))
        else:
            cols.append("")
    return cols, close + 1


def _parse_references(toks: list[Token], i: int, end: int, default_schema: str, con: ConstraintDef) -> int:
    """Read `REFERENCES t [(cols)] [ON DELETE ...]` from i (pointing at REFERENCES)."""
    parts, i = read_name(toks, i + 1)
    if parts:
        s, n = qualify(parts, default_schema)
        con.ref_table = f"{s}.{n}"
    if i < end and toks[i].text == "(":
        con.ref_columns, i = _ident_list(toks, i)
    for k in range(i, min(end, len(toks)) - 2):
        if is_word(toks[k], "on") and is_word(toks[k + 1], "delete") and is_word(toks[k + 2], "cascade"):
            con.on_delete_cascade = True
    return i


def parse_constraint(toks: list[Token], a: int, b: int, default_schema: str) -> ConstraintDef | None:
    """A table constraint in toks[a:b] (as in CREATE TABLE or ALTER TABLE ... ADD)."""
    i = a
    name = None
    if is_word(tok_at(toks, i), "constraint"):
        parts, i = read_name(toks, i + 1)
        name = parts[-1] if parts else None
    t = tok_at(toks, i)
    if t is None or t.kind != WORD:
        return None
    w = t.text.lower()
    con: ConstraintDef
    if w == "primary" and is_word(tok_at(toks, i + 1), "key"):
        con = ConstraintDef("primary key", name, [], a)
        i += 2
    elif w == "unique":
        con = ConstraintDef("unique", name, [], a)
        i += 1
        if is_word(tok_at(toks, i), "nulls"):
            i += 2 + (1 if is_word(tok_at(toks, i + 1), "not") else 0)
    elif w == "foreign" and is_word(tok_at(toks, i + 1), "key"):
        con = ConstraintDef("foreign key", name, [], a)
        i += 2
    elif w == "check":
        con = ConstraintDef("check", name, [], a)
    elif w == "exclude":
        con = ConstraintDef("exclude", name, [], a)
    else:
        return None
    if con.kind in ("primary key", "unique", "foreign key") and i < b and toks[i].text == "(":
        con.columns, i = _ident_list(toks, i)
    if con.kind == "foreign key":
        while i < b and not is_word(toks[i], "references"):
            i += 1
        if i < b:
            _parse_references(toks, i, b, default_schema, con)
    con.not_valid = any(
        is_word(toks[k], "not") and is_word(tok_at(toks, k + 1), "valid") for k in range(a, b)
    )
    return con


def _parse_column(toks: list[Token], a: int, b: int, table: TableDef, default_schema: str) -> None:
    name = ident_value(toks[a])
    col = ColumnDef(name, "", [], a)
    i = a + 1
    # The type runs until a constraint keyword at depth 0.
    stop_words = (
        "constraint",
        "not",
        "null",
        "default",
        "primary",
        "unique",
        "references",
        "check",
        "generated",
        "collate",
        "compression",
        "storage",
        "deferrable",
        "initially",
    )
    j = i
    depth = 0
    while j < b:
        t = toks[j]
        if t.kind == PUNCT and t.text in "([":
            depth += 1
        elif t.kind == PUNCT and t.text in ")]":
            depth -= 1
        elif depth == 0 and t.kind == WORD and t.text.lower() in stop_words:
            break
        j += 1
    col.type_text = text_of(toks, i, j)
    col.type_words = [t.text.lower() for t in toks[i:j] if t.kind == WORD]
    if len(col.type_words) >= 2 and col.type_words[0] == "pg_catalog":
        col.type_words = col.type_words[1:]
    # Column constraints.
    k = j
    cname: str | None = None
    while k < b:
        t = toks[k]
        if t.kind != WORD:
            k += 1
            continue
        w = t.text.lower()
        if w == "constraint":
            parts, k = read_name(toks, k + 1)
            cname = parts[-1] if parts else None
            continue
        if w == "not" and is_word(tok_at(toks, k + 1), "null"):
            col.not_null = True
            k += 2
        elif w == "default":
            col.has_default = True
            k += 1
        elif w == "generated":
            seg = [x.text.lower() for x in toks[k : min(b, k + 6)] if x.kind == WORD]
            if "identity" in seg:
                col.identity = True
                col.not_null = True
            else:
                col.generated = True
            k += 1
        elif w == "primary" and is_word(tok_at(toks, k + 1), "key"):
            table.constraints.append(ConstraintDef("primary key", cname, [name], k, column_level=True))
            col.not_null = True
            cname = None
            k += 2
        elif w == "unique":
            table.constraints.append(ConstraintDef("unique", cname, [name], k, column_level=True))
            cname = None
            k += 1
        elif w == "references":
            con = ConstraintDef("foreign key", cname, [name], k, column_level=True)
            k = _parse_references(toks, k, b, default_schema, con)
            table.constraints.append(con)
            cname = None
        elif w == "check":
            table.constraints.append(ConstraintDef("check", cname, [name], k, column_level=True))
            cname = None
            k += 1
        else:
            k += 1
    table.columns.append(col)


def parse_create_table(
    toks: list[Token], default_schema: str, obj: CreatedObject | None = None
) -> TableDef | None:
    """Columns and constraints of a CREATE TABLE (code tokens); None if not a plain CREATE TABLE."""
    obj = obj or created_object(toks, default_schema)
    if obj is None or obj.kind != "table" or obj.name_token < 0:
        return None
    _, i = read_name(toks, obj.name_token)
    table = TableDef(obj.schema or default_schema, obj.name, [], [], name_token=obj.name_token)
    if is_word(tok_at(toks, i), "partition", "of"):
        table.partition_of = True
        while i < len(toks) and toks[i].text != "(":
            i += 1
        if i >= len(toks):
            return table
    if i >= len(toks) or toks[i].text != "(":
        return None  # CREATE TABLE ... AS, or something unusual
    close = matching_paren(toks, i)
    for a, b in split_commas(toks, i + 1, close):
        if a >= b:
            continue
        first = toks[a]
        # These words are reserved: a column named like them must be quoted (a QIDENT).
        if first.kind == WORD and first.text.lower() in _TABLE_CONSTRAINT_WORDS:
            if first.text.lower() == "like":
                table.partition_of = True
                continue
            con = parse_constraint(toks, a, b, default_schema)
            if con is not None:
                table.constraints.append(con)
            continue
        if first.kind in _IDENT:
            _parse_column(toks, a, b, table, default_schema)
    rest = [t.text.lower() for t in toks[close + 1 :] if t.kind == WORD]
    if "inherits" in rest:
        table.partition_of = True  # columns partly inherited: skip rules that need all columns
    return table


@dataclass
class AlterTableAdd:
    """Things an ALTER TABLE adds: constraints and columns (pg_dump adds PKs/FKs this way)."""

    schema: str
    name: str
    constraints: list[ConstraintDef]
    columns: list[ColumnDef]


def parse_alter_table(toks: list[Token], default_schema: str) -> AlterTableAdd | None:
    """ADD CONSTRAINT / ADD COLUMN actions of an ALTER TABLE (code tokens)."""
    w = words_of(toks, 3)
    if w[:2] != ["alter", "table"]:
        return None
    i = skip_if_exists(toks, 2)
    if is_word(tok_at(toks, i), "only"):
        i += 1
    parts, i = read_name(toks, i)
    if not parts:
        return None
    schema, name = qualify(parts, default_schema)
    if i < len(toks) and toks[i].text == "*":
        i += 1
    out = AlterTableAdd(schema, name, [], [])
    holder = TableDef(schema, name, [], [])
    end = len(toks) - (1 if toks and toks[-1].text == ";" else 0)
    for a, b in split_commas(toks, i, end):
        if not is_word(tok_at(toks, a), "add"):
            continue
        k = a + 1
        if is_word(tok_at(toks, k), "column"):
            k = skip_if_not_exists(toks, k + 1)
            if k < b and toks[k].kind in _IDENT:
                _parse_column(toks, k, b, holder, default_schema)
            continue
        if is_word(tok_at(toks, k), *_TABLE_CONSTRAINT_WORDS):
            con = parse_constraint(toks, k, b, default_schema)
            if con is not None:
                out.constraints.append(con)
            continue
        k = skip_if_not_exists(toks, k)
        if k < b and toks[k].kind in _IDENT:
            _parse_column(toks, k, b, holder, default_schema)
    out.columns = holder.columns
    out.constraints.extend(holder.constraints)
    return out


@dataclass
class IndexDef:
    schema: str
    name: str
    table: str  # qualified
    columns: list[str]  # leading key columns ("" for an expression)
    unique: bool
    concurrently: bool
    name_token: int


def parse_create_index(
    toks: list[Token], default_schema: str, obj: CreatedObject | None = None
) -> IndexDef | None:
    """Name, table and key columns of a CREATE INDEX (code tokens)."""
    obj = obj or created_object(toks, default_schema)
    if obj is None or obj.kind != "index" or obj.table is None:
        return None
    w = words_of(toks, 4)
    unique = "unique" in w
    concurrently = any(is_word(t, "concurrently") for t in toks[:6])
    i = next((k for k in range(len(toks)) if is_word(toks[k], "on")), -1)
    cols: list[str] = []
    if i >= 0:
        k = i + 1
        while k < len(toks) and toks[k].text != "(":
            k += 1
        if k < len(toks):
            cols, _ = _ident_list(toks, k)
    schema, _, _ = obj.table.partition(".")
    return IndexDef(schema, obj.name, obj.table, cols, unique, concurrently, obj.name_token)
