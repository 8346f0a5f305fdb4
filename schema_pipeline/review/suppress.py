"""Inline silencing: `-- schema-pipeline: ignore RULE_ID[, RULE_ID...]` above or on a statement."""

from __future__ import annotations

import re

from schema_pipeline.state.model import Statement

_IGNORE = re.compile(r"^ignore\s+(.+)$", re.IGNORECASE)


def ignored_rules(stmt: Statement) -> frozenset[str]:
    """Rule ids silenced for this statement ("all" silences every rule)."""
    out: set[str] = set()
    for d in stmt.directives:
        m = _IGNORE.match(d)
        if m:
            # Anything after the ids (e.g. `reason="..."`, `--`) is commentary.
            for word in re.split(r"[\s,]+", m.group(1)):
                if not word or "=" in word or word.startswith(("(", "-", '"')):
                    break
                out.add(word.lower())
    return frozenset(out)


def is_silenced(stmt: Statement, rule_id: str) -> bool:
    ids = ignored_rules(stmt) if stmt.directives else frozenset()
    return rule_id in ids or "all" in ids
