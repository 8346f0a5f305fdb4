"""Reporters: Markdown, JSON, SARIF 2.1.0 and GitHub workflow commands."""

from __future__ import annotations

import json

import pytest

from schema_pipeline.review import Finding, Severity, render
from schema_pipeline.review.report import escape_data, escape_property

FINDINGS = [
    Finding(
        "naming.table",
        Severity.ERROR,
        "Table name is not snake_case",
        "table name 'Users' | bad",
        "schemas/users.sql",
        3,
        14,
    ),
    Finding(
        "table.require-pk",
        Severity.WARNING,
        "Table has no primary key",
        "table public.t has no primary key",
        "a.sql",
        1,
        1,
    ),
    Finding(
        "migration.drop-table",
        Severity.WARNING,
        "Migration drops a table",
        "drops table public.old",
        None,
        None,
        None,
        "rule",
        "prod",
        4,
    ),
    Finding("type.prefer-jsonb", Severity.INFO, "json instead of jsonb", "use jsonb", "a.sql", 7, 3),
    Finding(
        "ai.naming",
        Severity.WARNING,
        "Naming standard",
        "100% wrong:\nsee line 2, col 3",
        "a.sql",
        2,
        None,
        "ai",
    ),
]


def test_markdown_summary_then_findings() -> None:
    md = render(FINDINGS, "markdown")
    lines = md.splitlines()
    assert "| Severity | Count |" in lines
    assert "| ERROR | 1 |" in lines and "| WARNING | 3 |" in lines and "| INFO | 1 |" in lines
    assert md.index("| Severity | Count |") < md.index("| Severity | Location | Rule | Message |")
    assert "`schemas/users.sql:3:14`" in md and "`naming.table`" in md
    assert "table name 'Users' \\| bad" in md  # pipes escaped inside the table
    assert "100% wrong:<br>see line 2" in md
    assert "(prod, step 5)" in md
    assert "AI review: 1 finding" in md


def test_markdown_says_ai_not_configured() -> None:
    md = render(FINDINGS[:2], "markdown")
    assert "AI review: not configured" in md
    assert "AI review: failed: timeout" in render(FINDINGS[:2], "markdown", ai_status="failed: timeout")


def test_markdown_without_findings() -> None:
    md = render([], "markdown")
    assert "| ERROR | 0 |" in md and "No findings." in md and "AI review: not configured" in md


def test_json_round_trip() -> None:
    doc = json.loads(render(FINDINGS, "json"))
    assert doc["summary"] == {"ERROR": 1, "WARNING": 3, "INFO": 1}
    assert doc["blocking"] is True
    back = [Finding.from_dict(d) for d in doc["findings"]]
    assert sorted(f.rule_id for f in back) == sorted(f.rule_id for f in FINDINGS)
    mig = next(d for d in doc["findings"] if d["rule_id"] == "migration.drop-table")
    assert mig["environment"] == "prod" and mig["step_index"] == 4 and mig["file"] is None


def test_sarif_structure_and_levels() -> None:
    doc = json.loads(render(FINDINGS, "sarif", path_prefix="repo"))
    assert doc["version"] == "2.1.0" and "$schema" in doc
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "schema-pipeline"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) == 5
    for r in driver["rules"]:
        assert r["shortDescription"]["text"] and r["defaultConfiguration"]["level"] in (
            "error",
            "warning",
            "note",
        )
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {
        "naming.table": "error",
        "table.require-pk": "warning",
        "migration.drop-table": "warning",
        "type.prefer-jsonb": "note",
        "ai.naming": "warning",
    }
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["message"]["text"]
    named = next(r for r in run["results"] if r["ruleId"] == "naming.table")
    loc = named["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "repo/schemas/users.sql"
    assert loc["region"] == {"startLine": 3, "startColumn": 14}
    ai = next(r for r in run["results"] if r["ruleId"] == "ai.naming")
    assert ai["locations"][0]["physicalLocation"]["region"] == {"startLine": 2}
    mig = next(r for r in run["results"] if r["ruleId"] == "migration.drop-table")
    assert mig["properties"]["environment"] == "prod"
    # no state file declares a dropped table: the state directory plus the step as a logical location
    mig_loc = mig["locations"][0]
    assert mig_loc["physicalLocation"]["artifactLocation"]["uri"] == "repo"
    assert mig_loc["logicalLocations"][0]["fullyQualifiedName"].startswith("migration/environment prod")


def test_github_escaping_helpers() -> None:
    assert escape_data("100%\r\nx: y, z") == "100%25%0D%0Ax: y, z"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_workflow_commands() -> None:
    out = render(FINDINGS, "github").splitlines()
    assert len(out) == 5
    assert (
        "::error file=schemas/users.sql,line=3,col=14,title=naming.table%3A Table name is not snake_case::"
        "table name 'Users' | bad"
    ) in out
    assert (
        "::notice file=a.sql,line=7,col=3,title=type.prefer-jsonb%3A json instead of jsonb::use jsonb" in out
    )
    ai = next(line for line in out if "ai.naming" in line)
    assert (
        ai
        == "::warning file=a.sql,line=2,title=ai.naming%3A Naming standard::100%25 wrong:%0Asee line 2, col 3"
    )
    mig = next(line for line in out if "drop-table" in line)
    assert mig.startswith("::warning title=migration.drop-table%3A Migration drops a table [prod]::")


def test_github_property_with_comma_in_path() -> None:
    f = Finding("x", Severity.ERROR, "T", "m", "dir,1/a:b.sql", 1, 2)
    assert render([f], "github").startswith("::error file=dir%2C1/a%3Ab.sql,line=1,col=2,title=x%3A T::m")


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        render(FINDINGS, "xml")
