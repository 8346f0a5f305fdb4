"""Functions that escape SQL's privileges (the UNSAFE_FUNCTION hazard).

A function is unsafe when

- its language is ``c`` or ``internal`` (or an untrusted procedural language such as ``plpython3u``):
  it runs code inside the server process, outside anything PostgreSQL's privileges control; or
- it is ``SECURITY DEFINER``, ``PUBLIC`` may execute it (no ``REVOKE EXECUTE ... FROM PUBLIC``),
  and its body runs dynamic SQL (PL/pgSQL ``EXECUTE``, ``FOR ... IN EXECUTE``, ``RETURN QUERY
  EXECUTE``, ``OPEN ... FOR EXECUTE``, or a call of ``dblink``/``dblink_exec``/``query_to_xml``/...,
  which run a query given as text): anyone can run statements of their choosing as its owner.
  A SECURITY DEFINER function in another language (plperl, plv8, ...) cannot be checked and counts
  as running dynamic SQL.

The function's definition is the catalog's ``pg_get_functiondef`` text, read with PostgreSQL's own
parser (libpg_query through pglast): language, SECURITY DEFINER and body come from the parse tree,
and the body's statements and tokens from the PL/pgSQL and SQL parsers, so neither a keyword in a
string or comment nor a quoted or Unicode-escaped language name changes the verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from schema_pipeline.catalog.model import DbObject

# Languages whose functions run arbitrary code in the server process.
NATIVE_LANGUAGES = frozenset({"c", "internal"})
UNTRUSTED_LANGUAGES = frozenset({"plperlu", "plpythonu", "plpython2u", "plpython3u", "pltclu", "plsh"})
# Functions that run SQL handed to them as text (locally or through a loopback connection).
DYNAMIC_SQL_FUNCTIONS = frozenset({
    "dblink", "dblink_exec", "dblink_open", "dblink_send_query", "dblink_get_result",
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "ts_stat", "ts_rewrite",
    "pg_background_launch",
})
# PL/pgSQL statements (and statement fields) that execute a query string.
_DYNAMIC_PLPGSQL = frozenset({"PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors", "dynquery"})
_PUBLIC_EXECUTE = ("PUBLIC=EXECUTE", "PUBLIC=EXECUTE*")


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a JSON parse tree, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _name(token_text: str) -> str:
    """An identifier as PostgreSQL resolves it: quoted names verbatim, others folded to lower case."""
    if token_text.startswith('"') and token_text.endswith('"'):
        return token_text[1:-1].replace('""', '"')
    return token_text.lower()


def _dynamic_call(text: str) -> str | None:
    """The first function of DYNAMIC_SQL_FUNCTIONS that `text` calls, from its tokens (strings and
    comments are single tokens, so names inside them do not count)."""
    from pglast.parser import scan

    try:
        tokens = scan(text)
    except Exception:  # noqa: BLE001 - an unscannable body is judged by the caller
        return None
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        name = _name(text[tok.start:tok.end + 1])
        if name in DYNAMIC_SQL_FUNCTIONS and text[nxt.start:nxt.end + 1] == "(":
            return name
    return None


def _execute_keyword(text: str) -> bool:
    """True when the tokens of `text` hold EXECUTE as a statement (not GRANT/REVOKE EXECUTE,
    EXECUTE FUNCTION/PROCEDURE of a trigger); the fallback when the PL/pgSQL parser refuses a body."""
    from pglast.parser import scan

    words = [(t.name, text[t.start:t.end + 1].lower()) for t in scan(text)
             if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    for i, (name, _) in enumerate(words):
        if name != "EXECUTE":
            continue
        after = words[i + 1][1] if i + 1 < len(words) else ""
        before = {w for _, w in words[max(0, i - 3):i]}
        if after in ("function", "procedure", "on") or before & {"grant", "revoke", ","}:
            continue
        return True
    return False


def _plpgsql_dynamic(definition: str, body: str) -> str | None:
    from pglast.parser import ParseError, parse_plpgsql_json

    try:
        tree = json.loads(parse_plpgsql_json(definition))
    except (ParseError, ValueError):
        if _execute_keyword(body):
            return "runs dynamic SQL (EXECUTE)"
        call = _dynamic_call(body)
        return f"runs SQL given as text ({call})" if call else None
    for key, value in _walk(tree):
        if key in _DYNAMIC_PLPGSQL and value:
            return "runs dynamic SQL (EXECUTE)"
        if key == "query" and isinstance(value, str):
            call = _dynamic_call(value)
            if call:
                return f"runs SQL given as text ({call})"
    return None


def _sql_dynamic(text: str) -> str | None:
    """A call of a dynamic-SQL function (or EXECUTE of a prepared statement) in SQL statements."""
    from pglast.parser import ParseError, parse_sql_json

    try:
        tree = json.loads(parse_sql_json(text))
    except (ParseError, ValueError):
        call = _dynamic_call(text)
        return f"runs SQL given as text ({call})" if call else None
    for key, value in _walk(tree):
        if key == "FuncCall":
            names = [n.get("String", {}).get("sval", "") for n in value.get("funcname", [])]
            if names and names[-1] in DYNAMIC_SQL_FUNCTIONS:
                return f"runs SQL given as text ({names[-1]})"
        elif key == "ExecuteStmt":
            return "runs a prepared statement (EXECUTE)"
    return None


def _options(definition: str) -> tuple[str, bool, list[str], bool] | None:
    """(language, security definer, AS strings, has a SQL-standard body) of a CREATE FUNCTION text."""
    from pglast.parser import ParseError, parse_sql_json

    try:
        stmts = json.loads(parse_sql_json(definition)).get("stmts", [])
    except (ParseError, ValueError):
        return None
    create = stmts[0].get("stmt", {}).get("CreateFunctionStmt") if len(stmts) == 1 else None
    if create is None:
        return None
    language, secdef, body = "sql", False, []
    for opt in create.get("options", []):
        d = opt.get("DefElem", {})
        arg = d.get("arg", {})
        if d.get("defname") == "language":
            language = arg.get("String", {}).get("sval", "")
        elif d.get("defname") == "security":
            secdef = bool(arg.get("Boolean", {}).get("boolval"))
        elif d.get("defname") == "as":
            body = [item.get("String", {}).get("sval", "") for item in arg.get("List", {}).get("items", [])]
    return language.lower(), secdef, body, "sql_body" in create


def unsafe_function_reason(obj: DbObject) -> str | None:
    """Why the function `obj` (catalog attrs: definition, acl, prokind) is unsafe, or None."""
    a = obj.attrs
    definition = a.get("definition") or ""
    if a.get("prokind") == "a" or not definition:
        return None
    parsed = _options(definition)
    if parsed is None:
        return f"{obj.key}: its definition cannot be parsed, so its language and body cannot be checked"
    language, secdef, body, atomic = parsed
    if language in NATIVE_LANGUAGES:
        return (f"{obj.key} is a LANGUAGE {language} function: it runs native code inside the server "
                "process, outside PostgreSQL's privilege checks")
    if language in UNTRUSTED_LANGUAGES:
        return (f"{obj.key} is written in the untrusted language {language}: it can read and write files "
                "and run programs as the server's operating-system user")
    public = any(item in _PUBLIC_EXECUTE for item in a.get("acl") or [])
    if not (secdef and public):
        return None
    if language == "plpgsql":
        why = _plpgsql_dynamic(definition, "\n".join(body))
    elif language == "sql":
        why = _sql_dynamic(definition if atomic else "\n".join(body))
    else:
        why = f"is written in {language}, whose body cannot be checked for dynamic SQL"
    if why is None:
        return None
    owner = a.get("owner") or "its owner"
    return (f"{obj.key} is SECURITY DEFINER, executable by PUBLIC and {why}: any role can run statements "
            f"of its choosing as {owner}; REVOKE EXECUTE ... FROM PUBLIC and grant it to the roles that need it")
