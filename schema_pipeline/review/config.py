"""Review configuration: per-rule level overrides (incl. "off") and naming patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from schema_pipeline.errors import ConfigError
from schema_pipeline.review.catalog import RULES
from schema_pipeline.review.finding import Severity

SNAKE_CASE = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"

_LEVEL_ALIASES = {
    "error": "ERROR",
    "warning": "WARNING",
    "warn": "WARNING",
    "info": "INFO",
    "notice": "INFO",
    "note": "INFO",
    "off": "off",
    "disabled": "off",
    "none": "off",
}


@dataclass
class ReviewConfig:
    """`levels`: rule id -> ERROR|WARNING|INFO|off. `naming`: kind -> regex.

    Naming kinds: table, column, index, constraint, and the constraint-specific primary_key,
    unique, foreign_key, check, exclude (falling back to constraint). Patterns may contain
    `{table}`, replaced by the (escaped) table name, e.g. `^idx_{table}_`.
    """

    levels: dict[str, str] = field(default_factory=dict)
    naming: dict[str, str] = field(default_factory=dict)
    max_identifier_bytes: int = 63

    def __post_init__(self) -> None:
        normalised: dict[str, str] = {}
        for rule_id, level in self.levels.items():
            value = _LEVEL_ALIASES.get(str(level).strip().lower())
            if value is None:
                raise ConfigError(
                    f"review level for {rule_id!r} must be ERROR, WARNING, INFO or off, not {level!r}"
                )
            normalised[rule_id] = value
        self.levels = normalised
        for kind, pattern in self.naming.items():
            try:
                re.compile(pattern.replace("{table}", "t"))
            except re.error as exc:
                raise ConfigError(f"review naming pattern for {kind!r} is not a valid regex: {exc}") from exc

    @classmethod
    def from_dict(cls, d: dict | None) -> ReviewConfig:
        """Build from a config mapping: {"rules": {id: level}, "naming": {kind: regex}}."""
        d = d or {}
        return cls(
            levels=dict(d.get("rules") or d.get("levels") or {}),
            naming=dict(d.get("naming") or {}),
            max_identifier_bytes=int(d.get("max_identifier_bytes", 63)),
        )

    def severity(self, rule_id: str) -> Severity | None:
        """Effective level of a rule, None when it is off."""
        override = self.levels.get(rule_id)
        if override == "off":
            return None
        if override is not None:
            return Severity(override)
        r = RULES.get(rule_id)
        if r is None:
            return Severity.WARNING
        return r.severity if r.enabled else None

    def naming_pattern(self, kind: str, table: str = "") -> re.Pattern[str]:
        """Compiled naming regex for `kind` (table/column/index/constraint/primary_key/...)."""
        pattern = self.naming.get(kind)
        if pattern is None and kind in ("primary_key", "unique", "foreign_key", "check", "exclude"):
            pattern = self.naming.get("constraint")
        if pattern is None:
            pattern = SNAKE_CASE
        return re.compile(pattern.replace("{table}", re.escape(table)))
