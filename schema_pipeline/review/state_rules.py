"""Static rules over the desired-state files (no database): naming, keys, types, views, comments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from schema_pipeline.review.catalog import RULES
from schema_pipeline.review.config import ReviewConfig
from schema_pipeline.review.facts import ColumnInfo, Source, StateFacts, TableInfo, collect_facts
from schema_pipeline.review.finding import Finding
from schema_pipeline.review.suppress import is_silenced
from schema_pipeline.state.ddl import DUPLICATE_GROUPS, is_shell_type, is_word, tok_at
from schema_pipeline.state.lexer import OP, PUNCT, QIDENT, WORD, Token
from schema_pipeline.state.model import DesiredState

Emit = Callable[[str, Source, int, str], None]

_INT32 = {"int", "integer", "int4", "serial", "serial4", "smallint", "int2", "smallserial", "serial2"}
_SERIAL = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}


def _raw(tok: Token | None) -> str:
    """Identifier as written (quotes removed, case kept)."""
    if tok is None:
        return ""
    if tok.kind == QIDENT:
        return tok.text[tok.text.index('"') + 1 : -1].replace('""', '"')
    return tok.text


def _last_name_token(toks: list[Token], i: int) -> int:
    """Index of the last part of a qualified name starting at i."""
    while i + 2 < len(toks) and toks[i + 1].text == "." and toks[i + 2].kind in (WORD, QIDENT):
        i += 2
    return i


def _constraint_name_token(src: Source, start: int) -> int:
    return start + 1 if is_word(tok_at(src.toks, start), "constraint") else start


# ------------------------------------------------------------------ naming and identifiers


def _naming(facts: StateFacts, cfg: ReviewConfig, emit: Emit) -> None:
    too_long = cfg.max_identifier_bytes
    seen_long: set[tuple[str, int, int]] = set()

    def check_long(name: str, src: Source, idx: int, what: str) -> None:
        if len(name.encode()) > too_long and (src.stmt.file, src.stmt.line, idx) not in seen_long:
            seen_long.add((src.stmt.file, src.stmt.line, idx))
            emit(
                "ident.too-long",
                src,
                idx,
                f"{what} name {name!r} is {len(name.encode())} bytes; PostgreSQL truncates identifiers to "
                f"{too_long} bytes",
            )

    for t in facts.tables.values():
        idx = _last_name_token(t.src.toks, t.tdef.name_token)
        name = _raw(tok_at(t.src.toks, idx))
        pat = cfg.naming_pattern("table")
        if name and not pat.search(name):
            emit(
                "naming.table",
                t.src,
                idx,
                f"table name {name!r} does not match the naming pattern "
                f"{pat.pattern} (lower-case snake_case by default)",
            )
        check_long(name, t.src, idx, "table")
        col_pat = cfg.naming_pattern("column", t.tdef.name)
        for c in t.columns:
            cname = _raw(tok_at(c.src.toks, c.col.token))
            if not col_pat.search(cname):
                emit(
                    "naming.column",
                    c.src,
                    c.col.token,
                    f"column {cname!r} of table {t.tdef.qualified} does not match the naming pattern {col_pat.pattern}",
                )
            check_long(cname, c.src, c.col.token, "column")
        for ci in t.constraints:
            con = ci.con
            if not con.name:
                continue
            idx = _constraint_name_token(ci.src, con.token)
            cname = _raw(tok_at(ci.src.toks, idx))
            key = con.kind.replace(" ", "_")
            pat = cfg.naming_pattern(key, t.tdef.name)
            if not pat.search(cname):
                emit(
                    "naming.constraint",
                    ci.src,
                    idx,
                    f"{con.kind} constraint {cname!r} on {t.tdef.qualified} does not match the naming "
                    f"pattern {pat.pattern}",
                )
            check_long(cname, ci.src, idx, "constraint")
    for ii in facts.indexes:
        if ii.idef.name_token < 0:
            continue
        name = _raw(tok_at(ii.src.toks, ii.idef.name_token))
        table = ii.idef.table.rsplit(".", 1)[-1]
        pat = cfg.naming_pattern("index", table)
        if not pat.search(name):
            emit(
                "naming.index",
                ii.src,
                ii.idef.name_token,
                f"index {name!r} on {ii.idef.table} does not match the naming pattern {pat.pattern}",
            )
        check_long(name, ii.src, ii.idef.name_token, "index")
    for oi in facts.objects:
        if oi.obj.kind in ("table", "index") or oi.obj.name_token < 0:
            continue
        idx = _last_name_token(oi.src.toks, oi.obj.name_token)
        check_long(_raw(tok_at(oi.src.toks, idx)), oi.src, idx, oi.obj.kind)


def _duplicates(facts: StateFacts, cfg: ReviewConfig, emit: Emit) -> None:
    first: dict[tuple[str, str], Source] = {}
    for oi in facts.objects:
        group = DUPLICATE_GROUPS.get(oi.obj.kind)
        if group is None or is_shell_type(oi.src.toks, oi.obj):
            continue
        key = (group, oi.obj.qualified)
        prev = first.get(key)
        if prev is None:
            first[key] = oi.src
            continue
        emit(
            "state.duplicate-object",
            oi.src,
            -1,
            f"{oi.obj.kind} {oi.obj.qualified} is already declared at {prev.stmt.file}:{prev.stmt.line}",
        )
    for t in facts.tables.values():
        seen: dict[str, ColumnInfo] = {}
        for c in t.columns:
            if c.col.name in seen:
                emit(
                    "ident.duplicate-column",
                    c.src,
                    c.col.token,
                    f"column {c.col.name!r} of {t.tdef.qualified} is declared twice",
                )
            seen[c.col.name] = c


# ------------------------------------------------------------------ keys and indexes


def _index_keys(t: TableInfo, facts_indexes: list) -> list[list[str]]:
    keys = [ci.con.columns for ci in t.constraints if ci.con.kind in ("primary key", "unique")]
    keys.extend(ii.idef.columns for ii in facts_indexes)
    return keys


def _keys(facts: StateFacts, cfg: ReviewConfig, emit: Emit) -> None:
    by_table: dict[str, list] = defaultdict(list)
    for ii in facts.indexes:
        by_table[ii.idef.table].append(ii)
    for qname, t in facts.tables.items():
        pks = [ci for ci in t.constraints if ci.con.kind == "primary key"]
        name_idx = _last_name_token(t.src.toks, t.tdef.name_token)
        if not pks and not t.tdef.partition_of:
            emit(
                "table.require-pk",
                t.src,
                name_idx,
                f"table {qname} has no primary key (declare one in CREATE TABLE or ALTER TABLE ... ADD "
                "PRIMARY KEY)",
            )
        if len(pks) > 1:
            emit(
                "table.multiple-pk",
                pks[1].src,
                pks[1].con.token,
                f"table {qname} declares {len(pks)} primary keys",
            )
        keys = _index_keys(t, by_table.get(qname, []))
        for ci in t.constraints:
            con = ci.con
            if con.kind == "foreign key" and cfg.severity("fk.no-cascade-delete") and con.on_delete_cascade:
                emit(
                    "fk.no-cascade-delete",
                    ci.src,
                    con.token,
                    f"foreign key {con.name or '(unnamed)'} on {qname} uses ON DELETE CASCADE",
                )
            if con.kind != "foreign key" or not con.columns or "" in con.columns:
                continue
            n = len(con.columns)
            want = set(con.columns)
            if not any(len(k) >= n and set(k[:n]) == want for k in keys):
                label = f"foreign key {con.name} " if con.name else "foreign key "
                emit(
                    "fk.require-index",
                    ci.src,
                    con.token,
                    f"{label}({', '.join(con.columns)}) on {qname} has no index whose leading columns are "
                    f"({', '.join(con.columns)}); add CREATE INDEX ON {qname} ({', '.join(con.columns)})",
                )
        # Types of key columns.
        coltypes = {c.col.name: c for c in t.columns}
        for ci in pks:
            if len(ci.con.columns) == 1:
                c = coltypes.get(ci.con.columns[0])
                if c is not None and c.col.type_words[:1] and c.col.type_words[0] in _INT32:
                    emit(
                        "type.prefer-bigint-pk",
                        c.src,
                        c.col.token,
                        f"primary key {qname}.{c.col.name} is {c.col.type_words[0]}; use bigint (or bigint "
                        "GENERATED ALWAYS AS IDENTITY)",
                    )
    # Duplicate indexes (including the implicit indexes of PK/UNIQUE constraints).
    for qname, idxs in by_table.items():
        t = facts.tables.get(qname)
        seen: dict[tuple, str] = {}
        if t is not None:
            for ci in t.constraints:
                if ci.con.kind in ("primary key", "unique") and ci.con.columns:
                    seen[(tuple(ci.con.columns), "btree")] = f"the {ci.con.kind} constraint"
        for ii in idxs:
            toks = ii.src.toks
            if not ii.idef.columns or "" in ii.idef.columns or any(is_word(x, "where") for x in toks):
                continue
            method = "btree"
            for k, tok in enumerate(toks):
                if is_word(tok, "using") and k + 1 < len(toks):
                    method = toks[k + 1].text.lower()
                    break
            key = (tuple(ii.idef.columns), method)
            label = f"index {ii.idef.name}" if ii.idef.name else "an unnamed index"
            if key in seen:
                emit(
                    "index.duplicate",
                    ii.src,
                    max(ii.idef.name_token, 0),
                    f"{label} on {qname} ({', '.join(ii.idef.columns)}) duplicates {seen[key]}",
                )
            else:
                seen[key] = label


# ------------------------------------------------------------------ types


def _types(facts: StateFacts, cfg: ReviewConfig, emit: Emit) -> None:
    for t in facts.tables.values():
        for c in t.columns:
            w = c.col.type_words
            if not w:
                continue
            where = f"{t.tdef.qualified}.{c.col.name}"
            has_len = "(" in c.col.type_text
            if (w[0] == "varchar" or w[:2] == ["character", "varying"]) and has_len:
                emit(
                    "type.prefer-text",
                    c.src,
                    c.col.token,
                    f"{where} is {c.col.type_text}; prefer text (add a CHECK (length(...) <= n) if the limit "
                    "matters)",
                )
            elif w[0] in ("char", "bpchar", "nchar") or (w[0] == "character" and w[1:2] != ["varying"]):
                emit("type.no-char", c.src, c.col.token, f"{where} is {c.col.type_text}; use text or varchar")
            elif w[0] == "money":
                emit("type.no-money", c.src, c.col.token, f"{where} is money; use numeric")
            elif w[0] == "timestamp" and "with" not in w:
                emit(
                    "type.prefer-timestamptz",
                    c.src,
                    c.col.token,
                    f"{where} is {c.col.type_text}; use timestamptz (timestamp with time zone)",
                )
            elif w == ["json"]:
                emit("type.prefer-jsonb", c.src, c.col.token, f"{where} is json; use jsonb")
            if w[0] in _SERIAL and len(w) == 1:
                emit(
                    "type.prefer-identity",
                    c.src,
                    c.col.token,
                    f"{where} is {w[0]}; use bigint GENERATED ALWAYS AS IDENTITY",
                )


# ------------------------------------------------------------------ views, comments, qualification


def _views(facts: StateFacts, cfg: ReviewConfig, emit: Emit) -> None:
    for v in facts.views:
        toks = v.src.toks
        for k, tok in enumerate(toks):
            if tok.kind != OP or tok.text != "*" or k == 0:
                continue
            prev = toks[k - 1]
            if (prev.kind == WORD and prev.text.lower() in ("select", "distinct", "all")) or (
                prev.kind == PUNCT and prev.text in (",", ".")
            ):
                emit(
                    "view.no-select-star",
                    v.src,
                    k,
                    f"{v.obj.kind} {v.obj.qualified} selects *; list the columns explicitly",
                )
                break


def _comments(facts: StateFacts, cfg: ReviewConfig, emit: Emit) -> None:
    want_table = cfg.severity("table.require-comment") is not None
    want_column = cfg.severity("column.require-comment") is not None
    for t in facts.tables.values():
        if want_table and not t.commented:
            emit(
                "table.require-comment",
                t.src,
                _last_name_token(t.src.toks, t.tdef.name_token),
                f"table {t.tdef.qualified} has no COMMENT ON TABLE",
            )
        if want_column:
            for c in t.columns:
                if c.col.name not in t.commented_columns:
                    emit(
                        "column.require-comment",
                        c.src,
                        c.col.token,
                        f"column {t.tdef.qualified}.{c.col.name} has no COMMENT ON COLUMN",
                    )


def _qualified(facts: StateFacts, cfg: ReviewConfig, emit: Emit) -> None:
    if cfg.severity("schema.qualified-names") is None:
        return
    for oi in facts.objects:
        toks = oi.src.toks
        if oi.obj.schema is None:
            continue
        idx = oi.obj.name_token
        if oi.obj.kind in ("index", "trigger", "policy", "rule"):
            idx = next((k + 1 for k in range(len(toks)) if is_word(toks[k], "on")), -1)
            if is_word(tok_at(toks, idx), "only"):
                idx += 1
        if idx < 0 or tok_at(toks, idx) is None:
            continue
        nxt = tok_at(toks, idx + 1)
        if nxt is None or nxt.text != ".":
            emit(
                "schema.qualified-names",
                oi.src,
                idx,
                f"{oi.obj.kind} {_raw(toks[idx])!r} is not schema-qualified (resolves to "
                f"{oi.obj.schema!r} through search_path)",
            )


_RULE_FUNCS = (_naming, _duplicates, _keys, _types, _views, _comments, _qualified)


def review_state(state: DesiredState, config: ReviewConfig | None = None) -> list[Finding]:
    """Run every enabled state rule over the desired state; findings in file/line order."""
    cfg = config or ReviewConfig()
    facts = collect_facts(state)
    findings: list[Finding] = []
    levels = {rid: cfg.severity(rid) for rid in RULES}

    def emit(rule_id: str, src: Source, token_index: int, message: str) -> None:
        sev = levels.get(rule_id) if rule_id in levels else cfg.severity(rule_id)
        if sev is None or is_silenced(src.stmt, rule_id):
            return
        line, col = src.position(token_index)
        findings.append(Finding(rule_id, sev, RULES[rule_id].title, message, src.stmt.file, line, col))

    for func in _RULE_FUNCS:
        func(facts, cfg, emit)
    order = {f: i for i, f in enumerate(state.files)}
    findings.sort(key=lambda f: (order.get(f.file or "", len(order)), f.line or 0, f.column or 0, f.rule_id))
    return findings
