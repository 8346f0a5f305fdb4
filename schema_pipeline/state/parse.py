"""One state file through PostgreSQL's own parser (libpg_query, via pglast).

libpg_query decides where each statement starts and ends and what it is; the pipeline executes
exactly the text it parsed. Two things a state file may hold that are not SQL are handled first,
without changing any offset (they are blanked, line breaks kept):

- pg_dump's psql meta-command lines (`\\restrict KEY`, `\\unrestrict KEY`): kept as session-only
  statements; any other meta-command is an error;
- the data lines after `COPY ... FROM stdin;` (up to `\\.`): the COPY itself is refused by the policy.

A blanked line that turns out to lie inside a statement (a literal's content, say) is put back and
the file parsed again, so a literal never changes.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field

from pglast import parser as pg_parser

_META_LINE = re.compile(r"^[ \t]*\\[^\n]*", re.MULTILINE)
_COPY_STDIN = re.compile(r"^[ \t]*COPY\b[^\n;]*\bFROM\s+stdin\b[^\n;]*;[ \t\r]*\n", re.IGNORECASE | re.MULTILINE)
_COPY_END = re.compile(r"^\\\.[ \t\r]*$", re.MULTILINE)
_ROLESPEC = re.compile(r'"roletype":"ROLESPEC_CSTRING","rolename":("(?:[^"\\]|\\.)*")(?:,"location":(-?\d+))?')
_NEWLINE = re.compile("\n")


class LineIndex:
    """Maps character offsets of a text to 1-based (line, column) in code points."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    def locate(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1


class _Offsets:
    """libpg_query reports UTF-8 byte offsets; the rest of the pipeline counts characters."""

    def __init__(self, text: str):
        self.ascii = text.isascii()
        self.byte_starts: list[int] = []  # byte offset of each multi-byte character
        self.extra: list[int] = []  # bytes beyond one per character, up to and including that one
        if not self.ascii:
            b = extra = 0
            for ch in text:
                n = len(ch.encode())
                if n > 1:
                    extra += n - 1
                    self.byte_starts.append(b)
                    self.extra.append(extra)
                b += n

    def char(self, byte_offset: int) -> int:
        if self.ascii:
            return byte_offset
        i = bisect.bisect_left(self.byte_starts, byte_offset)  # multi-byte characters before the offset
        return byte_offset - (self.extra[i - 1] if i else 0)


@dataclass
class ParsedStatement:
    """One statement as libpg_query delimits it: [start, end) in characters, its node type and tree."""

    start: int  # first character of the statement's first token
    end: int  # just after its last character (the ';' excluded)
    node_type: str
    node: dict


@dataclass
class MetaLine:
    """A psql meta-command line (pg_dump's \\restrict / \\unrestrict)."""

    start: int
    text: str


@dataclass
class ParsedFile:
    text: str  # the text the statements were cut from (meta-command and COPY data lines blanked)
    index: LineIndex
    statements: list[ParsedStatement] = field(default_factory=list)
    meta: list[MetaLine] = field(default_factory=list)
    # (message, character offset) of each syntax error
    errors: list[tuple[str, int]] = field(default_factory=list)
    # role names the statements reference (OWNER TO, GRANT ... TO, AUTHORIZATION, ...), with an offset
    roles: dict[str, int] = field(default_factory=dict)
    offsets: _Offsets | None = None

    def char(self, location: int) -> int:
        """The character offset of a libpg_query location (a byte offset into the parsed text)."""
        return self.offsets.char(location) if self.offsets is not None else location


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out, last = [], 0
    for a, b in spans:
        out.append(text[last:a])
        out.append(re.sub(r"[^\n]", " ", text[a:b]))
        last = b
    out.append(text[last:])
    return "".join(out)


def _copy_data_spans(text: str) -> list[tuple[int, int]]:
    if "\\." not in text:
        return []
    spans, pos = [], 0
    while (m := _COPY_STDIN.search(text, pos)) is not None:
        end_m = _COPY_END.search(text, m.end())
        data_end = end_m.end() if end_m else len(text)
        spans.append((m.end(), data_end))
        pos = data_end
    return spans


_SKIP = re.compile(r"(?:\s+|--[^\n]*)+")


def _first_token(text: str, pos: int, end: int) -> int:
    """Offset of the first token at or after `pos`: skips white space and comments (nested /* */)."""
    while pos < end:
        m = _SKIP.match(text, pos)
        if m and m.end() > pos:
            pos = m.end()
            continue
        if text.startswith("/*", pos):
            depth, i = 1, pos + 2
            while depth and i < end:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            pos = i
            continue
        break
    return pos


def _last_code(text: str, start: int, end: int) -> int:
    """End of the statement's code: trailing white space dropped (libpg_query's length excludes the ';')."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _parse(text: str) -> tuple[str, tuple[str, int] | None]:
    """libpg_query's JSON parse tree of `text`, or ("", (message, byte offset of the error))."""
    try:
        return pg_parser.parse_sql_json(text), None
    except pg_parser.ParseError as exc:
        message, location = (*exc.args, None, None)[:2] if exc.args else ("syntax error", None)
        if not isinstance(location, int):  # "at end of input"
            location = len(text.encode())
        return "", (str(message), location)


def _statements(text: str, tree: dict, offsets: _Offsets) -> list[ParsedStatement]:
    out: list[ParsedStatement] = []
    for raw in tree.get("stmts", ()):
        b0 = raw.get("stmt_location", 0)
        b1 = b0 + raw["stmt_len"] if raw.get("stmt_len") else None
        c0 = offsets.char(b0)
        c1 = offsets.char(b1) if b1 is not None else len(text)
        start = _first_token(text, c0, c1)
        stmt = raw.get("stmt") or {}
        (node_type, node), = stmt.items() if stmt else (("", {}),)
        out.append(ParsedStatement(start, _last_code(text, start, c1), node_type, node))
    return out


def _split_errors(text: str, first: tuple[str, int], offsets: _Offsets) -> list[tuple[str, int]]:
    """Every statement with a syntax error, not only the first: the scanner splits, each piece is parsed."""
    errors: list[tuple[str, int]] = []
    try:
        pieces = pg_parser.split(text, with_parser=False)
    except pg_parser.ParseError:
        return [(first[0], offsets.char(first[1]))]
    encoded = text.encode()
    pos = 0
    for piece in pieces:
        raw = piece.encode()
        at = encoded.find(raw, pos)
        if at < 0:
            break
        pos = at + len(raw)
        _raw, err = _parse(piece)
        if err is not None:
            errors.append((err[0], offsets.char(at + err[1])))
    return errors or [(first[0], offsets.char(first[1]))]


def parse_file(text: str) -> ParsedFile:
    """Cut one file into statements with libpg_query; meta-command lines and COPY data set aside."""
    data = _copy_data_spans(text)
    candidates = [(m.start(), m.end()) for m in _META_LINE.finditer(text)
                  if not any(a <= m.start() < b for a, b in data)]
    restored: set[int] = set()
    for _ in range(len(candidates) + 2):
        blanks = sorted([c for c in candidates if c[0] not in restored] + data)
        blanked = _blank(text, blanks)
        offsets = _Offsets(blanked)
        raw_json, error = _parse(blanked)
        if error is not None:
            parsed = ParsedFile(blanked, LineIndex(blanked))
            parsed.errors = _split_errors(blanked, error, offsets)
            parsed.meta = [MetaLine(a, text[a:b]) for a, b in candidates if a not in restored]
            return parsed
        stmts = _statements(blanked, json.loads(raw_json), offsets)
        starts = [s.start for s in stmts]
        inside = set()
        for a, _b in candidates:
            if a in restored:
                continue
            i = bisect.bisect_right(starts, a) - 1
            if i >= 0 and a < stmts[i].end:
                inside.add(a)  # within a statement: part of it (a literal's content, or a syntax error)
        if not inside:
            parsed = ParsedFile(blanked, LineIndex(blanked), stmts, offsets=offsets)
            parsed.meta = [MetaLine(a, text[a:b]) for a, b in candidates if a not in restored]
            for m in _ROLESPEC.finditer(raw_json):
                name = json.loads(m.group(1))
                loc = int(m.group(2)) if m.group(2) else 0
                parsed.roles.setdefault(name, offsets.char(max(loc, 0)))
            return parsed
        restored |= inside
    raise AssertionError("meta-command lines did not settle")  # each round restores at least one line
