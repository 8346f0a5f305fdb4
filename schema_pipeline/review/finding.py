"""The one shape every review finding has (rule-based or AI, state or migration)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"

    @property
    def rank(self) -> int:
        return {"ERROR": 0, "WARNING": 1, "INFO": 2}[self.value]


@dataclass
class Finding:
    """One review finding; file/line/column are 1-based and relative to the state root."""

    rule_id: str
    severity: Severity
    title: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    source: str = "rule"  # "rule" | "ai"
    environment: str | None = None  # None for state findings
    step_index: int | None = None  # migration findings: index of the plan step

    def location(self) -> str:
        """`file:line:column` (as much of it as is known), or "" without a file."""
        if not self.file:
            return ""
        loc = self.file
        if self.line:
            loc += f":{self.line}"
            if self.column:
                loc += f":{self.column}"
        return loc

    def to_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        return cls(
            rule_id=d["rule_id"],
            severity=Severity(d["severity"]),
            title=d.get("title", ""),
            message=d.get("message", ""),
            file=d.get("file"),
            line=d.get("line"),
            column=d.get("column"),
            source=d.get("source", "rule"),
            environment=d.get("environment"),
            step_index=d.get("step_index"),
        )


def has_blocking(findings: list[Finding]) -> bool:
    """True when any finding is at ERROR level (the review check fails)."""
    return any(f.severity == Severity.ERROR for f in findings)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Stable report order: by file, line, column, then severity and rule."""
    return sorted(
        findings,
        key=lambda f: (
            f.environment or "",
            f.file is None,
            f.file or "",
            f.line or 0,
            f.column or 0,
            f.step_index if f.step_index is not None else -1,
            f.severity.rank,
            f.rule_id,
        ),
    )
