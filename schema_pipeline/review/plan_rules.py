"""Rules over a generated migration (one environment's plan): lock safety, data loss, rewrites."""

from __future__ import annotations

from schema_pipeline.plan.model import HazardType, Step
from schema_pipeline.review.catalog import RULES
from schema_pipeline.review.config import ReviewConfig
from schema_pipeline.review.finding import Finding
from schema_pipeline.state.classify import classify
from schema_pipeline.state.ddl import (
    created_object,
    is_word,
    parse_create_index,
    qualify,
    read_name,
    skip_if_exists,
    split_commas,
    tok_at,
)
from schema_pipeline.state.inventory import object_inventory
from schema_pipeline.state.lexer import Token, code_tokens
from schema_pipeline.state.model import DeclaredObject, DesiredState

_RENAMABLE = (
    "ALTER TABLE",
    "ALTER INDEX",
    "ALTER SEQUENCE",
    "ALTER VIEW",
    "ALTER MATERIALIZED VIEW",
    "ALTER TYPE",
    "ALTER SCHEMA",
    "ALTER FUNCTION",
    "ALTER PROCEDURE",
    "ALTER DOMAIN",
    "ALTER FOREIGN TABLE",
)


def _excerpt(sql: str, limit: int = 160) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _alter_target(toks: list[Token]) -> tuple[str | None, int]:
    """(qualified table, index after the name) of ALTER TABLE [IF EXISTS] [ONLY] name [*]."""
    i = skip_if_exists(toks, 2)
    if is_word(tok_at(toks, i), "only"):
        i += 1
    parts, i = read_name(toks, i)
    if not parts:
        return None, i
    if tok_at(toks, i) is not None and toks[i].text == "*":
        i += 1
    s, n = qualify(parts, "public")
    return f"{s}.{n}", i


_VOLATILE_FUNCS = frozenset(
    {
        "random",
        "clock_timestamp",
        "timeofday",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "nextval",
        "txid_current",
        "statement_timestamp",
    }
)
_SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})


def _volatile_default(toks: list[Token], a: int, b: int) -> str | None:
    """What makes an ADD COLUMN evaluate per row (volatile default, serial, stored generated column)."""
    for k in range(a, b):
        t = toks[k]
        if t.kind != "word":
            continue
        low = t.text.lower()
        if low in _SERIAL_TYPES:
            return f"type {low} (a nextval() default)"
        if low in _VOLATILE_FUNCS and k + 1 < b and toks[k + 1].text == "(":
            return f"a volatile default {low}()"
        if low == "stored" and _has_words(toks, a, b, "generated", "always"):
            return "a stored generated expression"
    return None


def _has_words(toks: list[Token], a: int, b: int, *words: str) -> bool:
    """True when the consecutive words appear somewhere in toks[a:b]."""
    n = len(words)
    return any(all(is_word(toks[k + j], words[j]) for j in range(n)) for k in range(a, b - n + 1))


class _PlanReview:
    def __init__(self, steps: list[Step], environment: str, state: DesiredState | None, cfg: ReviewConfig):
        self.steps = steps
        self.environment = environment
        self.cfg = cfg
        self.findings: list[Finding] = []
        self.decls: dict[str, DeclaredObject] = {}
        self.routines: dict[str, DeclaredObject] = {}  # functions by name without arguments (overloads: the first)
        if state is not None:
            for obj in object_inventory(state):
                self.decls.setdefault(obj.name, obj)
                if "(" in obj.name:
                    self.routines.setdefault(obj.name.split("(", 1)[0], obj)
        self.created_tables: set[str] = set()

    def locate(self, *names: str | None) -> DeclaredObject | None:
        for name in names:
            if name and "(" in name:  # a function: declared with argument names, planned with types only
                found = self.decls.get(name) or self.routines.get(name.split("(", 1)[0])
                if found:
                    return found
                continue
            while name:
                if name in self.decls:
                    return self.decls[name]
                if "." not in name:
                    break
                name = name.rsplit(".", 1)[0]
        return None

    def emit(self, rule_id: str, index: int, step: Step, message: str, table: str | None = None) -> None:
        sev = self.cfg.severity(rule_id)
        if sev is None:
            return
        decl = self.locate(step.object_name, table)
        self.findings.append(
            Finding(
                rule_id,
                sev,
                RULES[rule_id].title,
                f"{message} — step {index + 1}: {_excerpt(step.sql)}",
                decl.file if decl else None,
                decl.line if decl else None,
                None,
                "rule",
                self.environment,
                index,
            )
        )

    def run(self) -> list[Finding]:
        for i, step in enumerate(self.steps):
            toks = code_tokens(step.sql)
            kind = classify(toks)
            before = len(self.findings)
            self.review_step(i, step, toks, kind)
            self.review_hazards(i, step, {f.rule_id for f in self.findings[before:]})
            if kind == "CREATE TABLE":
                obj = created_object(toks, "public")
                if obj is not None:
                    self.created_tables.add(obj.qualified)
            if step.object_kind == "table" and step.action == "create":
                self.created_tables.add(step.object_name)
        return self.findings

    def review_hazards(self, i: int, step: Step, fired: set[str]) -> None:
        """Findings for what the plan itself marks on the step: data loss (unless the drop rules already said
        so), unsafe functions, tables made UNLOGGED."""

        def why(kind: HazardType) -> str:
            return "; ".join(dict.fromkeys(h.message for h in step.hazards if h.type == kind))

        types = {h.type for h in step.hazards}
        if HazardType.DELETES_DATA in types and not fired & {"migration.drop-table", "migration.drop-column"}:
            self.emit("migration.deletes-data", i, step, why(HazardType.DELETES_DATA) or "this step deletes data")
        if HazardType.UNSAFE_FUNCTION in types:
            self.emit("migration.unsafe-function", i, step, why(HazardType.UNSAFE_FUNCTION))
        if HazardType.UNLOGGED_TABLE in types:
            self.emit("migration.unlogged-table", i, step, why(HazardType.UNLOGGED_TABLE))

    def review_step(self, i: int, step: Step, toks: list[Token], kind: str) -> bool:
        before = len(self.findings)
        if kind == "DROP TABLE":
            names = [t.text for t in toks[2:] if t.kind in ("word", "qident")]
            self.emit(
                "migration.drop-table",
                i,
                step,
                f"drops table {step.object_name or ' '.join(names[:1])}; its data is deleted",
            )
        elif kind == "DROP INDEX":
            if not any(is_word(t, "concurrently") for t in toks[:4]):
                self.emit(
                    "migration.drop-index-not-concurrent",
                    i,
                    step,
                    "DROP INDEX without CONCURRENTLY locks the table; use DROP INDEX CONCURRENTLY",
                )
        elif kind == "CREATE INDEX":
            idef = parse_create_index(toks, "public")
            if idef is not None and not idef.concurrently and idef.table not in self.created_tables:
                self.emit(
                    "migration.index-not-concurrent",
                    i,
                    step,
                    f"CREATE INDEX on existing table {idef.table} blocks writes while it builds; use "
                    "CREATE INDEX CONCURRENTLY",
                    idef.table,
                )
        elif kind == "ALTER TABLE":
            self.review_alter_table(i, step, toks)
        if kind.startswith("DROP ") and any(is_word(t, "cascade") for t in toks[-3:]):
            self.emit(
                "migration.drop-cascade",
                i,
                step,
                "DROP ... CASCADE also drops every object that depends on this one; drop dependents explicitly",
            )
        if kind in _RENAMABLE and any(is_word(t, "rename") for t in toks):
            self.emit("migration.rename", i, step, "renames an object; clients using the old name break")
        return len(self.findings) > before

    def review_alter_table(self, i: int, step: Step, toks: list[Token]) -> None:
        table, start = _alter_target(toks)
        if table is None:
            return
        existing = table not in self.created_tables
        end = len(toks) - (1 if toks and toks[-1].text == ";" else 0)
        for a, b in split_commas(toks, start, end):
            first = tok_at(toks, a)
            if is_word(first, "drop"):
                k = a + 1
                if is_word(tok_at(toks, k), "column"):
                    k += 1
                elif is_word(tok_at(toks, k), "constraint"):
                    continue
                k = skip_if_exists(toks, k)
                col = toks[k].text if k < b else "?"
                self.emit(
                    "migration.drop-column",
                    i,
                    step,
                    f"drops column {table}.{col}; its data is deleted",
                    table,
                )
            elif is_word(first, "add") and existing:
                self.review_add(i, step, toks, a + 1, b, table)
            elif is_word(first, "alter") and existing:
                if _has_words(toks, a, b, "set", "not", "null"):
                    self.emit(
                        "migration.set-not-null",
                        i,
                        step,
                        "SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock; add CHECK (col IS "
                        "NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL",
                        table,
                    )
                if _has_words(toks, a, b, "type") and not _has_words(toks, a, b, "identity"):
                    rewrite = any(h.type == HazardType.TABLE_REWRITE for h in step.hazards)
                    why = (
                        "the plan marks it as a table rewrite"
                        if rewrite
                        else "unless the types are binary compatible"
                    )
                    self.emit(
                        "migration.column-type-rewrite",
                        i,
                        step,
                        f"changing a column type rewrites {table} and its indexes under an ACCESS "
                        f"EXCLUSIVE lock ({why})",
                        table,
                    )

    def review_add(self, i: int, step: Step, toks: list[Token], a: int, b: int, table: str) -> None:
        k = a
        w = toks[k].text.lower() if k < b and toks[k].kind == "word" else ""
        if w == "constraint":
            k += 2
            w = toks[k].text.lower() if k < b and toks[k].kind == "word" else ""
        if w in ("foreign", "check"):
            if not _has_words(toks, a, b, "not", "valid"):
                what = "FOREIGN KEY" if w == "foreign" else "CHECK"
                self.emit(
                    "migration.add-constraint-validates",
                    i,
                    step,
                    f"adding a {what} constraint validates every row of {table} while holding a lock; add "
                    "it NOT VALID and VALIDATE CONSTRAINT in a later step",
                    table,
                )
            return
        if w in ("primary", "unique"):
            if not _has_words(toks, a, b, "using", "index"):
                self.emit(
                    "migration.add-unique-constraint",
                    i,
                    step,
                    f"adding a {w.upper()} constraint builds its index on {table} under an ACCESS "
                    "EXCLUSIVE lock; CREATE UNIQUE INDEX CONCURRENTLY first, then ADD ... USING INDEX",
                    table,
                )
            return
        if w in ("exclude",):
            return
        # ADD [COLUMN] [IF NOT EXISTS] name type ...
        volatile = _volatile_default(toks, a, b)
        if volatile:
            self.emit(
                "migration.add-column-volatile-default",
                i,
                step,
                f"adds a column to existing table {table} with {volatile}, evaluated for every row: the table "
                "is rewritten under an ACCESS EXCLUSIVE lock; add the column without it, then backfill in batches",
                table,
            )
        required = _has_words(toks, a, b, "not", "null") or _has_words(toks, a, b, "primary", "key")
        defaulted = (
            _has_words(toks, a, b, "default")
            or _has_words(toks, a, b, "generated")
            or _has_words(toks, a, b, "identity")
        )
        types = {t.text.lower() for t in toks[a:b] if t.kind == "word"}
        if (
            required
            and not defaulted
            and not types & {"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"}
        ):
            self.emit(
                "migration.add-column-required-no-default",
                i,
                step,
                f"adds a NOT NULL column to existing table {table} without a DEFAULT; this fails as soon "
                "as the table has rows — add a DEFAULT or add it nullable, backfill, then SET NOT NULL",
                table,
            )


def review_plan(
    steps: list[Step],
    environment: str,
    *,
    state: DesiredState | None = None,
    config: ReviewConfig | None = None,
) -> list[Finding]:
    """Review one environment's migration steps; with `state`, findings point at declarations."""
    return _PlanReview(steps, environment, state, config or ReviewConfig()).run()
