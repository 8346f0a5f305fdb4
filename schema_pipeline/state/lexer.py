"""A PostgreSQL tokenizer (psql's lexical rules) that never needs a database.

Used by review rules and directive comments to look inside statements that libpg_query has already
delimited and accepted (state/parse.py, state/policy.py); it makes no security decision.

Handles `--` and nested `/* */` comments, '' strings, E'' strings with backslash escapes,
U&/B/X/N prefixed strings, double-quoted identifiers, dollar quoting ($$ and $tag$),
positional parameters, numbers, operators and psql meta-commands (backslash to end of line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

# Token kinds.
WORD = "word"  # keyword or unquoted identifier (text as written)
QIDENT = "qident"  # "quoted identifier" (text as written, with quotes)
STRING = "string"  # any '...' literal, including E'', U&'', B'', X'', N''
DOLLAR = "dollar"  # $tag$...$tag$ string
NUMBER = "number"
PARAM = "param"  # $1
PUNCT = "punct"  # ( ) , ; [ ] .
OP = "op"  # operators, including :: and stray characters
COMMENT = "comment"  # -- ... or /* ... */
META = "meta"  # psql backslash command, to end of line


class Token(NamedTuple):
    """One lexical token; `start`/`end` are offsets into the text that was tokenized."""

    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class LexError:
    """An unterminated construct found while tokenizing (offset of its start)."""

    message: str
    offset: int


# Letters, digits, "_", "$" and every non-ASCII character, written as negated ASCII classes: a
# \u0080-\U0010ffff range costs ~13 ms to compile on every start of the CLI.
_IDENT_START = r"^\x00-\x40\x5b-\x5e\x60\x7b-\x7f"  # letters, "_", non-ASCII
_IDENT_CHAR = r"^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f"  # ... and digits, "$"
_TAG_CHAR = r"^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f"  # letters, digits, "_", non-ASCII
_OP_CHARS = r"+\-*/<>=~!@#%^&|`?:"

# One alternative per token shape; group numbers are the dispatch keys below (G_*).
_MASTER = re.compile(
    rf"""\s*(?:
    (?P<string>(?:[Uu]&|[BbXxNn])?'[^']*(?:''[^']*)*')
  | (?P<estring>[Ee]'[^'\\]*(?:(?:\\.|'')[^'\\]*)*')
  | (?P<bad_estring>[Ee]')
  | (?P<bad_string>(?:[Uu]&|[BbXxNn])?')
  | (?P<qident>(?:[Uu]&)?"[^"]*(?:""[^"]*)*")
  | (?P<word>[{_IDENT_START}][{_IDENT_CHAR}]*)
  | (?P<punct>[(),;\[\]]|\.(?!\d))
  | (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*[^*]*\*+(?:[^/*][^*]*\*+)*/)
  | (?P<bad_comment>/\*)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<op>[{_OP_CHARS}]+)
  | (?P<dollar>\$(?P<dtag>(?:[{_IDENT_START}][{_TAG_CHAR}]*)?)\$.*?\$(?P=dtag)\$)
  | (?P<bad_dollar>\$(?:[{_IDENT_START}][{_TAG_CHAR}]*)?\$)
  | (?P<param>\$\d+)
  | (?P<bad_qident>(?:[Uu]&)?")
  | (?P<meta>\\[^\n]*)
  | (?P<other>\S)
    )""",
    re.VERBOSE | re.DOTALL,
)
_G = _MASTER.groupindex
G_STRING, G_ESTRING, G_BAD_ESTRING, G_BAD_STRING = (
    _G["string"],
    _G["estring"],
    _G["bad_estring"],
    _G["bad_string"],
)
G_QIDENT, G_WORD, G_PUNCT, G_LINE_COMMENT = _G["qident"], _G["word"], _G["punct"], _G["line_comment"]
G_BLOCK_COMMENT, G_BAD_COMMENT, G_NUMBER, G_OP = (
    _G["block_comment"],
    _G["bad_comment"],
    _G["number"],
    _G["op"],
)
G_DOLLAR, G_BAD_DOLLAR, G_PARAM, G_BAD_QIDENT = _G["dollar"], _G["bad_dollar"], _G["param"], _G["bad_qident"]
G_META, G_OTHER = _G["meta"], _G["other"]
_SIMPLE_KIND = {
    G_STRING: STRING,
    G_ESTRING: STRING,
    G_QIDENT: QIDENT,
    G_WORD: WORD,
    G_PUNCT: PUNCT,
    G_NUMBER: NUMBER,
    G_PARAM: PARAM,
    G_DOLLAR: DOLLAR,
    G_OTHER: OP,
}
_BAD = {
    G_BAD_STRING: "unterminated quoted string (missing closing ')",
    G_BAD_ESTRING: "unterminated E'' string (missing closing ')",
    G_BAD_QIDENT: 'unterminated quoted identifier (missing closing ")',
    G_BAD_COMMENT: "unterminated /* comment (missing */)",
}
_BLOCK_TOKENS = re.compile(r"/\*|\*/")


def _block_comment_end(text: str, start: int) -> int:
    """Offset just after the nested block comment opening at `start`, or -1."""
    depth = 0
    for m in _BLOCK_TOKENS.finditer(text, start):
        if m.group() == "/*":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.end()
    return -1


def tokenize(text: str, *, keep_comments: bool = True) -> tuple[list[Token], list[LexError]]:
    """Split `text` into tokens. Unterminated constructs produce a LexError and end the scan."""
    tokens: list[Token] = []
    errors: list[LexError] = []
    append = tokens.append
    new = tuple.__new__
    simple = _SIMPLE_KIND
    finditer = _MASTER.finditer
    pos = 0
    while True:
        restart = -1
        for m in finditer(text, pos):
            g = m.lastindex
            if g == G_DOLLAR:
                g = G_DOLLAR  # lastindex is the outer group; dtag is nested inside it
            kind = simple.get(g)
            if kind is not None:
                start, end = m.span(g)
                append(new(Token, (kind, m.group(g), start, end)))
                continue
            start, end = m.span(g)
            if g == G_LINE_COMMENT:
                if keep_comments:
                    append(new(Token, (COMMENT, m.group(g), start, end)))
            elif g == G_BLOCK_COMMENT:
                body = m.group(g)
                if "/*" in body[2:]:  # nested comment: find the real end
                    end = _block_comment_end(text, start)
                    if end < 0:
                        errors.append(LexError(_BAD[G_BAD_COMMENT], start))
                        return tokens, errors
                    body = text[start:end]
                    restart = end
                if keep_comments:
                    append(new(Token, (COMMENT, body, start, end)))
                if restart >= 0:
                    break
            elif g == G_OP:
                op = m.group(g)
                # An operator never contains the start of a comment (PostgreSQL's lexer rule).
                cut = min((i for i in (op.find("--"), op.find("/*")) if i > 0), default=-1)
                if cut > 0:
                    append(new(Token, (OP, op[:cut], start, start + cut)))
                    restart = start + cut
                    break
                append(new(Token, (OP, op, start, end)))
            elif g == G_META:
                append(new(Token, (META, m.group(g).rstrip("\r"), start, end)))
            elif g == G_BAD_DOLLAR:
                errors.append(
                    LexError(f"unterminated dollar-quoted string (missing closing {m.group(g)})", start)
                )
                return tokens, errors
            elif g in _BAD:
                if g == G_BAD_COMMENT:
                    end = _block_comment_end(text, start)
                    if end >= 0:  # nested comment the simple pattern could not match
                        if keep_comments:
                            append(new(Token, (COMMENT, text[start:end], start, end)))
                        restart = end
                        break
                errors.append(LexError(_BAD[g], start))
                return tokens, errors
        if restart < 0:
            return tokens, errors
        pos = restart


# Code tokens (no comments) of statement texts, with the offset their positions are based on.
# Filled by the loader (which already tokenized whole files) so rules never re-tokenize.
_CACHE: dict[str, tuple[list[Token], int]] = {}
_CACHE_LIMIT = 300_000


def remember_tokens(sql: str, code_tokens: list[Token], base: int) -> None:
    """Record the code tokens of a statement text whose first character is at offset `base`."""
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[sql] = (code_tokens, base)


def based_tokens(sql: str) -> tuple[list[Token], int]:
    """Code tokens of a statement text and the base offset: `tok.start - base` indexes `sql`."""
    hit = _CACHE.get(sql)
    if hit is None:
        toks = [t for t in tokenize(sql, keep_comments=False)[0]]
        hit = (toks, 0)
        remember_tokens(sql, toks, 0)
    return hit


def code_tokens(sql: str) -> list[Token]:
    """Code tokens (comments dropped) of one statement's text."""
    return based_tokens(sql)[0]


def ident_value(tok: Token) -> str:
    """The identifier a WORD/QIDENT token denotes: unquoted folds to lower case."""
    if tok.kind == QIDENT:
        body = tok.text[tok.text.index('"') + 1 : -1]
        return body.replace('""', '"')
    return tok.text.lower()


def string_value(tok: Token) -> str:
    """The value of a simple string literal token ('..' or E'..' or $$..$$), best effort."""
    t = tok.text
    if tok.kind == DOLLAR:
        tag_end = t.index("$", 1) + 1
        return t[tag_end : len(t) - tag_end]
    if t[:1] in "Ee" and t[1:2] == "'":
        body = t[2:-1].replace("''", "'")
        return re.sub(r"\\(.)", r"\1", body)
    q = t.index("'")
    return t[q + 1 : -1].replace("''", "'")
