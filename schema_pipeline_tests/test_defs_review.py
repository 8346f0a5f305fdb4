"""schema/review: environments without a URL are skipped (and said so); the opt-in AI review
runs against a local server speaking the OpenAI wire format, with the standards file read
from the same commit."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from schema_pipeline.config import parse_config
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline_tests.fake_llm import FakeLLM
from schema_pipeline_tests.test_git import TempRepo, temp_repo  # noqa: F401  (fixture)

KEY = "sk-review-asset-secret-987"
STATE = dg.AssetKey(["schema", "state"])
REVIEW = dg.AssetKey(["schema", "review"])
STANDARDS = "# Team SQL standards\n\n## 1. Column Standards\n- Gender must be an enum type.\n"


def test_review_with_ai_and_an_environment_without_url(
    temp_repo: TempRepo,  # noqa: F811
    fresh_db: str,
    tmp_path: Path,
    monkeypatch,
) -> None:
    temp_repo.commit_sample()
    sha = temp_repo.commit({".bytebase/sql-review.md": STANDARDS}, "team standards")
    monkeypatch.setenv("SCHEMA_PIPELINE_TEST_URL", fresh_db)
    monkeypatch.delenv("SCHEMA_PIPELINE_PROD_URL", raising=False)
    monkeypatch.setenv("SP_REVIEW_LLM_KEY", KEY)
    with FakeLLM(KEY) as fake:
        fake.findings = [
            {
                "rule": "column-standards-1",
                "severity": "warning",
                "file": "01_tables.sql",
                "line": 9,
                "evidence": "gender text NOT NULL",
                "message": "gender should use an enum type.",
            }
        ]
        raw = {
            "git": {"repo": str(temp_repo.path)},
            "review": {
                "ai": {
                    "provider": "openai",
                    "model": "test-model",
                    "base_url": fake.base_url,
                    "api_key_env": "SP_REVIEW_LLM_KEY",
                    "cache_dir": str(tmp_path / "ai-cache"),
                    "timeout": 5.0,
                    "backoff": 0.0,
                }
            },
        }
        defs = build_definitions(parse_config(raw, file=tmp_path / "schema_pipeline.yaml"))
        with dg.instance_for_test() as instance:
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance, asset_selection=[STATE, REVIEW], raise_on_error=False
            )
            assert result.success
            assert fake.request_count == 1
            events = "\n".join(repr(r) for r in instance.all_logs(result.run_id))
    mats = {m.asset_key: m.materialization for m in result.get_asset_materialization_events()}
    review_md = mats[REVIEW].metadata
    assert review_md["commit"].value == sha
    assert review_md["environments_reviewed"].value == "test"
    assert "prod (SCHEMA_PIPELINE_PROD_URL not set)" in review_md["environments_skipped"].value
    report = review_md["report"].value
    assert "gender should use an enum type." in report
    assert "schemas/01_tables.sql" in report  # repository-relative paths in the report
    assert "openai test-model" in report
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_error_findings" and check.passed  # AI findings are advisory
    assert KEY not in events


def test_state_from_a_glob_without_any_database(temp_repo: TempRepo, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    """schema/state needs no database: counts come from the parsed statements then."""
    for var in ("SCHEMA_PIPELINE_TEST_URL", "SCHEMA_PIPELINE_PROD_URL"):
        monkeypatch.delenv(var, raising=False)
    sha = temp_repo.commit_sample()
    temp_repo.commit({"notes/readme.sql": "SELECT 1;\n"}, "not state")  # outside the glob
    raw = {"state": "schemas/*.sql", "git": {"repo": str(temp_repo.path)}}
    defs = build_definitions(parse_config(raw, file=tmp_path / "schema_pipeline.yaml"))
    with dg.instance_for_test() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[STATE],
            run_config={"ops": {"schema__state": {"config": {"commit_sha": sha[:8]}}}},
        )
    (mat,) = [m.materialization for m in result.get_asset_materialization_events()]
    assert mat.tags["schema/commit"] == sha
    assert mat.metadata["files"].value.splitlines() == [
        "- `schemas/01_tables.sql`",
        "- `schemas/02_views.sql`",
        "- `schemas/03_audit.sql`",
    ]
    assert mat.metadata["object_counts"].value["table"] == 7
    assert "dagster/column_schema" not in mat.metadata
