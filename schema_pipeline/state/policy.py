"""The allow-list: which statements a desired-state file may contain.

A state file declares schema objects. Data changes, dynamic code, cluster-level objects
(databases, roles, tablespaces), credentials, server configuration and transaction control
are rejected here, before any database is contacted. What pg_dump writes stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from schema_pipeline.state.classify import CREATE_MODIFIERS, object_type, words_of
from schema_pipeline.state.ddl import created_object, is_word, matching_paren, split_commas, tok_at
from schema_pipeline.state.lexer import (
    DOLLAR,
    OP,
    PUNCT,
    QIDENT,
    STRING,
    WORD,
    Token,
    ident_value,
    string_value,
)

# Session settings pg_dump writes (and harmless ones like it): allowed, session-only.
SESSION_SETTINGS = frozenset(
    [
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "transaction_timeout",
        "client_encoding",
        "standard_conforming_strings",
        "check_function_bodies",
        "xmloption",
        "client_min_messages",
        "row_security",
        "default_tablespace",
        "default_table_access_method",
        "search_path",
        "default_with_oids",
        "escape_string_warning",
    ]
)

UNTRUSTED_LANGUAGES = frozenset(
    ["c", "internal", "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu", "plsh", "pljavau", "plr"]
)

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})

_DML = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "TRUNCATE",
        "COPY",
        "SELECT",
        "VALUES",
        "TABLE",
        "WITH",
        "CALL",
        "EXECUTE",
        "PREPARE",
        "DEALLOCATE",
        "EXPLAIN",
        "DECLARE",
        "FETCH",
        "MOVE",
        "CLOSE",
        "SHOW",
    }
)
_TX = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START TRANSACTION", "END", "ABORT"}
_MAINTENANCE = {
    "VACUUM",
    "ANALYZE",
    "CLUSTER",
    "REINDEX",
    "CHECKPOINT",
    "LOAD",
    "LOCK",
    "DISCARD",
    "LISTEN",
    "UNLISTEN",
    "NOTIFY",
    "REFRESH MATERIALIZED VIEW",
}
_CLUSTER_OBJECTS = {"database", "role", "user", "group", "tablespace", "subscription", "system"}
_CREDENTIAL_OBJECTS = {"server", "user mapping"}
# Object kinds the engine does not model yet: refused (CREATE/ALTER) rather than loaded into the plan
# database and then silently missing from the plan. Servers and user mappings are refused above, as
# credentials, with the same advice.
_UNMANAGED_OBJECTS = {
    "access method",
    "conversion",
    "transform",
    "foreign data wrapper",
    "foreign table",
    "operator class",
    "operator family",
    "text search parser",
    "text search template",
}


def _not_managed(what: str) -> str:
    return f"{what} is not managed by schema-pipeline yet; create it outside the state"


@dataclass
class Verdict:
    """Outcome of checking one statement: problems (message, token index) and session_only."""

    problems: list[tuple[str, int]]
    session_only: bool = False


def _is_set_config(toks: list[Token]) -> bool:
    """SELECT [pg_catalog.]set_config('search_path', '...', false) — pg_dump's preamble line."""
    i = 1
    if is_word(tok_at(toks, i), "pg_catalog") and tok_at(toks, i + 1) and toks[i + 1].text == ".":
        i += 2
    if not is_word(tok_at(toks, i), "set_config"):
        return False
    rest = [t for t in toks[i + 1 :] if not (t.kind == PUNCT and t.text == ";")]
    shape = [t.kind if t.kind != PUNCT else t.text for t in rest]
    return (
        shape == ["(", STRING, ",", STRING, ",", WORD, ")"]
        and string_value(rest[1]) == "search_path"
        and rest[5].text.lower() == "false"
    )


def set_config_search_path(toks: list[Token]) -> str | None:
    """The search_path value written by an allowed set_config statement."""
    strings = [t for t in toks if t.kind == STRING]
    return string_value(strings[1]) if len(strings) >= 2 else None


def _setting_value(value_toks: list[Token]) -> str:
    """The value of `SET name = value` as one lower-case word ('' when it is not a single token)."""
    vals = [t for t in value_toks if t.text != ";"]
    if len(vals) != 1:
        return ""
    v = vals[0]
    return (string_value(v) if v.kind == STRING else v.text).strip().lower()


def _check_set_value(name: str, value_toks: list[Token]) -> Verdict:
    """Values that would change how the state files themselves are read are refused (for
    standard_conforming_strings = off, see `plain_string_with_backslash`)."""
    value = _setting_value(value_toks)
    if name == "client_encoding" and value not in ("utf8", "utf-8", "unicode", "default"):
        return Verdict(
            [(f"SET client_encoding = {value or '?'}: state files are UTF-8, so only UTF8 is allowed", 0)]
        )
    return Verdict([], session_only=True)


def standard_strings_after(kind: str, toks: list[Token], current: bool) -> bool:
    """Whether '...' literals are standard (a backslash is an ordinary character) after this statement:
    changed by SET and RESET of standard_conforming_strings (pg_dump before 9.1 wrote it off)."""
    if kind not in ("SET", "RESET"):
        return current
    i = 2 if is_word(tok_at(toks, 1), "session", "local") else 1
    t = tok_at(toks, i)
    if t is None or t.kind not in (WORD, QIDENT) or ident_value(t) != "standard_conforming_strings":
        return current
    return kind == "RESET" or _setting_value(toks[i + 2:]) in ("on", "true", "1", "yes", "default")


def plain_string_with_backslash(toks: list[Token]) -> int | None:
    """Index of the first '...' (or N'...') literal holding a backslash: with standard_conforming_strings
    off PostgreSQL reads that backslash as an escape, and the state files (read as standard strings)
    would mean something else. Literals without one read the same either way."""
    for k, t in enumerate(toks):
        if t.kind == STRING and "\\" in t.text and (t.text[0] == "'" or t.text[:2] in ("N'", "n'")):
            return k
    return None


_ALLOWED_SETTINGS = ", ".join(sorted(SESSION_SETTINGS))


def _check_reset(toks: list[Token]) -> Verdict:
    """RESET of a session setting that SET may change (it restores the default); nothing else."""
    t = tok_at(toks, 1)
    if t is not None and t.kind in (WORD, QIDENT) and ident_value(t) in SESSION_SETTINGS and (
            tok_at(toks, 2) is None or toks[2].text == ";"):
        return Verdict([], session_only=True)
    return Verdict([(f"RESET is allowed in state files only for the session settings SET may change "
                      f"({_ALLOWED_SETTINGS})", 0)])


def _check_set(toks: list[Token]) -> Verdict:
    i = 1
    if is_word(tok_at(toks, i), "session", "local"):
        if is_word(tok_at(toks, i), "session") and is_word(tok_at(toks, i + 1), "authorization"):
            return Verdict(
                [
                    (
                        "SET SESSION AUTHORIZATION changes the acting role; roles are managed "
                        "outside the state (remove this statement)",
                        0,
                    )
                ]
            )
        i += 1
    t = tok_at(toks, i)
    if t is None or t.kind not in (WORD, QIDENT):
        return Verdict([("SET without a setting name", 0)])
    name = ident_value(t)
    if (
        name in SESSION_SETTINGS
        and tok_at(toks, i + 1) is not None
        and (toks[i + 1].text in ("=",) or is_word(toks[i + 1], "to"))
    ):
        return _check_set_value(name, toks[i + 2 :])
    if name == "role":
        return Verdict(
            [
                (
                    "SET ROLE changes the acting role; roles are managed outside the state "
                    "(remove this statement)",
                    0,
                )
            ]
        )
    if name in ("transaction", "constraints"):
        return Verdict(
            [
                (
                    f"SET {name.upper()} is transaction control; the pipeline manages "
                    "transactions (remove this statement)",
                    0,
                )
            ]
        )
    return Verdict(
        [
            (
                f"SET {name} is not allowed in state files: only the session settings pg_dump "
                f"writes may be set ({_ALLOWED_SETTINGS})",
                0,
            )
        ]
    )


def _function_language(toks: list[Token]) -> tuple[str | None, int]:
    depth = 0
    for k, t in enumerate(toks):
        if t.kind == PUNCT and t.text == "(":
            depth += 1
        elif t.kind == PUNCT and t.text == ")":
            depth -= 1
        elif depth == 0 and is_word(t, "language"):
            nxt = tok_at(toks, k + 1)
            if nxt is not None:
                if nxt.kind in (WORD, QIDENT):
                    return ident_value(nxt), k
                if nxt.kind in (STRING, DOLLAR):
                    return string_value(nxt).lower(), k
        elif depth == 0 and is_word(t, "begin") and is_word(tok_at(toks, k + 1), "atomic"):
            break
    return None, -1


def _check_role_grant(toks: list[Token], verb: str) -> Verdict:
    """GRANT/REVOKE without ON is a role-membership change (cluster level)."""
    depth = 0
    for t in toks:
        if t.kind == PUNCT and t.text == "(":
            depth += 1
        elif t.kind == PUNCT and t.text == ")":
            depth -= 1
        elif depth == 0 and is_word(t, "on"):
            return Verdict([])
        elif depth == 0 and is_word(t, "to", "from"):
            break
    return Verdict(
        [
            (
                f"{verb} of role membership changes roles, which are cluster-level and managed "
                "outside the state (GRANT privileges ON objects is fine)",
                0,
            )
        ]
    )


def check_statement(toks: list[Token], kind: str, search_path: str) -> Verdict:
    """Check one statement (code tokens, classification) against the allow-list."""
    if not kind:
        first = toks[0].text if toks else ""
        return Verdict([(f"syntax error: {first[:40]!r} does not start an SQL statement", 0)])
    if kind in _TX:
        return Verdict(
            [(f"transaction control ({kind}) is not allowed: the pipeline manages transactions itself", 0)]
        )
    if kind == "SELECT" and _is_set_config(toks):
        return Verdict([], session_only=True)
    if kind in _DML:
        extra = ""
        if kind == "COPY" and any(is_word(t, "program") for t in toks):
            extra = " (COPY ... PROGRAM runs a shell command on the server)"
        return Verdict(
            [
                (
                    f"{kind} is a data or query statement (DML){extra}; state files may only "
                    "declare schema objects",
                    0,
                )
            ]
        )
    if kind == "DO":
        return Verdict(
            [
                (
                    "DO blocks run dynamic code and are not allowed in state files; declare the "
                    "objects directly",
                    0,
                )
            ]
        )
    if kind in _MAINTENANCE:
        return Verdict([(f"{kind} is an operational command, not a schema declaration; remove it", 0)])
    if kind == "SET":
        return _check_set(toks)
    if kind == "RESET":
        return _check_reset(toks)
    if kind == "SECURITY LABEL":
        return Verdict(
            [
                (
                    "SECURITY LABEL is not supported in state files (security providers are "
                    "server configuration)",
                    0,
                )
            ]
        )
    if kind in ("REASSIGN OWNED",):
        return Verdict(
            [("REASSIGN OWNED changes role ownership cluster-wide; roles are managed outside the state", 0)]
        )
    if kind in ("GRANT", "REVOKE"):
        return _check_role_grant(toks, kind)
    if kind == "IMPORT FOREIGN SCHEMA":
        return Verdict([(_not_managed("IMPORT FOREIGN SCHEMA (foreign tables)"), 0)])
    w = words_of(toks, 10)
    verb = w[0] if w else ""
    if verb in ("create", "alter", "drop"):
        i = 1
        if verb == "create":
            while i < len(w) and w[i] in CREATE_MODIFIERS:
                i += 1
        typ, _ = object_type(w, i)
        if typ == "owned" and verb == "drop":
            return Verdict(
                [("DROP OWNED drops objects of roles cluster-wide; roles are managed outside the state", 0)]
            )
        if typ == "system":
            return Verdict(
                [("ALTER SYSTEM changes server configuration; it is not allowed in state files", 0)]
            )
        if typ in ("role", "user", "group"):
            return Verdict(
                [
                    (
                        f"{verb.upper()} {typ.upper()}: roles are cluster-level and managed outside the "
                        "state (the state may GRANT to roles that exist)",
                        0,
                    )
                ]
            )
        if typ == "database":
            return Verdict(
                [
                    (
                        f"{verb.upper()} DATABASE is not allowed: the state describes the contents of one "
                        "database, not databases",
                        0,
                    )
                ]
            )
        if typ in _CLUSTER_OBJECTS:
            return Verdict(
                [(f"{verb.upper()} {typ.upper()} is cluster-level and not allowed in state files", 0)]
            )
        if typ in _CREDENTIAL_OBJECTS:
            return Verdict(
                [
                    (
                        f"{verb.upper()} {typ.upper()} carries connection credentials; it is not "
                        "allowed in state files: " + _not_managed(typ.upper()),
                        0,
                    )
                ]
            )
        if typ in _UNMANAGED_OBJECTS and verb in ("create", "alter"):
            return Verdict([(_not_managed(f"{verb.upper()} {typ.upper()}"), 0)])
        evaluated = _evaluated_at_load(toks, verb, typ)
        if evaluated:
            return evaluated
        if verb == "create":
            return _check_create(toks, typ, search_path)
        return _check_system_target(toks, verb, typ, search_path)
    return Verdict([])


def _function_call(toks: list[Token], a: int, b: int) -> int | None:
    """Index of the first function call in toks[a:b] (a name followed by "("), ignoring type modifiers
    (`::numeric(10, 2)`, `CAST(x AS varchar(3))`) and CAST itself."""
    for k in range(a, b - 1):
        t = toks[k]
        if t.kind not in (WORD, QIDENT) or not (toks[k + 1].kind == PUNCT and toks[k + 1].text == "("):
            continue
        if is_word(t, "cast"):
            continue
        j = k - 1
        while j >= a and (toks[j].kind in (WORD, QIDENT) or toks[j].text == ".") and not is_word(toks[j], "as"):
            j -= 1
        before = toks[j] if j >= a else None
        if before is not None and ((before.kind == OP and before.text == "::") or is_word(before, "as")):
            continue
        return j + 1  # the start of the (possibly qualified) function name
    return None


def _depth0(toks: list[Token], start: int = 0) -> list[int]:
    """Indexes of the tokens of toks[start:] that are outside parentheses."""
    out: list[int] = []
    depth = 0
    for k in range(start, len(toks)):
        t = toks[k]
        if t.kind == PUNCT and t.text in "([":
            if depth == 0:
                out.append(k)
            depth += 1
            continue
        if t.kind == PUNCT and t.text in ")]":
            depth -= 1
            continue
        if depth == 0:
            out.append(k)
    return out


_COLUMN_CONSTRAINT_WORDS = ("not", "null", "check", "constraint", "generated", "unique", "primary", "references",
                            "collate", "deferrable", "initially")


def _evaluated_at_load(toks: list[Token], verb: str, typ: str) -> Verdict | None:
    """Expressions PostgreSQL evaluates while the statement runs, even on empty tables: partition bounds
    (`FOR VALUES ...`) and the DEFAULT of a column added by ALTER TABLE (its value is computed at once).
    They would run while the state loads into the plan database, so they may not call functions."""
    if typ not in ("table", "foreign table") or verb not in ("create", "alter"):
        return None
    top = _depth0(toks)
    for n, k in enumerate(top[:-1]):
        if not (is_word(toks[k], "for") and is_word(toks[top[n + 1]], "values")):
            continue
        j = top[n + 1] + 1
        groups: list[int] = []
        if is_word(tok_at(toks, j), "in", "with", "from") and tok_at(toks, j + 1) and toks[j + 1].text == "(":
            groups.append(j + 1)
            if is_word(toks[j], "from"):
                close = matching_paren(toks, j + 1)
                if is_word(tok_at(toks, close + 1), "to") and tok_at(toks, close + 2) and toks[close + 2].text == "(":
                    groups.append(close + 2)
        for g in groups:
            call = _function_call(toks, g + 1, matching_paren(toks, g))
            if call is not None:
                return Verdict([("a partition bound may not call a function: PostgreSQL evaluates partition bound "
                                 "expressions when the statement runs, so the function would run while the state "
                                 "is loaded; write the bound as a constant", call)])
    if verb != "alter" or typ != "table":
        return None
    end = len(toks) - (1 if toks and toks[-1].text == ";" else 0)
    for a, b in split_commas(toks, 0, end):
        k = a
        while k < b and not is_word(toks[k], "add"):
            k += 1
        if k >= b or is_word(tok_at(toks, k + 1), "constraint", "primary", "unique", "foreign", "check", "exclude"):
            continue
        action = [i for i in _depth0(toks, k) if i < b]
        for n, d in enumerate(action):
            if not is_word(toks[d], "default"):
                continue
            stop = next((i for i in action[n + 1:] if is_word(toks[i], *_COLUMN_CONSTRAINT_WORDS)), b)
            call = _function_call(toks, d + 1, stop)
            if call is not None:
                return Verdict([("a column added by ALTER TABLE may not have a DEFAULT that calls a function: "
                                 "PostgreSQL computes such a default when the column is added (even to an empty "
                                 "table), so it would run while the state is loaded; declare the column in CREATE "
                                 "TABLE, or add it without the default and set the default with ALTER TABLE ... "
                                 "ALTER COLUMN ... SET DEFAULT", call)])
    return None


_NAMED_TARGETS = frozenset(
    {
        "table",
        "view",
        "index",
        "sequence",
        "function",
        "procedure",
        "aggregate",
        "type",
        "domain",
        "trigger",
        "schema",
        "materialized view",
        "foreign table",
        "collation",
        "conversion",
        "operator",
        "policy",
        "rule",
        "routine",
        "statistics",
        "text search configuration",
        "text search dictionary",
    }
)


# Built-in text search configurations and dictionaries (pg_catalog; the Snowball languages of PostgreSQL
# 12-18). PostgreSQL searches pg_catalog before the search_path, so an unqualified name among these
# means the built-in object, whatever schema the state works in.
_TS_LANGUAGES = [
    "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "estonian", "finnish", "french",
    "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali",
    "norwegian", "polish", "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil",
    "turkish", "yiddish"]
_BUILTIN_NAMES = {
    "text search configuration": frozenset(["simple", *_TS_LANGUAGES]),
    "text search dictionary": frozenset(["simple", *(f"{lang}_stem" for lang in _TS_LANGUAGES)]),
}


def _check_system_target(toks: list[Token], verb: str, typ: str, search_path: str) -> Verdict:
    """ALTER/DROP of an object that lives in a system schema (pg_catalog, information_schema)."""
    if typ not in _NAMED_TARGETS:
        return Verdict([])
    i = 1 + len(typ.split())
    if is_word(tok_at(toks, i), "if") and is_word(tok_at(toks, i + 1), "exists"):
        i += 2
    if is_word(tok_at(toks, i), "only"):
        i += 1
    if is_word(tok_at(toks, i), "concurrently"):
        i += 1
    first = tok_at(toks, i)
    if first is None or first.kind not in (WORD, QIDENT):
        return Verdict([])
    qualified = tok_at(toks, i + 1) is not None and toks[i + 1].text == "."
    if not qualified and ident_value(first) in _BUILTIN_NAMES.get(typ, ()):
        name = ident_value(first)
        return Verdict([(f"{verb.upper()} {typ.upper()} {name} names the built-in pg_catalog.{name} (PostgreSQL "
                         "looks in pg_catalog first), and the pipeline never touches system schemas; for an "
                         f"object of your own, qualify its name (for example public.{name})", i)])
    schema = ident_value(first) if (qualified or typ == "schema") else search_path
    if schema in SYSTEM_SCHEMAS:
        return Verdict(
            [
                (
                    f"{verb.upper()} {typ.upper()} of an object in system schema {schema!r} is not "
                    "allowed; the pipeline never touches system schemas",
                    i,
                )
            ]
        )
    return Verdict([])


def _check_create(toks: list[Token], typ: str, search_path: str) -> Verdict:
    problems: list[tuple[str, int]] = []
    if typ == "table" and _is_create_table_as(toks):
        problems.append(
            (
                "CREATE TABLE ... AS runs a query when the state is loaded; declare the table's "
                "columns instead (or add WITH NO DATA)",
                0,
            )
        )
    if typ in ("function", "procedure"):
        lang, k = _function_language(toks)
        if lang in UNTRUSTED_LANGUAGES:
            problems.append(
                (
                    f"functions in untrusted language {lang!r} are not allowed (they can run "
                    "arbitrary code on the server); use sql or plpgsql",
                    k,
                )
            )
    elif typ == "language":
        obj = created_object(toks, search_path)
        if obj is not None and obj.name in UNTRUSTED_LANGUAGES:
            problems.append((f"CREATE LANGUAGE {obj.name}: untrusted languages are not allowed", 0))
    obj = created_object(toks, search_path)
    if obj is not None:
        schema = obj.name if obj.kind == "schema" else obj.schema
        if schema is not None and (
            schema in SYSTEM_SCHEMAS or (obj.kind == "schema" and schema.startswith("pg_"))
        ):
            problems.append(
                (
                    f"{obj.kind} {obj.qualified} is in system schema {schema!r}; objects may not "
                    "be created in system schemas",
                    max(obj.name_token, 0),
                )
            )
    return Verdict(problems)


def _is_create_table_as(toks: list[Token]) -> bool:
    """CREATE TABLE name [(cols)] AS query, without WITH NO DATA (which runs nothing)."""
    depth = 0
    as_seen = False
    for k, t in enumerate(toks):
        if t.kind == PUNCT and t.text == "(":
            depth += 1
        elif t.kind == PUNCT and t.text == ")":
            depth -= 1
        elif depth == 0 and not as_seen and k > 2 and is_word(t, "as"):
            as_seen = True
    if not as_seen:
        return False
    words = [t.text.lower() for t in toks[-5:] if t.kind == WORD]
    return words[-3:] != ["with", "no", "data"]
