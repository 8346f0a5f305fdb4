"""Project configuration: defaults, the shipped file, and clear errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from schema_pipeline.config import (
    DEFAULT_DRIFT_CRON,
    load_config,
    parse_config,
    project_root,
)
from schema_pipeline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schema_pipeline.yaml"
    path.write_text(text)
    return path


def test_empty_file_gives_the_zero_configuration_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert cfg.state == "schemas"
    assert cfg.git.repo == str(tmp_path.resolve())
    assert cfg.git.branch == "main"
    assert cfg.env_names == ["test", "prod"]
    test, prod = cfg.environments
    assert test.database_url_env == "SCHEMA_PIPELINE_TEST_URL"
    assert prod.database_url_env == "SCHEMA_PIPELINE_PROD_URL"
    assert test.backend == prod.backend == "native"
    assert test.drift_cron == prod.drift_cron == DEFAULT_DRIFT_CRON == "0 * * * *"
    assert test.hazards_allowed() == "all"
    assert prod.hazards_allowed() == set()
    assert prod.hazards_allowed(["INDEX_BUILD"]) == {"INDEX_BUILD"}
    assert test.scope() is None
    assert cfg.previous(prod) is test and cfg.previous(test) is None


def test_shipped_file_matches_the_defaults() -> None:
    cfg = load_config(project_root() / "schema_pipeline.yaml")
    assert cfg.env_names == ["test", "prod"]
    assert cfg.git.repo == str(project_root())
    assert cfg.state == "schemas"


def test_environment_variable_selects_the_file(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, "state: db/**/*.sql\n")
    monkeypatch.setenv("SCHEMA_PIPELINE_CONFIG", str(path))
    assert load_config().state == "db/**/*.sql"
    monkeypatch.setenv("SCHEMA_PIPELINE_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="missing.yaml: file not found"):
        load_config()


def test_full_configuration(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
state: db/schema
git: {repo: "https://git.example.com/acme/db.git", branch: trunk}
environments:
  dev: {}
  staging:
    database_url_env: STAGING_DSN
    plan_database_url_env: PLAN_DSN
    drift_cron: "*/15 * * * *"
    allow_hazards: [index_build, INDEX_DROPPED]
    include_schemas: [app, audit]
  prod:
    database_url_env: PROD_DSN
    exclude_schemas: [scratch]
owners: [alice@example.com]
""",
        )
    )
    assert cfg.git.repo == "https://git.example.com/acme/db.git" and cfg.git.branch == "trunk"
    assert cfg.env_names == ["dev", "staging", "prod"]
    dev, staging, prod = cfg.environments
    assert dev.database_url_env == "SCHEMA_PIPELINE_DEV_URL" and dev.allow_hazards == ()
    assert staging.plan_database_url_env == "PLAN_DSN"
    assert staging.allow_hazards == ("INDEX_BUILD", "INDEX_DROPPED")
    assert staging.scope().include_schemas == ["app", "audit"]
    assert prod.scope().exclude_schemas == ["scratch"] and prod.scope().include_schemas is None
    assert cfg.owners == ("alice@example.com",)


def test_environments_as_a_list(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "environments:\n  - name: qa\n  - name: live\n    database_url_env: LIVE\n")
    )
    assert cfg.env_names == ["qa", "live"]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("stat: schemas\n", "stat", "unknown key"),
        ("state: /abs/path\n", "state", "relative"),
        ("git: {repo: ., brnch: main}\n", "git.brnch", "unknown key"),
        ("environments: {Prod: {}}\n", "environments.Prod", "lower-case"),
        ("environments: {}\n", "environments", "at least one"),
        (
            "environments: {prod: {database_url_env: 'postgresql://u:pw@h/db'}}\n",
            "environments.prod.database_url_env",
            "NAME of an environment variable",
        ),
        ("environments: {prod: {backend: liquibase}}\n", "environments.prod.backend", "native, bytebase"),
        (
            "environments: {prod: {backend: bytebase, database_urls_env: X}}\n",
            "environments.prod.backend",
            "BYTEBASE_TARGETS",
        ),
        ("environments: {prod: {max_parallel: 0}}\n", "environments.prod.max_parallel", "1 to 64"),
        (
            "environments: {prod: {database_url_env: A, database_urls_env: B}}\n",
            "environments.prod.database_urls_env",
            "either",
        ),
        ("review: {github: {token_env: ghp_abc-def}}\n", "review.github.token_env", "NAME"),
        ("git: {review_branches: 3}\n", "git.review_branches", "list of strings"),
        ("environments: {prod: {drift_cron: hourly}}\n", "environments.prod.drift_cron", "cron"),
        (
            "environments: {prod: {allow_hazards: [DROP_EVERYTHING]}}\n",
            "environments.prod.allow_hazards",
            "unknown hazard",
        ),
        (
            "environments: {prod: {include_schemas: 3}}\n",
            "environments.prod.include_schemas",
            "list of strings",
        ),
        ("environments: {prod: {password: x}}\n", "environments.prod.password", "unknown key"),
        ("- just a list\n", "", "mapping"),
    ],
)
def test_bad_input_names_file_and_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text_of = str(err.value)
    assert str(path) in text_of
    if key:
        assert f"(key `{key}`)" in text_of
    assert message in text_of
    assert "pw@" not in text_of


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "state: schemas\ngit: {repo: .\n")
    with pytest.raises(ConfigError, match=r"schema_pipeline.yaml:\d+: invalid YAML"):
        load_config(path)


def test_parse_config_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError, match="must contain a mapping"):
        parse_config(["x"], file=Path("/tmp/x.yaml"))


def test_review_section_is_validated_by_the_review_package(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SCHEMA_PIPELINE_AI_PROVIDER", raising=False)
    cfg = load_config(
        write(tmp_path, "review:\n  rules: {table.require-pk: off}\n  naming: {index: '^idx_'}\n")
    )
    assert cfg.review_config().levels == {"table.require-pk": "off"}
    assert not cfg.ai_config().configured
    ai = load_config(write(tmp_path, "review:\n  ai: {provider: openai, model: m, api_key_env: MY_KEY}\n"))
    assert ai.ai_config().configured and ai.ai_config().key_env == "MY_KEY"
    for text, key in [
        ("review: {rules: {x: loud}}\n", "review"),
        ("review: {ai: {provider: openai, model: m, api_key: sk-123}}\n", "review.ai"),
        ("review: {colour: red}\n", "review.colour"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_config(write(tmp_path, text))
        assert f"(key `{key}`)" in str(err.value)
        assert "sk-123" not in str(err.value)


def test_bytebase_multi_database_branch_and_github_keys(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "git: {review_branches: ['feature/*', 'fix-*']}\n"
            "environments:\n"
            "  test: {database_url_env: [T1, T2, T3], max_parallel: 2}\n"
            "  shards: {database_urls_env: SHARD_URLS}\n"
            "  prod: {backend: bytebase}\n"
            "review: {github: {token_env: GH_TOKEN, repo: acme/schemas}}\n",
        )
    )
    test, shards, prod = cfg.environments
    assert test.database_url_env == "T1" and test.database_url_envs == ("T1", "T2", "T3")
    assert test.url_sources() == [("T1", False), ("T2", False), ("T3", False)] and test.max_parallel == 2
    assert shards.url_sources() == [("SHARD_URLS", True)] and shards.multi_target
    assert prod.backend == "bytebase" and not prod.multi_target and prod.max_parallel == 4
    assert cfg.git.review_branches == ("feature/*", "fix-*")
    assert cfg.github is not None and cfg.github.token_env == "GH_TOKEN" and cfg.github.repo == "acme/schemas"
    assert [e.name for e in cfg.backend_envs("bytebase")] == ["prod"]
    default = load_config(write(tmp_path, "state: schemas\n"))
    assert default.git.review_branches == ("*",) and default.github is None
