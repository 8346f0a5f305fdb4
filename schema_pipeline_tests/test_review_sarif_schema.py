"""`review --format sarif` against the official OASIS SARIF 2.1.0 schema and GitHub's upload rules.

The schema is the OASIS file (SARIF 2.1.0 Errata 01) in `data/`; see `data/README.md` for where it
came from. Every document is produced by the real reporter (`render` / `sarif_document`) from
findings of the real rule engines, the AI review (against a fake provider) and the CLI.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from jsonschema import FormatChecker, validators
from jsonschema.protocols import Validator

from schema_pipeline.plan.model import Step
from schema_pipeline.review import Finding, Severity, render, review_plan, review_state
from schema_pipeline.review.ai import AIReviewConfig, ai_review
from schema_pipeline.review.report import sarif_document
from schema_pipeline.state import load_state
from schema_pipeline_tests.fake_llm import FakeLLM

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
CLI = Path(sys.executable).parent / "schema-pipeline"

# GitHub code scanning limits (docs: "SARIF support for code scanning", "Uploading a SARIF file").
MAX_RUNS = 20
MAX_RESULTS_PER_RUN = 25_000
MAX_RULES_PER_RUN = 25_000
MAX_TAGS_PER_RULE = 20
MAX_LOCATIONS_PER_RESULT = 10

NASTY = "quote \" apostrophe ' back\\slash C:\\tmp\\x 100% %0A %s {0} [x](0) tab\there\r\nnew\nline é 中文 😀 \u200b\x00\x1f"


@functools.cache
def _validator() -> Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = validators.validator_for(schema)  # the draft the schema's own "$schema" names
    cls.check_schema(schema)
    # FormatChecker() knows every format jsonschema implements, including "uri-reference" (used by
    # artifactLocation.uri), which draft-04's own checker predates.
    return cls(schema, format_checker=FormatChecker())


def schema_errors(doc: Any) -> list[str]:
    return [
        f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _is_relative_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return (
        not parts.scheme
        and not parts.netloc
        and not uri.startswith("/")
        and not parts.query
        and not parts.fragment
        and ".." not in parts.path.split("/")
        and FormatChecker().conforms(uri, "uri-reference")
    )


def github_problems(doc: dict[str, Any], *, require_location: bool = True) -> list[str]:
    """What GitHub code scanning needs beyond the schema (an empty list when the upload would work)."""
    out: list[str] = []
    runs = doc.get("runs") or []
    if doc.get("version") != "2.1.0":
        out.append("version is not 2.1.0")
    if not 1 <= len(runs) <= MAX_RUNS:
        out.append(f"{len(runs)} runs")
    for r, run in enumerate(runs):
        driver = run.get("tool", {}).get("driver", {})
        if not isinstance(driver.get("name"), str) or not driver["name"].strip():
            out.append(f"run {r}: tool.driver.name missing")
        rules = driver.get("rules", [])
        ids = [rule.get("id") for rule in rules]
        if len(rules) > MAX_RULES_PER_RUN:
            out.append(f"run {r}: {len(rules)} rules")
        if len(set(ids)) != len(ids):
            out.append(f"run {r}: duplicate rule ids")
        for rule in rules:
            rid = rule.get("id")
            if not isinstance(rid, str) or not rid:
                out.append(f"run {r}: a rule has no id")
            if not (rule.get("shortDescription") or {}).get("text"):
                out.append(f"rule {rid}: shortDescription.text missing")
            if len(rule.get("properties", {}).get("tags", [])) > MAX_TAGS_PER_RULE:
                out.append(f"rule {rid}: more than {MAX_TAGS_PER_RULE} tags")
        results = run.get("results", [])
        if len(results) > MAX_RESULTS_PER_RUN:
            out.append(f"run {r}: {len(results)} results")
        for i, res in enumerate(results):
            where = f"result {i} ({res.get('ruleId')})"
            if res.get("ruleId") not in ids:
                out.append(f"{where}: ruleId not among the rules")
            if "ruleIndex" in res and not (
                0 <= res["ruleIndex"] < len(rules) and rules[res["ruleIndex"]].get("id") == res.get("ruleId")
            ):
                out.append(f"{where}: ruleIndex does not point at its rule")
            if not (res.get("message") or {}).get("text", "").strip():
                out.append(f"{where}: empty message.text")
            fingerprints = res.get("partialFingerprints", {})
            if not all(isinstance(v, str) and v for v in fingerprints.values()):
                out.append(f"{where}: empty partialFingerprints value")
            locations = res.get("locations") or []
            if require_location and not locations:
                out.append(f"{where}: no location (GitHub: 'expected at least one location')")
            if len(locations) > MAX_LOCATIONS_PER_RESULT:
                out.append(f"{where}: {len(locations)} locations")
            for loc in locations:
                phys = loc.get("physicalLocation") or {}
                uri = (phys.get("artifactLocation") or {}).get("uri")
                if not isinstance(uri, str) or not _is_relative_uri(uri):
                    out.append(f"{where}: artifactLocation.uri {uri!r} is not a relative URI reference")
                region = phys.get("region")
                if region is not None:
                    line = region.get("startLine")
                    if not isinstance(line, int) or line < 1:
                        out.append(f"{where}: region.startLine {line!r} < 1")
                    if "startColumn" in region and region["startColumn"] < 1:
                        out.append(f"{where}: region.startColumn < 1")
    return out


# SARIF 2.1.0 §3.11.5: "{{" and "}}" are literal braces, "{n}" is placeholder n; any other brace is invalid.
_MESSAGE_TOKEN = re.compile(r"\{\{|\}\}|\{(\d+)\}|[{}]")


def message_string(message: dict[str, Any], prop: str = "text") -> str:
    """What a SARIF consumer displays for `message[prop]` (§3.11.5): placeholders replaced by
    `arguments`, doubled braces undoubled. ValueError for a lone brace or a missing argument."""
    args = message.get("arguments", [])

    def token(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        if m.group(1) is None:
            raise ValueError(f"unescaped {m.group(0)!r} at {m.start()} in {message[prop]!r}")
        if int(m.group(1)) >= len(args):
            raise ValueError(f"placeholder {m.group(0)} without an argument in {message[prop]!r}")
        return args[int(m.group(1))]

    return _MESSAGE_TOKEN.sub(token, message[prop])


def message_problems(doc: dict[str, Any]) -> list[str]:
    """Result messages that are not well-formed SARIF message strings (§3.11.5, §3.11.11)."""
    out: list[str] = []
    for run in doc.get("runs") or []:
        for i, res in enumerate(run.get("results", [])):
            message = res.get("message") or {}
            for prop in ("text", "markdown"):
                if prop in message:
                    try:
                        message_string(message, prop)
                    except ValueError as exc:
                        out.append(f"result {i} message.{prop}: {exc}")
    return out


def assert_uploadable(doc: dict[str, Any], *, require_location: bool = True) -> None:
    assert schema_errors(doc) == []
    assert github_problems(doc, require_location=require_location) == []
    assert message_problems(doc) == []


def sarif(findings: list[Finding], **kw: Any) -> dict[str, Any]:
    """The reporter's text output, parsed strictly (no raw control characters in strings)."""
    text = render(findings, "sarif", **kw)
    doc = json.loads(text)
    assert doc == json.loads(json.dumps(sarif_document(findings, **kw)))
    return doc


def uris(doc: dict[str, Any]) -> list[str]:
    return [
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for res in doc["runs"][0]["results"]
        for loc in res.get("locations", [])
    ]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory whose own path and file names have spaces, non-ASCII and URI delimiters."""
    root = tmp_path / "db schemas ünï"
    (root / "sub dir é").mkdir(parents=True)
    (root / "01 tables.sql").write_text(
        'CREATE TABLE "Users" (id bigint PRIMARY KEY, "Bad Col" json);\n'
        "CREATE TABLE public.orders (id bigint PRIMARY KEY, user_id bigint, note text);\n",
        encoding="utf-8",
    )
    (root / "sub dir é" / "naïve #1 100%?.sql").write_text(
        '/* ééé 😀 */ CREATE TABLE "Ünï😀" (id int);\n', encoding="utf-8"
    )
    return root


# ---------------------------------------------------------------- the schema and the checks are live


def test_schema_file_is_the_official_oasis_schema() -> None:
    raw = SCHEMA_PATH.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256
    schema = json.loads(raw)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert (
        schema["id"]
        == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    )
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert len(schema["definitions"]) >= 50 and raw.count(b"\n") > 3000
    assert type(_validator()).__name__ == "Draft4Validator"
    checker = FormatChecker()
    assert not checker.conforms("a b.sql", "uri-reference")  # format checking really runs
    assert not checker.conforms("not a date", "date-time")


def _valid_doc() -> dict[str, Any]:
    return sarif([Finding("naming.table", Severity.ERROR, "t", "m", "a.sql", 3, 5)])


def _set(path: str, value: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = doc
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()
_RESULT = "runs.0.results.0"
_REGION = f"{_RESULT}.locations.0.physicalLocation.region"
_URI = f"{_RESULT}.locations.0.physicalLocation.artifactLocation.uri"

SCHEMA_VIOLATIONS = {
    "level fatal": _set(f"{_RESULT}.level", "fatal"),
    "no version": _set("version", _DELETE),
    "version 2.0.0": _set("version", "2.0.0"),
    "no runs": _set("runs", _DELETE),
    "no driver name": _set("runs.0.tool.driver.name", _DELETE),
    "message without text": _set(f"{_RESULT}.message", {}),
    "startLine 0": _set(f"{_REGION}.startLine", 0),
    "startColumn as string": _set(f"{_REGION}.startColumn", "5"),
    "unknown result property": _set(f"{_RESULT}.severity", "high"),
    "uri with a raw space": _set(_URI, "my dir/a.sql"),
    "rule level fatal": _set("runs.0.tool.driver.rules.0.defaultConfiguration.level", "fatal"),
}


@pytest.mark.parametrize("mutate", SCHEMA_VIOLATIONS.values(), ids=SCHEMA_VIOLATIONS.keys())
def test_schema_rejects_invalid_documents(mutate) -> None:
    doc = _valid_doc()
    assert schema_errors(doc) == []
    bad = copy.deepcopy(doc)
    mutate(bad)
    assert schema_errors(bad)


GITHUB_VIOLATIONS = {
    "ruleId not in rules": _set(f"{_RESULT}.ruleId", "other.rule"),
    "ruleIndex off": _set(f"{_RESULT}.ruleIndex", 1),
    "absolute path": _set(_URI, "/home/runner/work/a.sql"),
    "file URI": _set(_URI, "file:///home/runner/work/a.sql"),
    "parent directory": _set(_URI, "../a.sql"),
    "no shortDescription": _set("runs.0.tool.driver.rules.0.shortDescription", _DELETE),
    "no locations": _set(f"{_RESULT}.locations", _DELETE),
    "empty message": _set(f"{_RESULT}.message", {"text": ""}),
    "empty fingerprint": _set(f"{_RESULT}.partialFingerprints", {"x/v1": ""}),
}


@pytest.mark.parametrize("mutate", GITHUB_VIOLATIONS.values(), ids=GITHUB_VIOLATIONS.keys())
def test_github_checks_reject_unuploadable_documents(mutate) -> None:
    doc = _valid_doc()
    assert github_problems(doc) == []
    bad = copy.deepcopy(doc)
    mutate(bad)
    assert github_problems(bad)


MESSAGE_VIOLATIONS = {
    "lone open brace": _set(f"{_RESULT}.message", {"text": "DEFAULT '{}'::text[]"}),
    "lone close brace": _set(f"{_RESULT}.message", {"text": "x }"}),
    "placeholder without arguments": _set(f"{_RESULT}.message", {"text": "see {0}"}),
    "placeholder past the arguments": _set(f"{_RESULT}.message", {"text": "{0} {1}", "arguments": ["a"]}),
    "markdown with a lone brace": _set(f"{_RESULT}.message", {"text": "m", "markdown": "`{`"}),
}


@pytest.mark.parametrize("mutate", MESSAGE_VIOLATIONS.values(), ids=MESSAGE_VIOLATIONS.keys())
def test_message_checks_reject_malformed_message_strings(mutate) -> None:
    doc = _valid_doc()
    assert message_problems(doc) == []
    bad = copy.deepcopy(doc)
    mutate(bad)
    assert message_problems(bad)


def test_message_string_follows_the_spec_examples() -> None:
    # §3.11.5 EXAMPLE 1 and 2: placeholders are replaced by arguments, as often as they occur
    text = 'The variable "{0}" defined on line {1} is never used. Consider removing "{0}".'
    assert message_string({"text": text, "arguments": ["x", "7"]}) == (
        'The variable "x" defined on line 7 is never used. Consider removing "x".'
    )
    assert message_string({"text": "Variable '{0}' is uninitialized.", "arguments": ["pBuffer"]}) == (
        "Variable 'pBuffer' is uninitialized."
    )
    assert message_string({"text": "{{0}} {{{0}}} }}{{", "arguments": ["a"]}) == "{0} {a} }{"
    with pytest.raises(ValueError, match="without an argument"):
        message_string({"text": "{{{0}}}"})


# ---------------------------------------------------------------- documents from the real code paths


def test_no_findings() -> None:
    doc = sarif([])
    assert_uploadable(doc)
    run = doc["runs"][0]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert_uploadable(sarif([], path_prefix="schemas", category="schema-pipeline-review"))


def test_state_findings_with_file_line_and_column(state_dir: Path) -> None:
    findings = review_state(load_state(str(state_dir)))
    assert findings and all(f.file and f.line for f in findings)
    doc = sarif(findings, path_prefix="repo/db", category="schema-pipeline-review")
    assert_uploadable(doc)
    assert doc["runs"][0]["automationDetails"] == {"id": "schema-pipeline-review"}
    by_rule = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    region = by_rule["naming.table"]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] >= 1 and region["startColumn"] >= 1
    for uri in uris(doc):
        assert unquote(uri).startswith("repo/db/")
        assert (state_dir / unquote(uri).removeprefix("repo/db/")).is_file()


def test_migration_findings_with_environment_and_step(state_dir: Path) -> None:
    state = load_state(str(state_dir))
    steps = [
        Step(
            sql="ALTER TABLE public.orders DROP COLUMN note;",
            object_kind="table",
            object_name="public.orders",
            action="alter",
        ),
        Step(
            sql="CREATE INDEX orders_user_idx ON public.orders (user_id);",
            object_kind="index",
            object_name="public.orders_user_idx",
            action="create",
        ),
    ]
    findings = review_plan(steps, "prod eu-1 ✓", state=state)
    assert findings and all(f.environment == "prod eu-1 ✓" and f.step_index is not None for f in findings)
    assert all(f.file for f in findings)  # anchored at the declaration of the table they touch
    doc = sarif(findings)
    assert_uploadable(doc)
    for res in doc["runs"][0]["results"]:
        assert res["properties"]["environment"] == "prod eu-1 ✓"
        assert res["properties"]["step_index"] in (0, 1)
        assert unquote(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) == "01 tables.sql"


def _undeclared_drop() -> list[Finding]:
    step = Step(
        sql="DROP TABLE public.legacy;", object_kind="table", object_name="public.legacy", action="drop"
    )
    findings = review_plan([step], "prod")
    assert [f.rule_id for f in findings] == ["migration.drop-table"] and findings[0].file is None
    return findings


def test_migration_finding_without_a_file_is_schema_valid() -> None:
    assert_uploadable(sarif(_undeclared_drop()), require_location=False)


def test_migration_finding_without_a_file_is_uploadable_to_github() -> None:
    assert github_problems(sarif(_undeclared_drop())) == []


def test_ai_finding_from_the_ai_review(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "standards.md").write_text(
        "# Standards\n\n## 1. Naming\n- Use snake_case.\n", encoding="utf-8"
    )
    monkeypatch.setenv("SP_SARIF_TEST_KEY", "sk-sarif-test")
    state = load_state(str(state_dir))
    with FakeLLM("sk-sarif-test") as fake:
        fake.findings = [
            {
                "rule": "naming-1",
                "severity": "warning",
                "file": "sub dir é/naïve #1 100%?.sql",
                "line": 1,
                "evidence": 'CREATE TABLE "Ünï😀"',
                "message": NASTY,
            }
        ]
        cfg = AIReviewConfig(
            provider="openai",
            model="test-model",
            base_url=fake.base_url,
            api_key_env="SP_SARIF_TEST_KEY",
            standards_file=str(tmp_path / "standards.md"),
            cache_dir=str(tmp_path / "cache"),
            timeout=5.0,
            max_retries=0,
            backoff=0.0,
        )
        result = ai_review(state, {}, cfg, base_dir=tmp_path)
    assert result.status == "ok", result.status
    assert [f.source for f in result.findings] == ["ai"]
    doc = sarif(result.findings, path_prefix="db")
    assert_uploadable(doc)
    (res,) = doc["runs"][0]["results"]
    assert res["ruleId"].startswith("ai.") and res["properties"]["source"] == "ai"
    assert message_string(res["message"]) == NASTY.strip()  # the AI review strips the model's text
    assert unquote(uris(doc)[0]) == "db/sub dir é/naïve #1 100%?.sql"
    assert "ai" in doc["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["tags"]


def test_characters_that_need_escaping_survive() -> None:
    findings = [
        Finding("naming.table", Severity.ERROR, NASTY, NASTY, "a.sql", 1, 1),
        Finding("ai.x-%s-1", Severity.WARNING, NASTY, NASTY, "b.sql", 2, None, "ai"),
        Finding("migration.drop-table", Severity.INFO, "", NASTY, "c.sql", 3, 2, "rule", NASTY, 0),
    ]
    doc = sarif(findings)
    assert_uploadable(doc)
    results = doc["runs"][0]["results"]
    assert [message_string(r["message"]) for r in results] == [NASTY] * 3
    assert results[2]["properties"]["environment"] == NASTY
    text = render(findings, "sarif")
    assert all(ch not in text for ch in "\x00\x1f\r")  # control characters only as JSON escapes
    assert "\\u0000" in text and "\\r\\n" in text and '\\"' in text and "\\\\slash" in text


def test_empty_message_still_uploads() -> None:
    doc = sarif([Finding("ai.naming-1", Severity.WARNING, "Naming", "", "a.sql", 1, None, "ai")])
    assert_uploadable(doc)
    assert doc["runs"][0]["results"][0]["message"]["text"].strip()


BRACES = "DEFAULT '{}'::text[] vs {\"a\": {\"b\": [1]}}; placeholder-like {0} {1}; doubled {{0}}; }{ {"


def test_braces_in_messages_are_escaped_and_round_trip() -> None:
    findings = [
        Finding("naming.table", Severity.ERROR, "t", BRACES, "a.sql", 1, 1),
        Finding("ai.{0}-rule", Severity.WARNING, "Naming {0}", "", "b.sql", 2, None, "ai"),  # title as text
        Finding("migration.drop-table", Severity.INFO, "", "{0}", None, None, None, "rule", "prod {0}", 0),
    ]
    doc = sarif(findings)
    assert_uploadable(doc)
    results = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    for res in results.values():
        assert "arguments" not in res["message"]  # no placeholders: every brace is literal (§3.11.11)
    assert results["naming.table"]["message"]["text"] == (
        "DEFAULT '{{}}'::text[] vs {{\"a\": {{\"b\": [1]}}}}; placeholder-like {{0}} {{1}}; "
        "doubled {{{{0}}}}; }}{{ {{"
    )
    assert message_string(results["naming.table"]["message"]) == BRACES
    assert message_string(results["ai.{0}-rule"]["message"]) == "Naming {0}"
    assert results["migration.drop-table"]["message"]["text"] == "{{0}}"
    assert message_string(results["migration.drop-table"]["message"]) == "{0}"
    # what is not a message string stays verbatim: rule descriptions (§3.49.9/10), ids, properties
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["ai.{0}-rule"]["shortDescription"]["text"] == "ai.{0}-rule"
    assert results["migration.drop-table"]["properties"]["environment"] == "prod {0}"
    assert results["migration.drop-table"]["locations"][0]["logicalLocations"][0]["name"] == (
        "environment prod {0} step 1"
    )


@pytest.mark.parametrize(
    ("file", "prefix", "expected"),
    [
        ("a b/c d.sql", "", "a b/c d.sql"),
        ("ünï/Ωmega 😀.sql", "", "ünï/Ωmega 😀.sql"),
        ("x #1?.sql", "db schemas", "db schemas/x #1?.sql"),
        ("100%.sql", "repo/", "repo/100%.sql"),
        ("plain/a.sql", "./schemas", "schemas/plain/a.sql"),
        ("a.sql", ".", "a.sql"),
    ],
)
def test_paths_with_spaces_and_non_ascii(file: str, prefix: str, expected: str) -> None:
    doc = sarif([Finding("naming.table", Severity.ERROR, "t", "m", file, 1, 1)], path_prefix=prefix)
    assert_uploadable(doc)
    (uri,) = uris(doc)
    assert uri.isascii() and " " not in uri
    assert unquote(uri) == expected


def test_bad_positions_are_left_out() -> None:
    findings = [
        Finding("naming.table", Severity.ERROR, "t", "m", "a.sql", 0, 0),
        Finding("naming.column", Severity.WARNING, "t", "m", "a.sql", -1, -3),
        Finding("naming.index", Severity.WARNING, "t", "m", "a.sql", 2, -1),
    ]
    doc = sarif(findings)
    assert_uploadable(doc)
    regions = [r["locations"][0]["physicalLocation"].get("region") for r in doc["runs"][0]["results"]]
    assert regions == [None, None, {"startLine": 2}]


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_cli_review_format_sarif(state_dir: Path, tmp_path: Path, locale: str) -> None:
    env = {**os.environ, "LC_ALL": locale, "LANG": locale, "SCHEMA_PIPELINE_CACHE_DIR": str(tmp_path / "c")}
    env.pop("PYTHONIOENCODING", None)
    env.pop("PYTHONUTF8", None)
    proc = subprocess.run(
        [str(CLI), "review", "--format", "sarif", "--state", str(state_dir)],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr.decode("utf-8", "replace")  # naming.table is an ERROR
    doc = json.loads(proc.stdout.decode("utf-8"))
    assert_uploadable(doc)
    assert doc["runs"][0]["columnKind"] == "unicodeCodePoints"
    rule_ids = {r["ruleId"] for r in doc["runs"][0]["results"]}
    assert {"naming.table", "naming.column", "type.prefer-jsonb"} <= rule_ids
    for res in doc["runs"][0]["results"]:
        phys = res["locations"][0]["physicalLocation"]
        # URIs are relative to the working directory (the repository root in CI)
        path = tmp_path / unquote(phys["artifactLocation"]["uri"])
        assert path.is_file(), path
        line = path.read_text(encoding="utf-8").splitlines()[phys["region"]["startLine"] - 1]
        if res["ruleId"] == "naming.table" and "😀" in line:
            # columns count code points, as columnKind says: the name right after the emoji comment
            assert line[phys["region"]["startColumn"] - 1 :].startswith('"Ünï😀"')
