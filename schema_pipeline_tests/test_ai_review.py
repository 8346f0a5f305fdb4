"""AI review against a local server speaking the OpenAI and Anthropic wire formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schema_pipeline.errors import ConfigError
from schema_pipeline.plan.model import Hazard, HazardType, Step
from schema_pipeline.review.ai import (
    AIReviewConfig,
    ai_review,
    findings_schema,
    migration_path,
    parse_standards,
)
from schema_pipeline.state.model import DesiredState, Statement
from schema_pipeline_tests.fake_llm import FakeLLM

KEY = "sk-test-secret-key-123456"
KEY_ENV = "SP_TEST_LLM_KEY"

STANDARDS = """# SQL review standards

## 1. Table Naming Convention
- All table names must be in snake_case.
- Table names must be plural.

## 2. Column Standards
- Use TEXT instead of VARCHAR.
- Every table must have a created_at timestamptz column.
"""

TABLES = """CREATE TABLE public.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(200) NOT NULL
);

CREATE TABLE public.OrderItem (
    id bigint PRIMARY KEY,
    created_at timestamptz NOT NULL
);
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[DesiredState, Path]:
    """A state directory with one file and a standards file, and the project root."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "01_tables.sql").write_text(TABLES)
    (tmp_path / ".bytebase").mkdir()
    (tmp_path / ".bytebase" / "sql-review.md").write_text(STANDARDS)
    statements = [
        Statement(sql=TABLES.split("\n\n")[0], file="01_tables.sql", line=1, kind="CREATE TABLE"),
        Statement(sql=TABLES.split("\n\n")[1].strip(), file="01_tables.sql", line=6, kind="CREATE TABLE"),
    ]
    state = DesiredState(root=str(schemas), files=["01_tables.sql"], statements=statements, fingerprint="f1")
    return state, tmp_path


MIGRATIONS = {
    "test": [
        Step(
            sql="CREATE TABLE public.users (id bigint PRIMARY KEY, email varchar(200) NOT NULL)",
            object_kind="table",
            object_name="public.users",
            action="create",
        ),
        Step(
            sql="ALTER TABLE public.orders DROP COLUMN note",
            object_kind="table",
            object_name="public.orders",
            action="alter",
            hazards=[Hazard(HazardType.DELETES_DATA, "drops column note")],
        ),
    ]
}

GOOD = [
    {
        "rule": "column-standards-1",
        "severity": "error",
        "file": "01_tables.sql",
        "line": 3,
        "evidence": "email varchar(200) NOT NULL",
        "message": "Use text instead of varchar(200).",
    },
    {
        "rule": "table-naming-convention-1",
        "severity": "warning",
        "file": "01_tables.sql",
        "line": 6,
        "evidence": "CREATE TABLE public.OrderItem",
        "message": "OrderItem is not snake_case.",
    },
]


def config(fake: FakeLLM, tmp_path: Path, provider: str = "openai", **kw) -> AIReviewConfig:
    base = fake.base_url if provider == "openai" else fake.root_url
    settings = {
        "provider": provider,
        "model": "test-model",
        "base_url": base,
        "api_key_env": KEY_ENV,
        "cache_dir": str(tmp_path / "cache"),
        "timeout": 5.0,
        "max_retries": 2,
        "backoff": 0.0,
    }
    settings.update(kw)
    return AIReviewConfig(**settings)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def run(state: DesiredState, root: Path, cfg: AIReviewConfig, migrations=None, known=()):
    return ai_review(state, MIGRATIONS if migrations is None else migrations, cfg, base_dir=root, known=known)


def assert_no_secret(result) -> None:
    assert KEY not in result.status
    assert KEY not in json.dumps(result.to_dict(), default=str)
    assert KEY not in result.summary()


# -- not configured ---------------------------------------------------------------------------


def test_not_configured_makes_no_call(project) -> None:
    state, root = project
    with FakeLLM(KEY) as fake:
        result = run(state, root, AIReviewConfig())
        assert fake.request_count == 0
    assert result.status == "not configured"
    assert result.findings == [] and not result.ok and not result.failed
    assert "not configured" in result.summary()
    info = result.status_finding()
    assert (
        info is not None
        and info.source == "ai"
        and str(getattr(info.severity, "value", info.severity)).upper() == "INFO"
    )


# -- good answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_good_answer_gives_anchored_advisory_findings(project, tmp_path, provider) -> None:
    state, root = project
    with FakeLLM(KEY) as fake:
        fake.findings = GOOD
        result = run(state, root, config(fake, tmp_path, provider))
        assert fake.request_count == 1
        path, headers, body = fake.requests[0]
    assert result.status == "ok", result.status
    assert result.dropped == 0
    assert len(result.findings) == 2
    by_rule = {f.rule_id: f for f in result.findings}
    varchar = by_rule["ai.column-standards-1"]
    assert varchar.source == "ai"
    assert (
        str(getattr(varchar.severity, "value", varchar.severity)).upper() == "WARNING"
    )  # advisory by default
    assert (varchar.file, varchar.line, varchar.column) == ("01_tables.sql", 3, 5)
    assert varchar.title == "Use TEXT instead of VARCHAR."
    assert by_rule["ai.table-naming-convention-1"].line == 6
    # the request: standards, line-numbered state, the migration, structured output
    headers = {k.lower(): v for k, v in headers.items()}
    if provider == "openai":
        assert path == "/v1/chat/completions"
        assert headers["authorization"] == f"Bearer {KEY}"
        prompt = body["messages"][1]["content"]
        schema = body["response_format"]["json_schema"]["schema"]
        assert body["response_format"]["json_schema"]["strict"] is True
    else:
        assert path == "/v1/messages"
        assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
        assert body["tool_choice"] == {"type": "tool", "name": "report_findings"}
        prompt = body["messages"][0]["content"]
        schema = body["tools"][0]["input_schema"]
    assert "Use TEXT instead of VARCHAR." in prompt
    assert "0003|     email varchar(200) NOT NULL" in prompt
    assert "--- file: migration/test.sql (migration for environment test) ---" in prompt
    assert "ALTER TABLE public.orders DROP COLUMN note;" in prompt
    item = schema["properties"]["findings"]["items"]
    assert set(item["required"]) == {"rule", "severity", "file", "line", "evidence", "message"}
    assert "column-standards-1" in item["properties"]["rule"]["enum"]
    assert item["properties"]["file"]["enum"] == ["01_tables.sql", "migration/test.sql"]
    assert_no_secret(result)


def test_blocking_keeps_model_severity(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY) as fake:
        fake.findings = GOOD
        result = run(state, root, config(fake, tmp_path, blocking=True))
    severities = {f.rule_id: str(getattr(f.severity, "value", f.severity)).upper() for f in result.findings}
    assert severities == {"ai.column-standards-1": "ERROR", "ai.table-naming-convention-1": "WARNING"}


def test_migration_findings_carry_environment_step_and_state_location(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY) as fake:
        fake.findings = [
            {
                "rule": "column-standards-1",
                "severity": "warning",
                "file": migration_path("test"),
                "line": 4,
                "evidence": "email varchar(200)",
                "message": "Use text.",
            },
            {
                "rule": "column-standards-2",
                "severity": "warning",
                "file": migration_path("test"),
                "line": 6,
                "evidence": "ALTER TABLE public.orders DROP COLUMN note",
                "message": "Dropping a column loses data.",
            },
        ]
        result = run(state, root, config(fake, tmp_path), known=[])
    assert result.status == "ok" and len(result.findings) == 2
    users, orders = sorted(result.findings, key=lambda f: f.step_index)
    # step 1 creates public.users: anchored at its CREATE TABLE in the state
    assert (users.environment, users.step_index, users.file, users.line) == ("test", 0, "01_tables.sql", 1)
    # step 2 touches an object the state no longer declares: no state location
    assert (orders.environment, orders.step_index, orders.file, orders.line) == ("test", 1, None, None)


def test_rule_findings_are_listed_so_the_model_does_not_repeat_them(project, tmp_path) -> None:
    from schema_pipeline.review.finding import Finding, Severity

    state, root = project
    known = [
        Finding(
            "naming.table",
            Severity.ERROR,
            "Table names must be snake_case",
            "OrderItem",
            "01_tables.sql",
            6,
            1,
        )
    ]
    with FakeLLM(KEY) as fake:
        cfg = config(fake, tmp_path)
        run(state, root, cfg, known=known)
        run(state, root, cfg)  # a different prompt: not served from the cache
        prompt = fake.requests[0][2]["messages"][1]["content"]
        assert fake.request_count == 2
    assert "# Already reported by the rule engine" in prompt
    assert "- 01_tables.sql:6:1: naming.table: Table names must be snake_case" in prompt


# -- malformed, hallucinated ------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_malformed_answer_is_a_failure_not_a_crash(project, tmp_path, provider) -> None:
    state, root = project
    with FakeLLM(KEY, mode="malformed") as fake:
        result = run(state, root, config(fake, tmp_path, provider))
        assert fake.request_count == 1  # not retried: the transport worked
    assert result.failed and "malformed" in result.status
    assert result.findings == []
    assert result.status_finding() is not None
    assert_no_secret(result)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_hallucinated_evidence_is_dropped_and_counted(project, tmp_path, provider) -> None:
    state, root = project
    with FakeLLM(KEY, mode="hallucinated") as fake:
        fake.findings = GOOD[:1]
        result = run(state, root, config(fake, tmp_path, provider))
    assert result.status == "ok"
    assert [f.rule_id for f in result.findings] == ["ai.column-standards-1"]
    assert result.dropped == 1
    assert "evidence not found" in result.drop_reasons[0]
    assert "1 dropped" in result.summary()


def test_evidence_must_be_near_the_cited_line(project, tmp_path) -> None:
    state, root = project
    near = dict(GOOD[0], line=5)  # 2 lines off: kept, snapped to line 3
    far = dict(GOOD[1], line=1)  # 5 lines off: dropped
    wrong_rule = dict(GOOD[0], rule="no-such-rule")
    wrong_file = dict(GOOD[0], file="99_other.sql")
    not_an_object = "oops"
    short = dict(GOOD[0], evidence="id")
    with FakeLLM(KEY) as fake:
        fake.findings = [near, far, wrong_rule, wrong_file, not_an_object, short]  # type: ignore[list-item]
        result = run(state, root, config(fake, tmp_path))
    assert result.status == "ok"
    assert [(f.rule_id, f.line) for f in result.findings] == [("ai.column-standards-1", 3)]
    assert result.dropped == 5
    reasons = " | ".join(result.drop_reasons)
    assert "unknown rule" in reasons and "unknown file" in reasons and "malformed" in reasons


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_fenced_json_and_prefixed_quotes_are_accepted(project, tmp_path, provider) -> None:
    """Models that ignore the format: a ```json fence, numeric strings, copied `NNNN| ` prefixes."""
    state, root = project
    with FakeLLM(KEY, mode="fenced") as fake:
        fake.findings = [
            dict(GOOD[0], line="3", severity="ERROR", evidence="0003|     email varchar(200) NOT NULL")
        ]
        result = run(state, root, config(fake, tmp_path, provider))
    assert result.status == "ok", result.status
    assert len(result.findings) == 1 and result.findings[0].line == 3


# -- transport: timeouts and retries ----------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_timeout_fails_after_bounded_retries(project, tmp_path, provider) -> None:
    state, root = project
    with FakeLLM(KEY, mode="slow") as fake:
        fake.delay = 1.5
        result = run(state, root, config(fake, tmp_path, provider, timeout=0.3, max_retries=2))
        assert fake.request_count == 3
    assert result.failed and "timed out" in result.status and "3 attempts" in result.status
    assert_no_secret(result)


def test_server_error_then_success_is_retried(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY, mode="error_then_good") as fake:
        fake.findings = GOOD
        fake.failures = 1
        result = run(state, root, config(fake, tmp_path))
        assert fake.request_count == 2
    assert result.status == "ok" and len(result.findings) == 2


def test_persistent_server_error_fails(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY, mode="always_500") as fake:
        result = run(state, root, config(fake, tmp_path, provider="anthropic", max_retries=1))
        assert fake.request_count == 2
    assert result.failed and "HTTP 500" in result.status


def test_api_key_never_appears_in_errors(project, tmp_path) -> None:
    state, root = project
    for provider in ("openai", "anthropic"):
        with FakeLLM(KEY, mode="unauthorized") as fake:
            result = run(state, root, config(fake, tmp_path, provider))
            assert fake.request_count == 1  # 401 is not retried
        assert result.failed and "HTTP 401" in result.status
        assert_no_secret(result)


def test_missing_key_variable_fails_without_a_call(project, tmp_path, monkeypatch) -> None:
    state, root = project
    monkeypatch.delenv(KEY_ENV)
    with FakeLLM(KEY) as fake:
        result = run(state, root, config(fake, tmp_path))
        assert fake.request_count == 0
    assert result.status == f"failed: API key variable {KEY_ENV} is not set"


def test_missing_standards_file_fails(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY) as fake:
        result = run(state, root, config(fake, tmp_path, standards_file="docs/missing.md"))
        assert fake.request_count == 0
    assert result.status == "failed: standards file docs/missing.md not found"


def test_oversized_input_fails_without_a_call(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY) as fake:
        result = run(state, root, config(fake, tmp_path, max_input_chars=100))
        assert fake.request_count == 0
    assert result.failed and "too large" in result.status


# -- cache ------------------------------------------------------------------------------------


def test_cache_hit_makes_no_call(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY, mode="hallucinated") as fake:
        fake.findings = GOOD
        cfg = config(fake, tmp_path)
        first = run(state, root, cfg)
        second = run(state, root, cfg)
        assert fake.request_count == 1
        assert first.status == "ok" and second.status == "cached"
        assert second.findings == first.findings and second.dropped == first.dropped == 1
        # blocking is applied after the cache: same entry, different severities
        blocking = run(state, root, config(fake, tmp_path, blocking=True))
        assert blocking.status == "cached"
        # any content change misses the cache
        (Path(state.root) / "01_tables.sql").write_text(TABLES + "\n-- edited\n")
        third = run(state, root, cfg)
        assert third.status == "ok" and fake.request_count == 2
        # so does another model
        run(state, root, config(fake, tmp_path, model="other-model"))
        assert fake.request_count == 3
    for path in (tmp_path / "cache").iterdir():
        assert KEY not in path.read_text()


def test_cache_can_be_disabled(project, tmp_path) -> None:
    state, root = project
    with FakeLLM(KEY) as fake:
        cfg = config(fake, tmp_path, cache=False)
        run(state, root, cfg)
        run(state, root, cfg)
        assert fake.request_count == 2


# -- state text fallback ----------------------------------------------------------------------


@pytest.mark.parametrize("change", ["deleted", "edited"])
def test_state_text_rebuilt_from_statements_when_the_file_changed(project, tmp_path, change) -> None:
    """The review sees the state as loaded, even if the file is gone or was edited since."""
    state, root = project
    path = Path(state.root) / "01_tables.sql"
    if change == "deleted":
        path.unlink()
    else:
        path.write_text("-- a new header line\n" + TABLES)
    with FakeLLM(KEY) as fake:
        fake.findings = GOOD
        result = run(state, root, config(fake, tmp_path))
    assert result.status == "ok"
    assert sorted(f.line for f in result.findings) == [3, 6]


# -- configuration and standards parsing ------------------------------------------------------


def test_parse_standards_ids() -> None:
    rules = parse_standards(
        "# Standards\n\n## 1. Table Naming\n- snake_case names\n  continued here\n- plural names\n"
        "  - nested detail\n\n## Types\n* Use TEXT {#use-text}\n1. [R7] Use bigint ids\n"
        "- [docs](https://example.com) are a link, not an id\n\nSome paragraph.\n"
    )
    assert [r.id for r in rules] == ["table-naming-1", "table-naming-2", "use-text", "R7", "types-3"]
    assert rules[0].text == "snake_case names continued here"
    assert rules[1].text == "plural names - nested detail"
    assert rules[2].text == "Use TEXT"
    assert parse_standards("Free text without bullets.") == []


def test_schema_without_rule_ids_accepts_any_rule() -> None:
    schema = findings_schema([], ["a.sql"])
    item = schema["properties"]["findings"]["items"]
    assert "enum" not in item["properties"]["rule"]
    assert item["additionalProperties"] is False and schema["additionalProperties"] is False


def test_config_endpoints_and_validation(monkeypatch) -> None:
    assert (
        AIReviewConfig(provider="openai", model="m").endpoint == "https://api.openai.com/v1/chat/completions"
    )
    assert AIReviewConfig(provider="openai", model="m").key_env == "OPENAI_API_KEY"
    ollama = AIReviewConfig(provider="openai", model="llama3", base_url="http://localhost:11434/v1")
    assert ollama.endpoint == "http://localhost:11434/v1/chat/completions" and ollama.key_env is None
    azure = AIReviewConfig(
        provider="openai",
        model="gpt-4o",
        api_version="2024-10-21",
        base_url="https://acme.openai.azure.com/openai/deployments/gpt-4o",
    )
    assert azure.endpoint == (
        "https://acme.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    )
    assert AIReviewConfig(provider="anthropic", model="m").endpoint == "https://api.anthropic.com/v1/messages"
    assert (
        AIReviewConfig(provider="anthropic", model="m", base_url="http://h/v1").endpoint
        == "http://h/v1/messages"
    )
    with pytest.raises(ConfigError, match="environment variable"):
        AIReviewConfig.from_dict({"provider": "openai", "model": "m", "api_key": "sk-x"})
    with pytest.raises(ConfigError, match="NAME"):
        AIReviewConfig.from_dict({"provider": "openai", "model": "m", "api_key_env": "sk-live-123"})
    with pytest.raises(ConfigError, match="provider"):
        AIReviewConfig.from_dict({"provider": "gemini", "model": "m"})
    with pytest.raises(ConfigError, match="unknown"):
        AIReviewConfig.from_dict({"provider": "openai", "model": "m", "temprature": 0})
    env = {
        "SCHEMA_PIPELINE_AI_PROVIDER": "anthropic",
        "SCHEMA_PIPELINE_AI_MODEL": "claude-x",
        "SCHEMA_PIPELINE_AI_BLOCKING": "true",
        "SCHEMA_PIPELINE_AI_TIMEOUT": "30",
    }
    cfg = AIReviewConfig.from_env(env)
    assert (cfg.provider, cfg.model, cfg.blocking, cfg.timeout, cfg.key_env) == (
        "anthropic",
        "claude-x",
        True,
        30.0,
        "ANTHROPIC_API_KEY",
    )
    assert not AIReviewConfig.from_env({}).configured


def test_invalid_config_is_reported_as_failure(project) -> None:
    state, root = project
    result = run(state, root, AIReviewConfig(provider="openai", model=""))
    assert result.failed and "model" in result.status


def test_real_loader_state_is_sent_verbatim_with_comments(tmp_path) -> None:
    """With the real loader, the files are sent as written (comments included), line-numbered."""
    from schema_pipeline.state.loader import load_state

    schemas = tmp_path / "schemas"
    schemas.mkdir()
    text = (
        "-- Customer accounts.\n"
        "SET search_path = app;\n\n"
        "CREATE TABLE accounts (  -- one row per customer\n"
        "    id bigint PRIMARY KEY,\n"
        "    name varchar(80)\n"
        ");\n"
        "COMMENT ON TABLE accounts IS 'Customers';  CREATE INDEX accounts_name ON accounts (name);\n"
    )
    (schemas / "10_accounts.sql").write_text(text)
    (tmp_path / "standards.md").write_text("- Use TEXT instead of VARCHAR.\n")
    state = load_state(str(schemas))
    with FakeLLM(KEY) as fake:
        fake.findings = [
            {
                "rule": "general-1",
                "severity": "warning",
                "file": "10_accounts.sql",
                "line": 6,
                "evidence": "name varchar(80)",
                "message": "Use text.",
            }
        ]
        result = run(state, tmp_path, config(fake, tmp_path, standards_file="standards.md"), migrations={})
        prompt = fake.requests[0][2]["messages"][1]["content"]
    assert "0001| -- Customer accounts." in prompt
    assert "0004| CREATE TABLE accounts (  -- one row per customer" in prompt
    assert "0008| COMMENT ON TABLE accounts IS 'Customers';  CREATE INDEX" in prompt
    assert "# Generated migrations" not in prompt
    assert result.status == "ok"
    assert [(f.file, f.line, f.column) for f in result.findings] == [("10_accounts.sql", 6, 5)]


def test_ai_findings_and_status_render_in_every_format(project, tmp_path) -> None:
    from schema_pipeline.review import FORMATS, render

    state, root = project
    with FakeLLM(KEY) as fake:
        fake.findings = [
            *GOOD,
            {
                "rule": "column-standards-2",
                "severity": "warning",
                "file": migration_path("test"),
                "line": 7,
                "evidence": "DROP COLUMN note",
                "message": "Dropping a column loses data.",
            },
        ]
        result = run(state, root, config(fake, tmp_path))
    assert result.status_text() == "3 findings (openai test-model)"
    markdown = render(result.findings, "markdown", ai_status=result.status_text())
    assert "AI review: 3 findings (openai test-model)" in markdown
    for fmt in FORMATS:
        assert render(result.findings, fmt, ai_status=result.status_text())
    sarif = json.loads(render(result.findings, "sarif"))
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {
        "ai.column-standards-1",
        "ai.column-standards-2",
    }


def test_config_from_yaml_like_values_is_coerced() -> None:
    cfg = AIReviewConfig.from_dict(
        {"provider": "OpenAI", "model": "m", "timeout": "30", "blocking": "yes", "temperature": None}
    )
    assert (cfg.provider, cfg.timeout, cfg.blocking, cfg.temperature) == ("openai", 30.0, True, None)
    with pytest.raises(ConfigError, match="timeout"):
        AIReviewConfig.from_dict({"provider": "openai", "model": "m", "timeout": "soon"})
    with pytest.raises(ConfigError, match="blocking"):
        AIReviewConfig.from_dict({"provider": "openai", "model": "m", "blocking": "maybe"})


def _big_state(tmp_path: Path) -> DesiredState:
    schemas = tmp_path / "big"
    schemas.mkdir()
    files, statements = [], []
    for n in range(3):
        name = f"{n:02d}_t.sql"
        body = "".join(f"CREATE TABLE t{n}_{i} (id bigint PRIMARY KEY, v varchar(10));\n" for i in range(50))
        (schemas / name).write_text(body)
        files.append(name)
        statements += [
            Statement(sql=line, file=name, line=i + 1, kind="CREATE TABLE")
            for i, line in enumerate(body.splitlines())
        ]
    return DesiredState(root=str(schemas), files=files, statements=statements, fingerprint="big")


def _finding_in(n: int) -> dict:
    return {
        "rule": "column-standards-1",
        "severity": "warning",
        "file": f"{n:02d}_t.sql",
        "line": 2,
        "evidence": f"CREATE TABLE t{n}_1 (id bigint PRIMARY KEY, v varchar(10));",
        "message": "Use text.",
    }


def test_large_states_are_sent_in_several_requests(project, tmp_path) -> None:
    _, root = project
    state = _big_state(tmp_path)
    with FakeLLM(KEY) as fake:
        fake.findings = [_finding_in(0), _finding_in(2)]
        result = run(state, root, config(fake, tmp_path, max_input_chars=9000), migrations={})
        files_per_request = [
            body["response_format"]["json_schema"]["schema"]["properties"]["findings"]["items"]["properties"][
                "file"
            ]["enum"]
            for _, _, body in fake.requests
        ]
    assert files_per_request == [["00_t.sql", "01_t.sql"], ["02_t.sql"]]
    assert result.status == "ok"
    # each request's answer is checked against all files: a finding citing a file of another
    # request is still verified by its quote
    assert sorted(f.file for f in result.findings) == ["00_t.sql", "02_t.sql"]


def test_a_failed_request_fails_the_review_but_keeps_the_others_findings(project, tmp_path) -> None:
    _, root = project
    state = _big_state(tmp_path)
    with FakeLLM(KEY) as fake:
        fake.findings = [_finding_in(0)]
        fake.fail_from = 2
        cfg = config(fake, tmp_path, max_input_chars=9000, max_retries=0)
        result = run(state, root, cfg, migrations={})
        assert result.failed and result.status.startswith("failed: request 2 of 2: HTTP 500")
        assert [f.file for f in result.findings] == ["00_t.sql"]
        fake.fail_from = None
        again = run(state, root, cfg, migrations={})  # a failed review is not cached
        assert again.status == "ok" and fake.request_count == 4


def test_a_failed_blocking_review_blocks(project, tmp_path) -> None:
    from schema_pipeline.review import has_blocking

    state, root = project
    with FakeLLM(KEY, mode="always_500") as fake:
        advisory = run(state, root, config(fake, tmp_path, max_retries=0))
        blocking = run(state, root, config(fake, tmp_path, max_retries=0, blocking=True))
    assert not has_blocking([advisory.status_finding()])
    assert has_blocking([blocking.status_finding()])
