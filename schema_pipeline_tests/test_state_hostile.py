"""Hostile inputs: every bad state is rejected before any database, at the right file:line:column."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from schema_pipeline.errors import StateError, StateErrors
from schema_pipeline.state import load_state

CORPUS = Path(__file__).parent / "hostile"
CASES = sorted(CORPUS.glob("*.sql"))
EXPECT = re.compile(r"-- expect: (\d+):(\d+) (.+)")


def _errors(path: str, **kw) -> list[StateError]:
    with pytest.raises(StateErrors) as exc:
        load_state(path, **kw)
    return exc.value.errors


def _has(
    errors: list[StateError], file: str | None, line: int | None, keyword: str, column: int | None = None
) -> bool:
    return any(
        e.file == file
        and e.line == line
        and (column is None or e.column == column)
        and keyword.lower() in e.message.lower()
        for e in errors
    )


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_corpus_case_is_rejected_at_its_location(case: Path, tmp_path: Path) -> None:
    m = EXPECT.match(case.read_text().splitlines()[0])
    assert m, f"{case.name}: first line must be '-- expect: LINE:COL keyword'"
    line, column, keyword = int(m.group(1)), int(m.group(2)), m.group(3).strip()
    shutil.copy(case, tmp_path / case.name)
    errors = _errors(str(tmp_path))
    assert _has(errors, case.name, line, keyword, column), "\n".join(str(e) for e in errors)


def test_non_utf8_bytes_report_their_line(tmp_path: Path) -> None:
    (tmp_path / "latin1.sql").write_bytes(b"CREATE TABLE t (a text);\nCOMMENT ON TABLE t IS 'caf\xe9';\n")
    errors = _errors(str(tmp_path))
    assert _has(errors, "latin1.sql", 2, "UTF-8", 27)


def test_nul_byte_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bin.sql").write_bytes(b"CREATE TABLE t ();\n\nCREATE\x00 TABLE u ();\n")
    errors = _errors(str(tmp_path))
    assert _has(errors, "bin.sql", 3, "NUL byte", 7)


def test_file_above_size_limit_is_rejected_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "huge.sql"
    with open(big, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # sparse 50 MB file
    errors = _errors(str(tmp_path))
    assert _has(errors, "huge.sql", None, "above the limit")


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("CREATE TABLE t (a int);\n" * 10)
    errors = _errors(str(tmp_path), max_file_bytes=100)
    assert _has(errors, "a.sql", None, "max_file_bytes")


def test_empty_glob_names_the_pattern(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.sql")
    with pytest.raises(StateError) as exc:
        load_state(pattern)
    assert pattern in str(exc.value) and exc.value.file is None


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StateError, match=r"no \*\.sql files"):
        load_state(str(tmp_path))


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="does not exist"):
        load_state(str(tmp_path / "nope"))


def test_symlinked_file_outside_root_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.sql").write_text("CREATE TABLE s ();\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "a.sql").write_text("CREATE TABLE a ();\n")
    os.symlink(outside / "secret.sql", state / "b.sql")
    errors = _errors(str(state))
    assert _has(errors, "b.sql", None, "outside the state root")


def test_symlinked_directory_outside_root_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.sql").write_text("CREATE TABLE x ();\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "a.sql").write_text("CREATE TABLE a ();\n")
    os.symlink(outside, state / "linked")
    errors = _errors(str(state))
    assert _has(errors, "linked", None, "outside the state root")


def test_symlink_outside_glob_prefix_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside.sql"
    outside.write_text("CREATE TABLE x ();\n")
    state = tmp_path / "state"
    state.mkdir()
    os.symlink(outside, state / "x.sql")
    errors = _errors(str(state / "*.sql"))
    assert _has(errors, "x.sql", None, "outside the state root")


def test_symlink_inside_root_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.sql").write_text("CREATE TABLE a ();\n")
    os.symlink(tmp_path / "real" / "a.sql", tmp_path / "b.sql")
    state = load_state(str(tmp_path / "*.sql"), root=str(tmp_path))
    assert state.files == ["b.sql"]


def test_symlink_allowed_by_explicit_root(tmp_path: Path) -> None:
    (tmp_path / "shared.sql").write_text("CREATE TABLE s ();\n")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    os.symlink(tmp_path / "shared.sql", state_dir / "s.sql")
    state = load_state(str(state_dir), root=str(tmp_path))
    assert state.files == ["s.sql"]


def test_duplicates_across_files_report_both_locations(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("-- users\nCREATE TABLE public.users (id int);\n")
    (tmp_path / "b.sql").write_text("\n\nCREATE TABLE users (id bigint);\n")
    errors = _errors(str(tmp_path))
    assert _has(errors, "b.sql", 3, "already defined at a.sql:2")
    assert _has(errors, "a.sql", 2, "defined again at b.sql:3")


def test_same_name_in_different_schemas_is_not_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("CREATE TABLE a.t ();\nCREATE TABLE b.t ();\nCREATE TABLE t ();\n")
    assert len(load_state(str(tmp_path)).statements) == 3


def test_function_overloads_are_not_duplicates(tmp_path: Path) -> None:
    (tmp_path / "f.sql").write_text(
        "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'select 1';\n"
        "CREATE FUNCTION f(a text) RETURNS int LANGUAGE sql AS 'select 1';\n"
    )
    assert len(load_state(str(tmp_path)).statements) == 2


def test_all_problems_are_collected_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("INSERT INTO t VALUES (1);\nCREATE TABLE ok ();\nDELETE FROM t;\n")
    (tmp_path / "b.sql").write_text("CREATE TABLE x (a text DEFAULT 'unterminated);\n")
    (tmp_path / "c.sql").write_text("\\i other.sql\n")
    errors = _errors(str(tmp_path))
    assert [(e.file, e.line) for e in errors] == [("a.sql", 1), ("a.sql", 3), ("b.sql", 1), ("c.sql", 1)]
    assert str(errors[0]).startswith("a.sql:1:1: ")


def test_pg_dump_with_data_reports_each_copy_once(tmp_path: Path) -> None:
    (tmp_path / "dump.sql").write_text(
        "CREATE TABLE public.t (a integer, b text);\n"
        "COPY public.t (a, b) FROM stdin;\n"
        "1\tit's; odd\n2\t\\N\n\\.\n\n"
        "CREATE TABLE public.u ();\n"
    )
    errors = _errors(str(tmp_path))
    assert [(e.file, e.line, e.column) for e in errors] == [("dump.sql", 2, 1)]
    assert "COPY" in errors[0].message


def test_shell_type_then_definition_is_not_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "t.sql").write_text(
        "CREATE TYPE public.mood;\nCREATE TYPE public.mood AS ENUM ('a');\nCREATE TYPE public.mood AS ENUM ('b');\n"
    )
    errors = _errors(str(tmp_path))
    assert [(e.file, e.line) for e in errors] == [("t.sql", 2), ("t.sql", 3)]
