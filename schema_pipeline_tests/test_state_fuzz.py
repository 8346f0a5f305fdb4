"""Property tests: the tokenizer and splitter never crash and keep statements intact."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from schema_pipeline.errors import StateErrors
from schema_pipeline.state import load_state
from schema_pipeline.state.lexer import tokenize
from schema_pipeline.state.splitter import split_text

SQL_ALPHABET = st.sampled_from(
    list("abcXYZ019 \n\t;,.()'\"$-/*\\E[]:=+<>%&|") + ["$$", "$t$", "--", "/*", "*/"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(SQL_ALPHABET, max_size=80).map("".join))
def test_tokenizer_never_crashes_and_tokens_are_ordered(text: str) -> None:
    tokens, errors = tokenize(text)
    last = 0
    for t in tokens:
        assert last <= t.start < t.end <= len(text)
        assert text[t.start : t.end].startswith(t.text[:1])
        last = t.end
    assert len(errors) <= 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_splitter_never_crashes_on_any_text(text: str) -> None:
    res = split_text(text)
    for p in res.pieces:
        assert 0 <= p.start <= p.end <= len(text) and p.line >= 1 and p.column >= 1


LITERALS = st.sampled_from(
    ["'a;b'", "'it''s'", "E'x\\'y;'", '"q;i"', "$$ ; $$", "$f$ ; $$ $f$", "(1; 2)", "1"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["t", "u", "v"]), LITERALS), min_size=1, max_size=8))
def test_statements_with_tricky_literals_round_trip(parts: list[tuple[str, str]]) -> None:
    stmts = [f"COMMENT ON TABLE {name} IS {lit};" for name, lit in parts]
    text = "\n-- x; y\n".join(stmts)
    res = split_text(text)
    assert [text[p.start : p.end] for p in res.pieces] == stmts


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=120))
def test_load_state_only_raises_state_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "x.sql").write_bytes(data)
        try:
            load_state(d)
        except StateErrors as exc:
            assert exc.errors and all(e.file == "x.sql" for e in exc.errors)
