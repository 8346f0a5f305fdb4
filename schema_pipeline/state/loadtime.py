"""How a state statement is run in the plan database (token level, no database).

The plan database must never execute a query of the state: a materialized view is created
there `WITH NO DATA` (PostgreSQL then neither plans nor runs its query), and whether the state
declared it populated is kept aside so the desired catalog still says so. Statements about event
triggers are recognised so the loader can run them after everything else (see plandb.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from schema_pipeline.state.classify import classify
from schema_pipeline.state.ddl import is_word
from schema_pipeline.state.lexer import PUNCT, WORD, Token, based_tokens
from schema_pipeline.state.model import Statement


def statement_kind(stmt: Statement) -> str:
    """The statement's kind ("CREATE FUNCTION", ...), classified from its text when not recorded."""
    return stmt.kind or classify(based_tokens(stmt.sql)[0])


def _words(toks: list[Token], n: int) -> list[str]:
    return [t.text.lower() if t.kind == WORD else "" for t in toks[:n]]


def is_event_trigger_statement(stmt: Statement, kind: str | None = None) -> bool:
    """CREATE/ALTER/DROP EVENT TRIGGER and COMMENT ON EVENT TRIGGER."""
    kind = kind if kind is not None else statement_kind(stmt)
    if kind in ("CREATE EVENT TRIGGER", "ALTER EVENT TRIGGER", "DROP EVENT TRIGGER"):
        return True
    if kind == "COMMENT":
        return _words(based_tokens(stmt.sql)[0], 4)[1:4] == ["on", "event", "trigger"]
    return False


@dataclass(frozen=True)
class PlanDbText:
    """What the plan database runs for a statement, and what the state declared."""

    sql: str
    populated: bool  # a materialized view: declared WITH DATA (the default) rather than WITH NO DATA


def matview_without_data(stmt: Statement, kind: str | None = None) -> PlanDbText | None:
    """For CREATE MATERIALIZED VIEW: the same statement ending in WITH NO DATA (else None).

    The text up to the end of the query is kept byte for byte (error positions stay valid); a
    trailing `WITH [NO] DATA`, the `;` and trailing comments are replaced.
    """
    kind = kind if kind is not None else statement_kind(stmt)
    if kind != "CREATE MATERIALIZED VIEW":
        return None
    toks, base = based_tokens(stmt.sql)
    code = [t for t in toks if not (t.kind == PUNCT and t.text == ";")]
    if not code:
        return None
    populated = True
    end = len(code)
    if len(code) >= 3 and is_word(code[-3], "with") and is_word(code[-2], "no") and is_word(code[-1], "data"):
        populated, end = False, len(code) - 3
    elif len(code) >= 2 and is_word(code[-2], "with") and is_word(code[-1], "data"):
        end = len(code) - 2
    if end == 0:
        return None
    cut = code[end - 1].end - base
    return PlanDbText(stmt.sql[:cut] + "\nWITH NO DATA", populated)
