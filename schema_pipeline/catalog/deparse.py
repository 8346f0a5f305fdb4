"""Deparsed expressions and the text that PostgreSQL prints back after reading them.

PostgreSQL's deparser (pg_get_constraintdef, pg_get_indexdef, pg_get_viewdef, pg_get_expr, ...) is a
fixed point except for two constructs, both built by the parser for IN lists:

- An implicit array coercion of an ARRAY[...] constructor (`status IN ('a', 'b')` on a varchar column)
  prints as `(ARRAY['a'::character varying, 'b'::character varying])::text[]`, and reading that back
  pushes the cast into the elements. Written without the cast, `ARRAY['a'::character varying, ...]`
  gets the same implicit coercion again: `reproducible` makes the SQL we execute that way, so the
  target prints exactly what the plan database printed.
- A boolean expression nested in the first operand of the same operator (`x IN (a, b, c)` with
  non-constant elements) prints as `((A OR B) OR C)` and reads back as `(A OR B OR C)`: the grammar
  flattens a left-nested AND or OR on sight, so no SQL text gives the nested form back. `settle`
  rewrites it to the flat form, and the catalog applies it to the deparsed expressions of both sides
  of a diff.
"""

from __future__ import annotations

import re
from typing import Any

# Quoted literals, quoted identifiers and dollar-quoted strings (opaque), parentheses, brackets, casts.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$|(?<![\w$])ARRAY\[|[()\[\]]", re.S)
_NAME = r'(?:"(?:[^"]|"")*"|[a-z_][a-z0-9_$]*)'
# After ARRAY[...]: `::T[]` (pretty) or `)::T[]`, T a type name as format_type prints it, without a modifier.
_ARRAY_CAST = re.compile(rf"(\)?)::({_NAME}(?:\.{_NAME})*(?: [a-z_][a-z0-9_]*)*)\[\]")
_BOOL_OPS = (" OR ", " AND ")

# Query result columns (queries.ALL names) that hold deparsed expressions. A function's definition is
# deparsed too (argument defaults, SQL-standard bodies); a body written as a string is dollar-quoted or
# quoted there, and quoted text is never rewritten.
DEPARSED_COLUMNS: dict[str, tuple[str, ...]] = {
    "functions": ("definition",),
    "types": ("constraints", "default"),
    "relations": ("definition",),
    "columns": ("default", "generated"),
    "constraints": ("definition",),
    "indexes": ("definition",),
    "triggers": ("definition",),
    "policies": ("qual", "with_check"),
    "rules": ("definition",),
    "statistics": ("definition",),
    "publications": ("tables",),
}


def reproducible(sql: str) -> str:
    """`sql` with every implicit array coercion `(ARRAY[...])::T[]` (pretty: `ARRAY[...]::T[]`) written
    as the bare `ARRAY[...]`, which PostgreSQL coerces the same way and then prints as `sql` did."""
    if "ARRAY[" not in sql:
        return sql
    cuts: list[tuple[int, int]] = []  # spans of `sql` to leave out
    stack: list[tuple[str, int]] = []  # open tokens and their positions
    for m in _TOKENS.finditer(sql):
        token = m.group()
        if token in ("(", "[", "ARRAY["):
            stack.append((token, m.start()))
        elif token in (")", "]") and stack:
            opened, start = stack.pop()
            if opened != "ARRAY[" or token != "]" or not sql[start + len(opened):m.start()].strip():
                continue  # not an array, or an empty one: its type is only in the cast
            cast = _ARRAY_CAST.match(sql, m.end())
            if cast is None:
                continue  # not a coercion, or one to a type with a modifier (it does more than relabel)
            if cast.group(1):  # `(ARRAY[...])::T[]`: the parenthesis before ARRAY goes too
                if not stack or stack[-1] != ("(", start - 1):
                    continue
                stack.pop()
                cuts.append((start - 1, start))
            cuts.append((m.end(), cast.end()))
    if not cuts:
        return sql
    out: list[str] = []
    i = 0
    for start, end in sorted(cuts):
        out.append(sql[i:start])
        i = end
    out.append(sql[i:])
    return "".join(out)


def settle_rows(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Settle, in place, every deparsed expression of the catalog query results."""
    for query, columns in DEPARSED_COLUMNS.items():
        for row in rows.get(query, ()):
            for column in columns:
                value = row.get(column)
                if isinstance(value, str):
                    if _may_nest(value):
                        row[column] = settle(value)
                elif isinstance(value, list) and any(isinstance(v, str) and _may_nest(v) for v in value):
                    row[column] = [settle(v) if isinstance(v, str) else v for v in value]


def _may_nest(text: str) -> bool:
    return ") OR " in text or ") AND " in text


def settle(text: str) -> str:
    """`text` with every left-nested `((A OR B) OR C)` written `(A OR B OR C)` (likewise AND), as
    PostgreSQL prints it after reading it back."""
    if not _may_nest(text):
        return text
    root = _parse_groups(text)
    if root is None:
        return text
    _flatten(root)
    return _render(root)


class _Opaque(str):
    """A quoted literal or identifier: never searched for operators."""


_Group = list  # the items between a pair of parentheses: str, _Opaque or nested groups


def _parse_groups(text: str) -> _Group | None:
    root: _Group = []
    stack = [root]
    pos = 0
    for m in _TOKENS.finditer(text):
        token = m.group()
        if token not in ("(", ")") and token[0] not in "'\"$":
            continue  # brackets are plain text here
        if m.start() > pos:
            stack[-1].append(text[pos:m.start()])
        pos = m.end()
        if token == "(":
            group: _Group = []
            stack[-1].append(group)
            stack.append(group)
        elif token == ")":
            if len(stack) == 1:
                return None
            stack.pop()
        else:
            stack[-1].append(_Opaque(token))
    if len(stack) != 1:
        return None
    if pos < len(text):
        root.append(text[pos:])
    return root


def _render(group: _Group) -> str:
    return "".join(item if isinstance(item, str) else f"({_render(item)})" for item in group)


def _top_level_op(group: _Group) -> str | None:
    """The one boolean operator that joins the group's operands, if any (None for mixed text or lists)."""
    words = "".join(item for item in group if type(item) is str)
    ops = [op for op in _BOOL_OPS if op in words]
    return ops[0] if len(ops) == 1 and "," not in words else None


def _flatten(group: _Group) -> None:
    for item in group:
        if isinstance(item, list):
            _flatten(item)
    if len(group) < 2 or not isinstance(group[0], list) or type(group[1]) is not str:
        return
    op = _top_level_op(group)
    if op is None or not group[1].startswith(op) or _top_level_op(group[0]) != op:
        return
    group[:1] = group[0]
