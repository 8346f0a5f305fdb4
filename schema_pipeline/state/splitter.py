"""Split one file's text into pieces the way psql does, with their comments: used to attach
`-- schema-pipeline:` directive comments to statements. What a statement is, and where it starts and
ends, is decided by libpg_query (state/parse.py); nothing here makes a security decision.

`;` ends a statement unless inside parentheses or inside the BEGIN ... END body of a
SQL-standard `CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC` (psql's heuristic).
psql meta-commands (a backslash outside quotes, to end of line) become their own pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schema_pipeline.state.lexer import COMMENT, META, PUNCT, WORD, LexError, Token, tokenize
from schema_pipeline.state.parse import LineIndex


@dataclass
class Piece:
    """A raw statement (or meta-command) of a file, before classification."""

    start: int  # offset of the first token
    end: int  # offset just after the terminating ';' (or last token)
    line: int
    column: int
    is_meta: bool = False
    terminated: bool = True
    broken: bool = False  # a structural error was reported for it; do not analyse further
    # Comments between the previous statement and this one (offset, text), and inside it.
    leading_comments: list[Token] = field(default_factory=list)
    inner_comments: list[Token] = field(default_factory=list)
    # Code tokens (no comments), offsets into the file text.
    tokens: list[Token] = field(default_factory=list)


@dataclass
class SplitResult:
    pieces: list[Piece]
    errors: list[LexError]
    index: LineIndex
    # Structural errors (message, offset): a meta-command inside a statement, a '(' never
    # closed, a ')' never opened, a BEGIN ATOMIC body without END.
    structure_errors: list[tuple[str, int]] = field(default_factory=list)
    # Comments after the last statement.
    trailing_comments: list[Token] = field(default_factory=list)


_FUNC_WORDS = {"create": "c", "function": "f", "procedure": "p", "or": "o", "replace": "r"}


def split_text(text: str) -> SplitResult:
    """Split a file's text into pieces with locations; lexical errors are returned, not raised."""
    tokens, errors = tokenize(text)
    index = LineIndex(text)
    pieces: list[Piece] = []
    structure_errors: list[tuple[str, int]] = []

    pending_comments: list[Token] = []
    cur_start = -1
    cur_last_end = -1
    cur_comments: list[Token] = []
    cur_tokens: list[Token] = []
    paren = 0
    begin_depth = 0
    ident_sig: list[str] = []  # psql: first identifiers, as letters, to spot CREATE FUNCTION
    ident_count = 0

    opens: list[int] = []  # offsets of the '(' not yet closed
    begin_at = -1  # offset of the outermost BEGIN of a BEGIN ATOMIC body
    broken = False

    def finish(end: int, terminated: bool) -> None:
        nonlocal cur_start, cur_comments, cur_tokens, paren, begin_depth, ident_sig, ident_count
        nonlocal pending_comments, opens, begin_at, broken
        line, col = index.locate(cur_start)
        if not errors or terminated:  # after a lexical error the last piece is cut short anyway
            if opens:
                structure_errors.append(
                    ("'(' is never closed; the statement runs to the end of the file", opens[0])
                )
                broken = True
            elif begin_depth > 0 and begin_at >= 0:
                structure_errors.append(("BEGIN ATOMIC body is never closed with END;", begin_at))
                broken = True
        pieces.append(
            Piece(
                cur_start,
                end,
                line,
                col,
                False,
                terminated,
                broken,
                pending_comments,
                cur_comments,
                cur_tokens,
            )
        )
        opens = []
        begin_at = -1
        broken = False
        cur_start = -1
        cur_comments = []
        cur_tokens = []
        pending_comments = []
        paren = 0
        begin_depth = 0
        ident_sig = []
        ident_count = 0

    for tok in tokens:
        kind = tok.kind
        if kind == COMMENT:
            if cur_start < 0:
                pending_comments.append(tok)
            else:
                cur_comments.append(tok)
            continue
        if kind == META:
            if cur_start >= 0:
                structure_errors.append(
                    (
                        f"psql meta-command {tok.text.split()[0]!r} inside an SQL statement; "
                        "the statement before it is missing its ';'",
                        tok.start,
                    )
                )
                finish(cur_last_end, False)
                continue
            line, col = index.locate(tok.start)
            pieces.append(Piece(tok.start, tok.end, line, col, True, True, False, pending_comments, []))
            pending_comments = []
            continue
        if cur_start < 0:
            if kind == PUNCT and tok.text == ";":
                continue  # empty statement
            cur_start = tok.start
        cur_last_end = tok.end
        cur_tokens.append(tok)
        if kind == PUNCT:
            t = tok.text
            if t == "(":
                paren += 1
                opens.append(tok.start)
            elif t == ")":
                if paren > 0:
                    paren -= 1
                    opens.pop()
                else:
                    structure_errors.append(("')' without a matching '('", tok.start))
                    broken = True
            elif t == ";" and paren == 0 and begin_depth == 0:
                finish(tok.end, True)
        elif kind == WORD:
            low = tok.text.lower()
            if ident_count < 4:
                ident_sig.append(_FUNC_WORDS.get(low, ""))
            ident_count += 1
            if (
                paren == 0
                and ident_sig[:1] == ["c"]
                and (
                    (len(ident_sig) > 1 and ident_sig[1] in ("f", "p"))
                    or (len(ident_sig) > 3 and ident_sig[1:3] == ["o", "r"] and ident_sig[3] in ("f", "p"))
                )
            ):
                if low == "begin":
                    if begin_depth == 0:
                        begin_at = tok.start
                    begin_depth += 1
                elif low == "case":
                    if begin_depth >= 1:
                        begin_depth += 1
                elif low == "end" and begin_depth > 0:
                    begin_depth -= 1
    if cur_start >= 0:
        finish(cur_last_end, False)
    return SplitResult(pieces, errors, index, structure_errors, pending_comments)
