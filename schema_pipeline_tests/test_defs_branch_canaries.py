"""The hostile states of test_plan_canaries.py pushed as branches and reviewed by the Dagster branch review:
the review plans every branch against test and prod, and nothing is created on either server (no plan
database, no table, no file on the host, no secret in Dagster's storage)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from schema_pipeline.config import parse_config
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline_tests.test_defs_branches import branch_commit, tick
from schema_pipeline_tests.test_defs_pipeline import all_event_text, tables, with_password
from schema_pipeline_tests.test_git import TempRepo, temp_repo  # noqa: F401  (fixture)
from schema_pipeline_tests.test_plan_canaries import CANARY_FILE, CASES, SECRET, _databases

HOSTILE = [(case_id, text) for case_id, text, legitimate in CASES if not legitimate]


@pytest.mark.parametrize("case_id,text", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_branch_review_of_a_hostile_state_creates_nothing(case_id: str, text: str, temp_repo: TempRepo,  # noqa: F811
                                                         make_db, admin_url: str, tmp_path: Path,
                                                         monkeypatch) -> None:
    test_db, prod_db = make_db(), make_db()
    monkeypatch.setenv("SCHEMA_PIPELINE_TEST_URL", with_password(test_db))
    monkeypatch.setenv("SCHEMA_PIPELINE_PROD_URL", with_password(prod_db))
    monkeypatch.setenv("SCHEMA_PIPELINE_SECRET_CANARY", SECRET)
    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", "off")
    temp_repo.commit_sample()
    before_test, before_prod = tables(test_db), tables(prod_db)
    text = text.replace("{db}", psycopg.conninfo.conninfo_to_dict(prod_db)["dbname"])
    branch_commit(temp_repo, "feature/hostile", {"schemas/99_hostile.sql": text})
    cfg = parse_config({"git": {"repo": str(temp_repo.path), "review_branches": ["feature/*"]}},
                       file=tmp_path / "schema_pipeline.yaml")
    defs = build_definitions(cfg)
    before = _databases(admin_url)
    with dg.instance_for_test() as instance:
        (req,) = tick(defs, temp_repo, instance, None).run_requests
        result = defs.resolve_job_def("schema_review").execute_in_process(
            run_config=req.run_config, instance=instance, tags=req.tags, raise_on_error=False)
        events = all_event_text(instance)
    assert not result.success, f"{case_id}: the hostile state was reviewed as fine"
    assert "99_hostile.sql:" in events, f"{case_id}: the failure names no file:line"
    assert not CANARY_FILE.exists(), f"{case_id}: a file was written on the host"
    assert tables(test_db) == before_test and tables(prod_db) == before_prod
    assert _databases(admin_url) - before == set(), "a plan database was created on an environment's server"
    assert SECRET not in events and "root:x:0:0" not in events
