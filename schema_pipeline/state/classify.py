"""Statement classification by leading keywords ("CREATE TABLE", "ALTER TABLE", "GRANT", ...)."""

from __future__ import annotations

from schema_pipeline.state.lexer import WORD, Token

# Every word PostgreSQL accepts as the first word of a statement.
SQL_COMMANDS = frozenset(
    [
        "abort",
        "alter",
        "analyze",
        "analyse",
        "begin",
        "call",
        "checkpoint",
        "close",
        "cluster",
        "comment",
        "commit",
        "copy",
        "create",
        "deallocate",
        "declare",
        "delete",
        "discard",
        "do",
        "drop",
        "end",
        "execute",
        "explain",
        "fetch",
        "grant",
        "import",
        "insert",
        "listen",
        "load",
        "lock",
        "merge",
        "move",
        "notify",
        "prepare",
        "reassign",
        "refresh",
        "reindex",
        "release",
        "reset",
        "revoke",
        "rollback",
        "savepoint",
        "security",
        "select",
        "set",
        "show",
        "start",
        "table",
        "truncate",
        "unlisten",
        "update",
        "vacuum",
        "values",
        "with",
    ]
)

# Words that may sit between CREATE and the object type.
CREATE_MODIFIERS = frozenset(
    [
        "or",
        "replace",
        "temp",
        "temporary",
        "unlogged",
        "global",
        "local",
        "unique",
        "recursive",
        "trusted",
        "procedural",
        "constraint",
        "default",
    ]
)

# Object types of two or more words: first word -> accepted continuations.
_MULTIWORD = {
    "materialized": ("view",),
    "foreign": ("table", "data wrapper"),
    "event": ("trigger",),
    "text": ("search configuration", "search dictionary", "search parser", "search template"),
    "operator": ("class", "family"),
    "user": ("mapping",),
    "access": ("method",),
    "default": ("privileges",),
    "large": ("object",),
}


def words_of(tokens: list[Token] | tuple[Token, ...], limit: int = 8) -> list[str]:
    """The first `limit` unquoted words, lower-cased (stops at the first non-word token)."""
    out: list[str] = []
    for tok in tokens:
        if tok.kind != WORD:
            break
        out.append(tok.text.lower())
        if len(out) >= limit:
            break
    return out


def object_type(words: list[str], i: int) -> tuple[str, int]:
    """The object type starting at words[i] (e.g. "materialized view") and the index after it."""
    if i >= len(words):
        return "", i
    first = words[i]
    for cont in _MULTIWORD.get(first, ()):
        parts = cont.split()
        if words[i + 1 : i + 1 + len(parts)] == parts:
            return " ".join([first, *parts]), i + 1 + len(parts)
    return first, i + 1


def classify(code_tokens: list[Token] | tuple[Token, ...]) -> str:
    """Kind of a statement from its leading keywords; "" when the first word is not an SQL command."""
    if not code_tokens:
        return ""
    first_tok = code_tokens[0]
    if first_tok.kind != WORD:
        if first_tok.text == "(":
            return "SELECT"
        return ""
    return classify_words(words_of(code_tokens))


def classify_words(w: list[str]) -> str:
    """Kind of a statement from its first words, lower-cased ("" when the first is not an SQL command)."""
    if not w:
        return ""
    first = w[0]
    if first not in SQL_COMMANDS:
        return ""
    if first == "create":
        i = 1
        while i < len(w) and w[i] in CREATE_MODIFIERS:
            # "default privileges" is only for ALTER; CREATE DEFAULT CONVERSION is a modifier.
            i += 1
        typ, _ = object_type(w, i)
        return f"CREATE {typ.upper()}".strip()
    if first in ("alter", "drop"):
        typ, _ = object_type(w, 1)
        return f"{first.upper()} {typ.upper()}".strip()
    if first == "security":
        return "SECURITY LABEL"
    if first == "reassign":
        return "REASSIGN OWNED"
    if first == "import":
        return "IMPORT FOREIGN SCHEMA"
    if first == "refresh":
        return "REFRESH MATERIALIZED VIEW"
    if first == "start":
        return "START TRANSACTION"
    if first == "analyse":
        return "ANALYZE"
    return first.upper()
