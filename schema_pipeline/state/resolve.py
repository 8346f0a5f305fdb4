"""Name resolution helpers: the default schema in effect at each statement (SET search_path)."""

from __future__ import annotations

from schema_pipeline.state.lexer import QIDENT, STRING, Token, code_tokens, string_value
from schema_pipeline.state.model import Statement
from schema_pipeline.state.policy import set_config_search_path

IGNORED_PATH_ENTRIES = ("$user", "pg_temp")


def first_schema(entries: list[str]) -> str:
    """The schema unqualified names resolve to for a search_path list (default public)."""
    for e in entries:
        if e and e not in IGNORED_PATH_ENTRIES:
            return e
    return "public"


def search_path_after(kind: str, toks: list[Token], current: str) -> str:
    """Default schema after a statement: changed by SET search_path and set_config only."""
    if kind == "SET":
        i = 1
        if len(toks) > i and toks[i].text.lower() in ("session", "local"):
            i += 1
        if len(toks) > i + 1 and toks[i].text.lower() == "search_path":
            entries: list[str] = []
            for t in toks[i + 2 :]:
                if t.text in (",", ";"):
                    continue
                if t.kind == STRING:
                    entries.extend(s.strip() for s in string_value(t).split(","))
                elif t.kind == QIDENT:
                    entries.append(t.text[1:-1].replace('""', '"'))
                else:
                    entries.append(t.text.lower())
            return first_schema(entries)
    elif kind == "SELECT":
        sp = set_config_search_path(toks)
        if sp is not None:
            return first_schema([s.strip().strip('"') for s in sp.split(",")])
    return current


def default_schemas(statements: list[Statement]) -> list[str]:
    """The default schema in effect for each statement (reset to public at each new file)."""
    out: list[str] = []
    current = "public"
    last_file: str | None = None
    for s in statements:
        if s.file != last_file:
            current = "public"
            last_file = s.file
        out.append(current)
        if s.session_only and s.kind in ("SET", "SELECT"):
            current = search_path_after(s.kind, code_tokens(s.sql), current)
    return out
