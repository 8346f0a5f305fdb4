"""load_state: find the state files, read them safely, split, classify and validate statements."""

from __future__ import annotations

import glob
import hashlib
import os
import re

from schema_pipeline.errors import StateError, StateErrors
from schema_pipeline.state.classify import classify
from schema_pipeline.state.ddl import DUPLICATE_GROUPS, created_object, is_shell_type
from schema_pipeline.state.lexer import Token, remember_tokens
from schema_pipeline.state.model import DesiredState, Statement
from schema_pipeline.state.policy import check_statement, plain_string_with_backslash, standard_strings_after
from schema_pipeline.state.renames import collect_renames
from schema_pipeline.state.resolve import search_path_after
from schema_pipeline.state.splitter import LineIndex, Piece, SplitResult, split_text

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
    # (group, identity) -> first (file, line, column, label)
    defined: dict[tuple[str, str], tuple[str, int, int, str]] = {}

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
        text, derrs = _decode(rel, data)
        if text is None:
            errors.extend(derrs)
            continue
        file_stmts, file_errors, file_renames = _read_file(rel, text, defined)
        statements.extend(file_stmts)
        errors.extend(file_errors)
        renames.update(file_renames)

    if errors:
        order = {f: i for i, (f, _) in enumerate(files)}
        errors.sort(key=lambda e: (order.get(e.file or "", -1), e.line or 0, e.column or 0))
        raise StateErrors(errors)
    return DesiredState(
        root=base, files=rel_files, statements=statements, fingerprint=digest.hexdigest(), renames=renames
    )


_COPY_STDIN = re.compile(
    r"^[ \t]*COPY\b[^\n;]*\bFROM\s+stdin\b[^\n;]*;[ \t\r]*\n", re.IGNORECASE | re.MULTILINE
)
_COPY_END = re.compile(r"^\\\.[ \t\r]*$", re.MULTILINE)


def _split_skipping_copy_data(text: str) -> SplitResult:
    """Split like psql: the data lines after a `COPY ... FROM stdin;` line (up to `\\.`) are not SQL.

    The COPY itself is still rejected; blanking its data (keeping line breaks, so locations
    stay exact) avoids a flood of meaningless errors for a pg_dump that includes data.
    """
    if "\\." in text:
        pos = 0
        while (m := _COPY_STDIN.search(text, pos)) is not None:
            end_m = _COPY_END.search(text, m.end())
            data_end = end_m.end() if end_m else len(text)
            text = text[: m.end()] + re.sub(r"[^\n]", " ", text[m.end() : data_end]) + text[data_end:]
            pos = data_end
    return split_text(text)


def _read_file(
    rel: str, text: str, defined: dict[tuple[str, str], tuple[str, int, int, str]]
) -> tuple[list[Statement], list[StateError], dict[tuple[str, str], str]]:
    """Split, classify and validate one file's statements."""
    split = _split_skipping_copy_data(text)
    index: LineIndex = split.index
    errors: list[StateError] = []
    stmts: list[Statement] = []
    renames: dict[tuple[str, str], str] = {}
    for lex in split.errors:
        line, col = index.locate(lex.offset)
        errors.append(StateError(lex.message, rel, line, col))
    for msg, off in split.structure_errors:
        line, col = index.locate(off)
        errors.append(StateError(msg, rel, line, col))
    lex_offsets = [e.offset for e in split.errors]
    default_schema = "public"
    standard_strings, nonstandard_line = True, 0
    pieces = split.pieces
    for n, piece in enumerate(pieces):
        sql = text[piece.start : piece.end]
        if piece.is_meta:
            cmd = sql.split()[0] if sql.split() else "\\"
            if cmd in _META_ALLOWED:
                stmts.append(Statement(sql, rel, piece.line, piece.column, "\\" + cmd[1:], session_only=True))
            else:
                errors.append(
                    StateError(
                        f"psql meta-command {cmd!r} is not allowed in state files (only pg_dump's "
                        "\\restrict/\\unrestrict are accepted); inline the SQL instead",
                        rel,
                        piece.line,
                        piece.column,
                    )
                )
            continue
        if piece.broken or (any(piece.start <= off for off in lex_offsets) and not piece.terminated):
            continue  # a lexical or structural error already explains this piece
        toks = piece.tokens
        kind = classify(toks)
        verdict = check_statement(toks, kind, default_schema)
        problems = list(verdict.problems)
        if not standard_strings and (k := plain_string_with_backslash(toks)) is not None:
            problems.append((
                f"standard_conforming_strings is off here (SET at line {nonstandard_line}), so PostgreSQL reads the "
                "backslash in this literal as an escape; write the literal as E'...' and drop the SET", k))
        for msg, tidx in problems:
            off = toks[tidx].start if 0 <= tidx < len(toks) else piece.start
            line, col = index.locate(off)
            errors.append(StateError(msg, rel, line, col))
        trailing = pieces[n + 1].leading_comments if n + 1 < len(pieces) else split.trailing_comments
        prev_end = index.locate(max(pieces[n - 1].end - 1, 0))[0] if n > 0 else 0
        directives = _directives(piece, trailing, index, prev_end)
        stmt = Statement(sql, rel, piece.line, piece.column, kind, verdict.session_only, directives)
        remember_tokens(sql, toks, piece.start)
        stmts.append(stmt)
        if problems:
            continue
        if kind.startswith("CREATE "):
            obj = created_object(toks, default_schema)
            group = DUPLICATE_GROUPS.get(obj.kind) if obj is not None else None
            if obj is not None and group is not None and obj.name and not is_shell_type(toks, obj):
                key = (group, obj.qualified)
                label = f"{obj.kind} {obj.qualified}"
                if key in defined:
                    f0, l0, c0, label0 = defined[key]
                    errors.append(
                        StateError(
                            f"duplicate definition: {label} is already defined at {f0}:{l0} ({label0}); "
                            "each object must be declared exactly once",
                            rel,
                            piece.line,
                            piece.column,
                        )
                    )
                    errors.append(
                        StateError(
                            f"duplicate definition: {label0} is defined again at {rel}:{piece.line}",
                            f0,
                            l0,
                            c0,
                        )
                    )
                else:
                    defined[key] = (rel, piece.line, piece.column, label)
        renames.update(collect_renames(text, index, piece, toks, kind, default_schema))
        default_schema = search_path_after(kind, toks, default_schema)
        if standard_strings != (standard_strings := standard_strings_after(kind, toks, standard_strings)):
            nonstandard_line = piece.line
    return stmts, errors, renames


_DIRECTIVE = re.compile(r"schema-pipeline:\s*([^\n]*?)\s*(?:\*/)?\s*$", re.IGNORECASE | re.MULTILINE)


def _directives(
    piece: Piece, following: list[Token], index: LineIndex, prev_end_line: int
) -> tuple[str, ...]:
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
