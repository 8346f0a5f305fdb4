"""The rule catalogue: stable ids, default severity, one-line rationale (see review-rules.md §1)."""

from __future__ import annotations

from dataclasses import dataclass

from schema_pipeline.review.finding import Severity


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity  # default level when enabled
    title: str
    rationale: str
    target: str  # "state" | "migration"
    enabled: bool = True  # off-by-default rules are switched on by a level in ReviewConfig


E, W, N = Severity.ERROR, Severity.WARNING, Severity.INFO

RULES: dict[str, Rule] = {
    r.id: r
    for r in [
        # --- state rules (the declared schema)
        Rule(
            "naming.table",
            E,
            "Table name is not snake_case",
            "Consistent lower-case snake_case table names never need quoting and read the same everywhere.",
            "state",
        ),
        Rule(
            "naming.column",
            W,
            "Column name is not snake_case",
            "Lower-case snake_case column names never need quoting in queries.",
            "state",
        ),
        Rule(
            "naming.index",
            W,
            "Index name does not follow the naming convention",
            "Predictable index names make plans, errors and migrations easier to read.",
            "state",
        ),
        Rule(
            "naming.constraint",
            W,
            "Constraint name does not follow the naming convention",
            "Predictable constraint names make violations self-explanatory.",
            "state",
        ),
        Rule(
            "ident.too-long",
            W,
            "Identifier longer than 63 bytes",
            "PostgreSQL silently truncates identifiers to 63 bytes, so two long names can collide.",
            "state",
        ),
        Rule(
            "ident.duplicate-column",
            E,
            "Column declared twice",
            "PostgreSQL rejects a table that declares the same column twice.",
            "state",
        ),
        Rule(
            "state.duplicate-object",
            E,
            "Object declared more than once",
            "Each object must be declared exactly once in the desired state.",
            "state",
        ),
        Rule(
            "table.require-pk",
            W,
            "Table has no primary key",
            "Without a primary key rows cannot be addressed reliably (replication, ORMs, deduplication).",
            "state",
        ),
        Rule(
            "table.multiple-pk",
            E,
            "Table declares more than one primary key",
            "A table can have only one primary key; PostgreSQL rejects the second.",
            "state",
        ),
        Rule(
            "fk.require-index",
            W,
            "Foreign key columns are not indexed",
            "Deletes and updates on the referenced table scan the referencing table without an index "
            "whose leading columns are the foreign key columns.",
            "state",
        ),
        Rule(
            "view.no-select-star",
            W,
            "View selects *",
            "A view's * is expanded once at creation; later columns are silently missing and the "
            "definition hides what it depends on.",
            "state",
        ),
        Rule(
            "index.duplicate",
            W,
            "Duplicate index",
            "Two indexes with the same key columns on the same table cost writes and space for nothing.",
            "state",
        ),
        Rule(
            "type.prefer-text",
            W,
            "varchar(n) instead of text",
            "varchar(n) is no faster than text, and changing n later can rewrite the table; use text with "
            "a CHECK constraint if a limit matters.",
            "state",
        ),
        Rule(
            "type.no-char",
            W,
            "char(n) column",
            "char(n) pads with spaces and compares surprisingly; use text or varchar.",
            "state",
        ),
        Rule(
            "type.no-money",
            W,
            "money column",
            "money depends on the lc_monetary setting and has fixed precision; use numeric.",
            "state",
        ),
        Rule(
            "type.prefer-timestamptz",
            W,
            "timestamp without time zone",
            "timestamp without time zone loses the offset; timestamptz stores an absolute instant.",
            "state",
        ),
        Rule(
            "type.prefer-jsonb",
            N,
            "json instead of jsonb",
            "jsonb is indexable, compares by value and is faster to query than json.",
            "state",
        ),
        Rule(
            "type.prefer-bigint-pk",
            W,
            "Primary key column is a 32-bit or 16-bit integer",
            "int/serial primary keys overflow at about 2.1 billion rows; changing the type later rewrites "
            "the table and every referencing one.",
            "state",
        ),
        Rule(
            "type.prefer-identity",
            N,
            "serial column instead of an identity column",
            "GENERATED ... AS IDENTITY is the SQL-standard replacement for serial, with clearer ownership "
            "and permissions.",
            "state",
        ),
        Rule(
            "table.require-comment",
            W,
            "Table has no comment",
            "A COMMENT ON TABLE documents the table in the catalog for every tool that reads it.",
            "state",
            enabled=False,
        ),
        Rule(
            "column.require-comment",
            W,
            "Column has no comment",
            "A COMMENT ON COLUMN documents the column in the catalog for every tool that reads it.",
            "state",
            enabled=False,
        ),
        Rule(
            "schema.qualified-names",
            W,
            "Object name is not schema-qualified",
            "Unqualified names depend on search_path; qualified names mean the same thing everywhere.",
            "state",
            enabled=False,
        ),
        Rule(
            "fk.no-cascade-delete",
            W,
            "Foreign key with ON DELETE CASCADE",
            "ON DELETE CASCADE can delete far more rows than the statement that triggered it.",
            "state",
            enabled=False,
        ),
        # --- migration rules (the generated plan, per environment)
        Rule(
            "migration.drop-table",
            W,
            "Migration drops a table",
            "Dropping a table deletes its data and breaks clients that still use it.",
            "migration",
        ),
        Rule(
            "migration.drop-column",
            W,
            "Migration drops a column",
            "Dropping a column deletes its data and breaks clients that still read or write it.",
            "migration",
        ),
        Rule(
            "migration.deletes-data",
            W,
            "Migration step deletes data",
            "The plan marks this step as deleting data: a drop, or a column type change that loses data (narrower "
            "integers, smaller numeric precision or scale, shorter lengths, timestamptz to timestamp, enum values "
            "removed, ...).",
            "migration",
        ),
        Rule(
            "migration.index-not-concurrent",
            W,
            "CREATE INDEX without CONCURRENTLY on an existing table",
            "A plain CREATE INDEX blocks writes to the table for the whole build; CONCURRENTLY does not.",
            "migration",
        ),
        Rule(
            "migration.drop-index-not-concurrent",
            W,
            "DROP INDEX without CONCURRENTLY",
            "A plain DROP INDEX takes an ACCESS EXCLUSIVE lock on the table.",
            "migration",
        ),
        Rule(
            "migration.add-constraint-validates",
            W,
            "Constraint added without NOT VALID",
            "Adding a FOREIGN KEY or CHECK validates every row while holding a lock; add it NOT VALID and "
            "VALIDATE CONSTRAINT separately.",
            "migration",
        ),
        Rule(
            "migration.add-unique-constraint",
            W,
            "UNIQUE/PRIMARY KEY added without USING INDEX",
            "Adding a unique or primary key constraint builds its index under an ACCESS EXCLUSIVE lock; build "
            "the index CONCURRENTLY first and add the constraint USING INDEX.",
            "migration",
        ),
        Rule(
            "migration.set-not-null",
            W,
            "SET NOT NULL on an existing column",
            "SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock; on PostgreSQL 12+ add a validated "
            "CHECK (col IS NOT NULL) first.",
            "migration",
        ),
        Rule(
            "migration.column-type-rewrite",
            W,
            "Column type change may rewrite the table",
            "Changing a column's type to a non-binary-compatible type rewrites the table and its indexes "
            "under an ACCESS EXCLUSIVE lock.",
            "migration",
        ),
        Rule(
            "migration.add-column-required-no-default",
            E,
            "NOT NULL column added without a default",
            "Adding a NOT NULL column without a DEFAULT fails on a non-empty table and breaks old writers.",
            "migration",
        ),
        Rule(
            "migration.rename",
            W,
            "Migration renames an object",
            "Renaming breaks clients that still use the old name; deploy them first or keep a view.",
            "migration",
        ),
        Rule(
            "migration.add-column-volatile-default",
            W,
            "Column added with a volatile default",
            "A volatile DEFAULT (random(), clock_timestamp(), gen_random_uuid(), nextval(), serial, stored "
            "generated columns) is evaluated per row, which rewrites the whole table under an ACCESS "
            "EXCLUSIVE lock.",
            "migration",
        ),
        Rule(
            "migration.unsafe-function",
            E,
            "Function escapes SQL privileges",
            "A LANGUAGE C or internal function (or one in an untrusted language) runs native code in the server "
            "process; a SECURITY DEFINER function that runs dynamic SQL and that PUBLIC may execute lets any "
            "role run statements of its choosing as the function's owner. REVOKE EXECUTE ... FROM PUBLIC, or "
            "keep such functions out of the state.",
            "migration",
        ),
        Rule(
            "migration.unlogged-table",
            W,
            "Table becomes UNLOGGED",
            "ALTER TABLE ... SET UNLOGGED stops writing the table to the WAL: it is emptied after a crash and is "
            "not replicated, so a failover or a restored backup loses its data.",
            "migration",
        ),
        Rule(
            "migration.drop-cascade",
            W,
            "DROP ... CASCADE",
            "CASCADE silently drops every dependent object (views, foreign keys, ...), not only the one named.",
            "migration",
        ),
    ]
}


def rule(rule_id: str) -> Rule:
    """The catalogue entry for rule_id (AI and unknown ids get a generic entry)."""
    found = RULES.get(rule_id)
    if found is not None:
        return found
    return Rule(
        rule_id,
        Severity.WARNING,
        rule_id,
        "Finding from the AI review against the team's standards." if rule_id.startswith("ai") else "",
        "state",
    )
