"""The statement splitter and tokenizer: PostgreSQL's lexical edge cases, with exact locations."""

from __future__ import annotations

from schema_pipeline.state.classify import classify
from schema_pipeline.state.lexer import COMMENT, DOLLAR, QIDENT, STRING, code_tokens, tokenize
from schema_pipeline.state.splitter import split_text


def _stmts(text: str) -> list[str]:
    res = split_text(text)
    assert not res.errors
    return [text[p.start : p.end] for p in res.pieces]


def test_semicolons_inside_strings_identifiers_and_comments() -> None:
    text = "CREATE TABLE \"a;b\" (x text DEFAULT 'x;y''z;');\n-- c;d\n/* e; */ CREATE TABLE c ();"
    assert _stmts(text) == ["CREATE TABLE \"a;b\" (x text DEFAULT 'x;y''z;');", "CREATE TABLE c ();"]


def test_e_string_backslash_escapes() -> None:
    text = r"COMMENT ON TABLE t IS E'it\'s; \\'; CREATE TABLE u ();"
    assert _stmts(text) == [r"COMMENT ON TABLE t IS E'it\'s; \\';", "CREATE TABLE u ();"]


def test_standard_string_backslash_is_not_an_escape() -> None:
    assert _stmts(r"COMMENT ON TABLE t IS 'C:\'; CREATE TABLE u ();") == [
        r"COMMENT ON TABLE t IS 'C:\';",
        "CREATE TABLE u ();",
    ]


def test_nested_block_comments() -> None:
    text = "/* outer /* inner; */ still comment; */ CREATE TABLE t (); /* x */"
    assert _stmts(text) == ["CREATE TABLE t ();"]


def test_dollar_quotes_plain_and_tagged() -> None:
    text = (
        "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $fn$\nBEGIN\n  RETURN $$a;b$$;\nEND\n$fn$;\n"
        "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $$ SELECT 'x;' $$;"
    )
    out = _stmts(text)
    assert len(out) == 2
    assert out[0].endswith("$fn$;") and out[1].endswith("$$;")
    toks = tokenize(text)[0]
    assert [t.text[:4] for t in toks if t.kind == DOLLAR] == ["$fn$", "$$ S"]


def test_dollar_sign_inside_identifier_is_not_a_quote() -> None:
    assert _stmts("CREATE TABLE a$b (c$d int); CREATE TABLE e ();") == [
        "CREATE TABLE a$b (c$d int);",
        "CREATE TABLE e ();",
    ]


def test_begin_atomic_body_keeps_its_semicolons() -> None:
    text = (
        "CREATE FUNCTION app.g(a integer) RETURNS integer\n    LANGUAGE sql\n    BEGIN ATOMIC\n"
        " SELECT (a + 1);\n SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\nEND;\n"
        "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n"
        "CREATE TABLE after_it ();"
    )
    out = _stmts(text)
    assert len(out) == 3
    assert out[0].endswith("END;") and "SELECT CASE" in out[0]
    assert out[1].startswith("CREATE OR REPLACE PROCEDURE") and out[1].endswith("END;")
    assert out[2] == "CREATE TABLE after_it ();"


def test_begin_outside_functions_is_an_ordinary_word() -> None:
    assert len(_stmts("BEGIN; CREATE TABLE t (); COMMIT;")) == 3


def test_parentheses_hold_semicolons_like_psql() -> None:
    assert (
        len(_stmts("CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); CREATE TABLE x ();")) == 2
    )


def test_locations_are_one_based_lines_and_columns() -> None:
    text = "\n\n   CREATE TABLE a ();  CREATE TABLE b\n(x int);\n"
    res = split_text(text)
    assert [(p.line, p.column) for p in res.pieces] == [(3, 4), (3, 24)]


def test_columns_count_code_points_not_bytes() -> None:
    res = split_text("COMMENT ON TABLE t IS 'héllo'; CREATE TABLE u ();")
    assert res.pieces[1].column == 32


def test_last_statement_without_semicolon_is_kept() -> None:
    res = split_text("CREATE TABLE a ();\nCREATE TABLE b ()")
    assert [p.terminated for p in res.pieces] == [True, False]


def test_meta_commands_are_separate_pieces() -> None:
    res = split_text("\\restrict abc\nSET x = 1;\n\\unrestrict abc\n")
    assert [p.is_meta for p in res.pieces] == [True, False, True]


def test_unterminated_constructs_are_located() -> None:
    for text, offset, word in [
        ("SELECT 'abc", 7, "quoted string"),
        ("SELECT E'a\\'", 7, "E''"),
        ('SELECT "abc', 7, "identifier"),
        ("SELECT 1; /* a /* b */", 10, "comment"),
        ("SELECT $x$ abc $y$", 7, "$x$"),
    ]:
        errs = tokenize(text)[1]
        assert len(errs) == 1 and errs[0].offset == offset and word in errs[0].message


def test_token_kinds() -> None:
    toks = tokenize("U&'\\0041' B'101' X'ff' \"Quoted\"\"Id\" -- tail")[0]
    assert [t.kind for t in toks] == [STRING, STRING, STRING, QIDENT, COMMENT]


def test_operator_does_not_swallow_a_comment() -> None:
    toks = tokenize("a */* c */ b")[0]
    assert [t.text for t in toks] == ["a", "*", "/* c */", "b"]


def test_classification() -> None:
    cases = {
        "CREATE TABLE t ()": "CREATE TABLE",
        "create unique index i on t (a)": "CREATE INDEX",
        "CREATE OR REPLACE FUNCTION f() RETURNS int": "CREATE FUNCTION",
        "CREATE MATERIALIZED VIEW mv AS SELECT 1": "CREATE MATERIALIZED VIEW",
        "CREATE UNLOGGED TABLE t ()": "CREATE TABLE",
        "CREATE TEXT SEARCH CONFIGURATION c (COPY = english)": "CREATE TEXT SEARCH CONFIGURATION",
        "ALTER TABLE ONLY t ADD CONSTRAINT p PRIMARY KEY (a)": "ALTER TABLE",
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r": "ALTER DEFAULT PRIVILEGES",
        "COMMENT ON TABLE t IS 'x'": "COMMENT",
        "GRANT SELECT ON t TO r": "GRANT",
        "SET search_path = ''": "SET",
        "SELECT 1": "SELECT",
        "START TRANSACTION": "START TRANSACTION",
        "frobnicate": "",
    }
    for sql, kind in cases.items():
        assert classify(code_tokens(sql)) == kind, sql
