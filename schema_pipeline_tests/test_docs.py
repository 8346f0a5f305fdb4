"""The documentation matches the behaviour: every rule and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from schema_pipeline.cli import build_parser
from schema_pipeline.review import RULES

ROOT = Path(__file__).resolve().parent.parent


def test_every_review_rule_is_documented_with_its_default_level() -> None:
    text = (ROOT / "docs" / "review.md").read_text()
    for rule in RULES.values():
        line = next((ln for ln in text.splitlines() if ln.startswith(f"| `{rule.id}` |")), None)
        assert line, f"{rule.id} missing from docs/review.md"
        assert rule.severity.value in line


def test_readme_documents_every_cli_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no public accessor
    for name in commands:
        assert f"schema-pipeline {name}" in readme, name
