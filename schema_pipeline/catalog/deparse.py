"""Deparsed expressions in the form PostgreSQL reads back.

PostgreSQL's deparser (pg_get_constraintdef, pg_get_indexdef, pg_get_viewdef, pg_get_expr, ...) is a
fixed point except for one construct: the implicit array coercion that the parser puts on an
ARRAY[...] constructor, as in `status IN ('a', 'b')` on a varchar column. It prints as

    ((status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))

and parsing that text pushes the cast into the elements, so an object created from it prints as

    ((status)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text]))

A state declared with `IN (...)` would never converge: each plan re-creates the object from the first
text and reads back the second. `settle` rewrites the first form into the second, exactly as PostgreSQL
prints it, and the catalog applies it to every deparsed expression of both sides of a diff.

The same holds for a boolean expression nested in the first operand of the same operator, which the
parser builds for `x IN (a, b, c)` with non-constant elements: `((A OR B) OR C)` re-reads as
`(A OR B OR C)`, because the grammar flattens a left-nested AND or OR on sight.
"""

from __future__ import annotations

import re
from typing import Any

_OPEN = "(ARRAY["
_PRETTY_OPEN = "ARRAY["  # pretty-printed (statistics): no parentheses around the array or its elements
_PRETTY_ELEMENT = re.compile(r"'(?:[^']|'')*'(?:::[a-z ]+(?:\(\d+(?:,\d+)?\))?)?|-?\d+(?:\.\d+)?")
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[()]")
_BOOL_OPS = (" OR ", " AND ")

# Query result columns (queries.ALL names) that hold deparsed expressions. Function definitions are
# left out: most of them are the user's own source text.
DEPARSED_COLUMNS: dict[str, tuple[str, ...]] = {
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


def settle_rows(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Settle, in place, every deparsed expression of the catalog query results."""
    for query, columns in DEPARSED_COLUMNS.items():
        for row in rows.get(query, ()):
            for column in columns:
                value = row.get(column)
                if isinstance(value, str):
                    if _needs_settling(value):
                        row[column] = settle(value)
                elif isinstance(value, list) and any(isinstance(v, str) and _needs_settling(v) for v in value):
                    row[column] = [settle(v) if isinstance(v, str) else v for v in value]


def _needs_settling(text: str) -> bool:
    return _PRETTY_OPEN in text or ") OR " in text or ") AND " in text


def settle(text: str) -> str:
    """`text` as PostgreSQL prints it after reading it back (see the module docstring)."""
    if _PRETTY_OPEN in text:
        text = _settle_arrays(text)
    if ") OR " in text or ") AND " in text:
        text = _flatten_bool(text)
    return text


def _settle_arrays(text: str) -> str:
    """`text` with every `(ARRAY[e1, ...])::T[]` written `ARRAY[(e1)::T, ...]` (pretty: `ARRAY[e1::T, ...]`)."""
    out: list[str] = []
    i = 0
    while True:
        j = _find(text, _PRETTY_OPEN, i)
        if j < 0:
            break
        paren = j > 0 and text[j - 1] == "("
        rewritten = _rewrite_at(text, j - 1, True) if paren else None
        if rewritten is None:
            paren = False
            rewritten = _rewrite_at(text, j, False)
        if rewritten is None:
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if paren:
            j -= 1
        replacement, end = rewritten
        out.append(text[i:j])
        out.append(replacement)
        i = end
    out.append(text[i:])
    return "".join(out)


def _skip_quoted(text: str, i: int) -> int:
    """Index just past the '...' literal or "..." identifier that starts at `i` (doubled quotes escape)."""
    quote = text[i]
    i += 1
    while i < len(text):
        if text[i] == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _find(text: str, needle: str, start: int) -> int:
    """First `needle` at or after `start` that is not inside a literal or a quoted identifier."""
    i = start
    while i < len(text):
        c = text[i]
        if c in "'\"":
            i = _skip_quoted(text, i)
        elif text.startswith(needle, i):
            return i
        else:
            i += 1
    return -1


def _rewrite_at(text: str, j: int, paren: bool) -> tuple[str, int] | None:
    """The rewritten coercion that starts at text[j] and the index after it, or None if it is not one."""
    elements: list[str] = []
    depth = 0
    start = i = j + len(_OPEN if paren else _PRETTY_OPEN)
    while i < len(text):
        c = text[i]
        if c in "'\"":
            i = _skip_quoted(text, i)
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            elements.append(text[start:i].strip())
            start = i + 1
        i += 1
    if i >= len(text) or text[i] != "]":
        return None
    elements.append(text[start:i].strip())
    if not text.startswith(")::" if paren else "::", i + 1) or any(not e or e.startswith("ARRAY[") for e in elements):
        return None  # not a coercion, an empty array, or a multidimensional one (left as printed)
    if not paren and not all(_PRETTY_ELEMENT.fullmatch(e) for e in elements):
        return None  # pretty-printed elements other than constants: where parentheses go is not guessed
    i += len("])::" if paren else "]::")
    type_start = i
    depth = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _skip_quoted(text, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return None
            depth -= 1
        elif c == "[" and depth == 0:
            break
        i += 1
    if not text.startswith("[]", i):
        return None
    element_type = text[type_start:i]
    if paren:
        settled = ", ".join(f"({_settle_arrays(e)})::{element_type}" for e in elements)
    else:
        settled = ", ".join(f"{e}::{element_type}" for e in elements)
    return f"ARRAY[{settled}]", i + 2


class _Literal(str):
    """A quoted literal or identifier: opaque to the operator search."""


_Group = list  # the items between a pair of parentheses: str, _Literal or nested groups


def _parse_groups(text: str) -> _Group | None:
    root: _Group = []
    stack = [root]
    pos = 0
    for m in _TOKENS.finditer(text):
        if m.start() > pos:
            stack[-1].append(text[pos:m.start()])
        pos = m.end()
        token = m.group()
        if token == "(":
            group: _Group = []
            stack[-1].append(group)
            stack.append(group)
        elif token == ")":
            if len(stack) == 1:
                return None
            stack.pop()
        else:
            stack[-1].append(_Literal(token))
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


def _flatten_group(group: _Group) -> None:
    for item in group:
        if isinstance(item, list):
            _flatten_group(item)
    if len(group) < 2 or not isinstance(group[0], list) or type(group[1]) is not str:
        return
    op = _top_level_op(group)
    if op is None or not group[1].startswith(op) or _top_level_op(group[0]) != op:
        return
    group[:1] = group[0]


def _flatten_bool(text: str) -> str:
    """`((A OR B) OR C)` written `(A OR B OR C)`, at any depth (likewise AND)."""
    root = _parse_groups(text)
    if root is None:
        return text
    _flatten_group(root)
    return _render(root)
