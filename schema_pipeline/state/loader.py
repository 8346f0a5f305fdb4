"""load_state: find the state files, read them safely, parse them with libpg_query and check the allow-list."""

from __future__ import annotations

import bisect
import glob
import hashlib
import os
import re
from dataclasses import replace

from pglast import parser as pg_parser

from schema_pipeline.errors import StateError, StateErrors
from schema_pipeline.state import cache as state_cache
from schema_pipeline.state.classify import classify_words
from schema_pipeline.state.conversions import collect_conversions
from schema_pipeline.state.identity import (
    Declarations,
    declared_identity,
    dropped_identities,
    only_drops,
    replaces,
)
from schema_pipeline.state.lexer import Token
from schema_pipeline.state.model import DesiredState, Statement
from schema_pipeline.state.parse import parse_file
from schema_pipeline.state.policy import (
    check_statement,
    first_schema,
    search_path_value,
    standard_strings_after,
)
from schema_pipeline.state.renames import collect_renames
from schema_pipeline.state.splitter import LineIndex, Piece, split_text

DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
_GLOB_CHARS = re.compile(r"[*?\[]")
_META_ALLOWED = ("\\restrict", "\\unrestrict")


def _within(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _find_files(path: str, root: str | None) -> tuple[str, str, list[tuple[str, str]], list[StateError]]:
    """(base dir, boundary root, [(relative path, absolute path)], errors) for a directory or glob."""
    errors: list[StateError] = []
    if os.path.isdir(path):
        base = os.path.abspath(path)
        boundary = os.path.realpath(root if root is not None else base)
        found: list[tuple[str, str]] = []
        seen_dirs = {os.path.realpath(base)}
        stack = [base]
        while stack:
            d = stack.pop()
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError as exc:
                errors.append(StateError(f"cannot read directory: {exc.strerror}", os.path.relpath(d, base)))
                continue
            for e in entries:
                rel = os.path.relpath(e.path, base).replace(os.sep, "/")
                is_sql = e.name.endswith(".sql")
                if e.is_symlink():
                    real = os.path.realpath(e.path)
                    if not os.path.exists(real):
                        if is_sql:
                            errors.append(StateError("broken symbolic link", rel))
                        continue
                    if os.path.isdir(real):
                        if not _within(real, boundary):
                            errors.append(
                                StateError(
                                    f"symbolic link to a directory outside the state root ({boundary}); "
                                    "state files must live inside it",
                                    rel,
                                )
                            )
                        elif real not in seen_dirs:
                            seen_dirs.add(real)
                            stack.append(e.path)
                        continue
                    if is_sql:
                        if not _within(real, boundary):
                            errors.append(
                                StateError(
                                    f"symbolic link resolves outside the state root ({boundary}); "
                                    "state files must live inside it",
                                    rel,
                                )
                            )
                        else:
                            found.append((rel, e.path))
                    continue
                if e.is_dir():
                    real = os.path.realpath(e.path)
                    if real not in seen_dirs:
                        seen_dirs.add(real)
                        stack.append(e.path)
                elif is_sql and e.is_file():
                    found.append((rel, e.path))
        if not found and not errors:
            errors.append(StateError(f"no *.sql files found under {path!r}"))
        found.sort(key=lambda x: x[0])
        return base, boundary, found, errors
    m = _GLOB_CHARS.search(path)
    if m is None:
        if os.path.isfile(path):
            base = os.path.dirname(os.path.abspath(path))
            boundary = os.path.realpath(root if root is not None else base)
            rel = os.path.basename(path)
            real = os.path.realpath(path)
            if not _within(real, boundary):
                return (
                    base,
                    boundary,
                    [],
                    [StateError(f"symbolic link resolves outside the state root ({boundary})", rel)],
                )
            return base, boundary, [(rel, os.path.abspath(path))], []
        return "", "", [], [StateError(f"state path {path!r} does not exist (no directory or file matches)")]
    prefix = path[: m.start()]
    base_dir = prefix if prefix.endswith(("/", os.sep)) else os.path.dirname(prefix)
    base = os.path.abspath(base_dir or ".")
    boundary = os.path.realpath(root if root is not None else base)
    found = []
    for p in glob.glob(path, recursive=True):
        if not os.path.isfile(p):
            continue
        ap = os.path.abspath(p)
        rel = os.path.relpath(ap, base).replace(os.sep, "/")
        if not _within(os.path.realpath(ap), boundary):
            errors.append(
                StateError(
                    f"symbolic link resolves outside the state root ({boundary}); state files must live inside it",
                    rel,
                )
            )
            continue
        found.append((rel, ap))
    if not found and not errors:
        errors.append(StateError(f"no state files match the pattern {path!r}"))
    found.sort(key=lambda x: x[0])
    return base, boundary, found, errors


def _decode(rel: str, data: bytes) -> tuple[str | None, list[StateError]]:
    """UTF-8 text of a file, or errors naming each line with bad bytes (and NUL bytes)."""
    errors: list[StateError] = []
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        col = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        errors.append(
            StateError(
                "file contains a NUL byte (binary file?); state files must be UTF-8 text", rel, line, col
            )
        )
        return None, errors
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                col = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                errors.append(
                    StateError(
                        f"invalid UTF-8 byte 0x{raw[exc.start]:02x}; state files must be UTF-8 encoded",
                        rel,
                        lineno,
                        col,
                    )
                )
                if len(errors) >= 20:
                    break
        return None, errors
    if text.startswith("\ufeff"):
        text = " " + text[1:]  # keep offsets/columns stable; a BOM is harmless
    return text, errors


def load_state(
    path: str, *, root: str | None = None, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> DesiredState:
    """Read the desired state at `path` (a directory: every *.sql below it; or a glob pattern).

    Raises StateError when nothing matches, else StateErrors listing every problem found
    (file:line:column each). Nothing here contacts a database.
    """
    base, _boundary, files, errors = _find_files(path, root)
    if not files and len(errors) == 1 and errors[0].file is None:
        raise errors[0]  # nothing to read at all (no match, empty directory, missing path)
    statements: list[Statement] = []
    renames: dict[tuple[str, str], str] = {}
    digest = hashlib.sha256()
    rel_files: list[str] = []
    declared = Declarations()
    roles: dict[str, tuple[str, int]] = {}
    conversions: dict[str, str] = {}
    contents: list[tuple[str, bytes]] = []

    for rel, abspath in files:
        rel_files.append(rel)
        try:
            size = os.path.getsize(abspath)
        except OSError as exc:
            errors.append(StateError(f"cannot read file: {exc.strerror}", rel))
            continue
        if size > max_file_bytes:
            errors.append(
                StateError(
                    f"file is {size} bytes, above the limit of {max_file_bytes} bytes (max_file_bytes); "
                    "split it into smaller files",
                    rel,
                )
            )
            continue
        try:
            with open(abspath, "rb") as fh:
                data = fh.read(max_file_bytes + 1)
        except OSError as exc:
            errors.append(StateError(f"cannot read file: {exc.strerror}", rel))
            continue
        if len(data) > max_file_bytes:
            errors.append(StateError(f"file is above the limit of {max_file_bytes} bytes", rel))
            continue
        digest.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
        contents.append((rel, data))

    key = state_cache.cache_key(digest.hexdigest(), max_file_bytes) if not errors else ""
    if key and (cached := state_cache.get(key)) is not None:
        return replace(cached, root=base)  # the same files parsed before: they were valid then
    for rel, data in contents:
        text, derrs = _decode(rel, data)
        if text is None:
            errors.extend(derrs)
            continue
        file_stmts, file_errors, file_renames = _read_file(rel, text, declared, roles, conversions)
        statements.extend(file_stmts)
        errors.extend(file_errors)
        renames.update(file_renames)

    if errors:
        order = {f: i for i, (f, _) in enumerate(files)}
        errors.sort(key=lambda e: (order.get(e.file or "", -1), e.line or 0, e.column or 0))
        raise StateErrors(errors)
    if declared.run_once:
        statements = [replace(s, run_once=True) if (s.file, s.line, s.column) in declared.run_once else s
                      for s in statements]
    state = DesiredState(
        root=base, files=rel_files, statements=statements, fingerprint=digest.hexdigest(), renames=renames,
        roles=roles, conversions=conversions,
    )
    state_cache.put(key, state)
    return state


_MAX_ERRORS_PER_FILE = 50
_LEADING_WORDS = re.compile(r"(?:\s*[A-Za-z_][A-Za-z_0-9$]*(?![A-Za-z_0-9$\"])){1,8}")


def _kind_label(sql: str) -> str:
    """The statement's kind as its leading keywords say it ("CREATE TABLE", "ALTER FUNCTION", ...): a label for
    messages and review rules; what the statement is was decided by the parser (Statement.node)."""
    m = _LEADING_WORDS.match(sql)
    if m is None:
        return "SELECT" if sql.startswith("(") else ""
    return classify_words(m.group(0).lower().split())


def _plain_string_with_backslash(sql: str) -> int | None:
    """Offset in `sql` of the first '...' (or N'...') literal holding a backslash: with
    standard_conforming_strings off PostgreSQL reads that backslash as an escape, and libpg_query (which
    reads standard strings) would see other statements than the server."""
    for tok in pg_parser.scan(sql):
        if tok.name == "SCONST":
            raw = sql[tok.start:tok.end + 1]
            if "\\" in raw and (raw[:1] == "'" or raw[:2] in ("N'", "n'")):
                return tok.start
    return None


def _with_semicolon(text: str, end: int) -> int:
    """`end` extended over the statement's terminating ';' when it follows directly (after white space)."""
    k = end
    while k < len(text) and text[k] in " \t\r\n":
        k += 1
    return k + 1 if k < len(text) and text[k] == ";" else end


def _comment_pieces(text: str) -> dict[int, tuple[Piece, list[Token], int]]:
    """For directive comments only (`-- schema-pipeline: ...`): the psql-style pieces of the file with their
    comments, by the offset of their first token, with the comments that follow each piece and the line on
    which the piece before it ends (comments are not SQL: this is no security decision)."""
    split = split_text(text)
    out: dict[int, tuple[Piece, list[Token], int]] = {}
    pieces = split.pieces
    for n, piece in enumerate(pieces):
        following = pieces[n + 1].leading_comments if n + 1 < len(pieces) else split.trailing_comments
        prev_end = split.index.locate(max(pieces[n - 1].end - 1, 0))[0] if n > 0 else 0
        out[piece.start] = (piece, following, prev_end)
    return out


def _read_file(
    rel: str, text: str, declared: Declarations, roles: dict[str, tuple[str, int]], conversions: dict[str, str],
) -> tuple[list[Statement], list[StateError], dict[tuple[str, str], str]]:
    """Parse (libpg_query), check against the allow-list, and locate one file's statements."""
    parsed = parse_file(text)
    index = parsed.index
    errors: list[StateError] = []
    stmts: list[Statement] = []
    renames: dict[tuple[str, str], str] = {}
    for message, offset in parsed.errors[:_MAX_ERRORS_PER_FILE]:
        line, col = index.locate(offset)
        if parsed.text.startswith("\\", offset):
            cmd = parsed.text[offset:].split(None, 1)[0]
            message = (f"psql meta-command {cmd!r} inside a statement: state files are not run by psql, and only "
                       "pg_dump's \\restrict/\\unrestrict lines are accepted, on their own between statements")
        errors.append(StateError(_syntax_message(message), rel, line, col))
    metas: list[tuple[int, Statement]] = []
    for meta in parsed.meta:
        line, col = index.locate(meta.start)
        words = meta.text.split()
        cmd = words[0] if words else "\\"
        if cmd in _META_ALLOWED:
            metas.append((meta.start, Statement(meta.text.strip(), rel, line, col, "\\" + cmd[1:], session_only=True)))
        else:
            errors.append(StateError(
                f"psql meta-command {cmd!r} is not allowed in state files (only pg_dump's \\restrict/\\unrestrict "
                "are accepted); inline the SQL instead", rel, line, col))
    if parsed.errors:
        return [m for _, m in metas], errors, renames
    for name, offset in parsed.roles.items():
        roles.setdefault(name, (rel, index.locate(offset)[0]))
    pieces = _comment_pieces(text) if "schema-pipeline" in text else {}
    default_schema = "public"
    standard_strings, nonstandard_line = True, 0
    for ps in parsed.statements:
        end = _with_semicolon(parsed.text, ps.end)
        sql = parsed.text[ps.start:end]
        line, col = index.locate(ps.start)
        verdict = check_statement(ps.node_type, ps.node, default_schema)
        problems = [(m, ps.start if loc < 0 else parsed.char(loc)) for m, loc in verdict.problems]
        if not standard_strings and (k := _plain_string_with_backslash(sql)) is not None:
            problems.append((
                f"standard_conforming_strings is off here (SET at line {nonstandard_line}), so PostgreSQL reads the "
                "backslash in this literal as an escape; write the literal as E'...' and drop the SET", ps.start + k))
        for msg, off in problems:
            errors.append(StateError(msg, rel, *index.locate(off)))
        kind = _kind_label(sql)
        directives: tuple[str, ...] = ()
        if pieces and ps.start in pieces:
            piece, following, prev_end = pieces[ps.start]
            directives = _directives(piece, following, index, prev_end)
            renames.update(collect_renames(text, index, piece, piece.tokens, kind, default_schema))
            declared_conversions, conversion_errors = collect_conversions(
                ps.node_type, ps.node, piece, index, parsed.char, default_schema, rel)
            conversions.update(declared_conversions)
            errors.extend(conversion_errors)
        stmts.append(Statement(sql, rel, line, col, kind, verdict.session_only, directives,
                               node=ps.node_type, privileged=verdict.privileged))
        if problems:
            continue
        created = declared_identity(ps.node_type, ps.node, default_schema)
        if created is not None:
            errors.extend(declared.create(*created, replaces(ps.node_type, ps.node), rel, line, col))
        elif only_drops(ps.node_type, ps.node):
            declared.drop(dropped_identities(ps.node_type, ps.node, default_schema), rel, line, col)
        if (path := search_path_value(ps.node_type, ps.node)) is not None:
            default_schema = first_schema(path)
        if standard_strings != (standard_strings := standard_strings_after(ps.node_type, ps.node, standard_strings)):
            nonstandard_line = line
    if metas:  # pg_dump's \\restrict opens the file and \\unrestrict closes it: keep the file's order
        starts = [ps.start for ps in parsed.statements]
        for offset, meta_stmt in reversed(metas):
            stmts.insert(bisect.bisect_left(starts, offset), meta_stmt)
    return stmts, errors, renames


def _syntax_message(message: str) -> str:
    """libpg_query's message, said the way psql would print it."""
    return message if message.lower().startswith(("syntax error", "unterminated", "invalid", "zero-length",
                                                  "trailing junk", "unsafe", "unicode", "psql")) \
        else f"syntax error: {message}"


_DIRECTIVE = re.compile(r"schema-pipeline:\s*([^\n]*?)\s*(?:\*/)?\s*$", re.IGNORECASE | re.MULTILINE)


def _directives(piece: Piece, following: list[Token], index: LineIndex, prev_end_line: int) -> tuple[str, ...]:
    """Directive texts of comments directly above, inside, or trailing the piece's last line."""
    attached: list[Token] = []
    expected = piece.line - 1
    for c in reversed(piece.leading_comments):
        first_line = index.locate(c.start)[0]
        last_line = index.locate(max(c.end - 1, c.start))[0]
        if last_line not in (expected, piece.line) or first_line == prev_end_line:
            break
        attached.append(c)
        expected = first_line - 1
    attached.extend(piece.inner_comments)
    end_line = index.locate(max(piece.end - 1, piece.start))[0]
    attached.extend(c for c in following if index.locate(c.start)[0] == end_line)
    out: list[str] = []
    for c in attached:
        if "schema-pipeline" in c.text:
            out.extend(" ".join(m.group(1).split()) for m in _DIRECTIVE.finditer(c.text))
    return tuple(out)
