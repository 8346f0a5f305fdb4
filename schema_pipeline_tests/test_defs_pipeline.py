"""The assets end to end against real PostgreSQL databases and a real temporary git repository.

state -> review -> release/test, the prod approval guards, drift checks, and a bad state file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from schema_pipeline.config import ProjectConfig, parse_config
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline_tests.conftest import db_url
from schema_pipeline_tests.test_git import TempRepo, temp_repo  # noqa: F401  (fixture)

PASSWORD = "s3cr3t-pw-never-shown"
STATE = dg.AssetKey(["schema", "state"])
REVIEW = dg.AssetKey(["schema", "review"])
TEST = dg.AssetKey(["release", "test"])
PROD = dg.AssetKey(["release", "prod"])


@dataclass
class Pipeline:
    repo: TempRepo
    cfg: ProjectConfig
    defs: dg.Definitions
    instance: dg.DagsterInstance
    test_url: str
    prod_url: str

    def to_test(self, sha: str = "") -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def("schema_to_test")
        return job.execute_in_process(
            run_config={"ops": {"schema__state": {"config": {"commit_sha": sha}}}},
            instance=self.instance,
            raise_on_error=False,
        )

    def to_prod(self, **approval: object) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            run_config={"ops": {"release__prod": {"config": approval}}},
            instance=self.instance,
            asset_selection=[PROD],
            raise_on_error=False,
        )

    def drift(self) -> dict[str, dg.AssetCheckEvaluation]:
        result = self.defs.resolve_job_def("drift_checks").execute_in_process(
            instance=self.instance, raise_on_error=False
        )
        assert result.success
        return {ev.asset_key.path[-1]: ev for ev in result.get_asset_check_evaluations()}


def with_password(url: str) -> str:
    """The same database with a password in the URL (trust auth ignores it; it must never show)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return {r[0] for r in rows}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message and description, joined."""
    parts = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            parts.append(event.message or "")
            if data.user_failure_data and data.user_failure_data.description:
                parts.append(data.user_failure_data.description)
            if data.error:
                parts.append(data.error.message)
    return "\n".join(parts)


def all_event_text(instance: dg.DagsterInstance) -> str:
    """Every stored event (messages and metadata) of every run, as one string."""
    out = []
    for run in instance.get_runs():
        for record in instance.all_logs(run.run_id):
            out.append(repr(record))
    return "\n".join(out)


@pytest.fixture
def pipeline(temp_repo: TempRepo, make_db, tmp_path: Path, monkeypatch) -> Iterator[Pipeline]:  # noqa: F811
    test_db = make_db()
    prod_db = make_db()
    assert db_url(test_db.rsplit("/", 1)[1]) == test_db
    monkeypatch.setenv("SCHEMA_PIPELINE_TEST_URL", with_password(test_db))
    monkeypatch.setenv("SCHEMA_PIPELINE_PROD_URL", with_password(prod_db))
    cfg = parse_config({"git": {"repo": str(temp_repo.path)}}, file=tmp_path / "schema_pipeline.yaml")
    defs = build_definitions(cfg)
    with dg.instance_for_test() as instance:
        yield Pipeline(temp_repo, cfg, defs, instance, test_db, prod_db)


def test_release_flow_test_then_approved_prod_then_drift(pipeline: Pipeline) -> None:
    p = pipeline
    sha = p.repo.commit_sample()

    # -- state -> review -> release/test --------------------------------------------------------
    result = p.to_test()
    assert result.success, failure_text(result)
    assert {"employee", "department", "dept_emp", "dept_manager", "title", "salary", "audit"} <= tables(
        p.test_url
    )
    assert "current_dept_emp" in tables(p.test_url)
    assert tables(p.prod_url) == set()
    mats = {m.asset_key: m.materialization for m in result.get_asset_materialization_events()}
    assert set(mats) == {STATE, REVIEW, TEST}
    state_md = mats[STATE].metadata
    assert state_md["commit"].value == sha and mats[STATE].tags["schema/commit"] == sha
    assert "schemas/01_tables.sql" in state_md["files"].value
    assert state_md["object_counts"].value["table"] == 7
    assert "public.employee" in state_md["tables"].value
    names = {c.name for c in state_md["dagster/column_schema"].schema.columns}
    assert "public.employee.emp_no" in names
    test_md = mats[TEST].metadata
    assert test_md["commit"].value == sha and mats[TEST].tags["schema/commit"] == sha
    assert "```sql" in test_md["plan_sql"].value and "CREATE TABLE" in test_md["plan_sql"].value
    changes = test_md["changes"].value
    assert any(r.data["object"] == "public.employee" and r.data["kind"] == "table" for r in changes.records)
    assert {c.name for c in changes.schema.columns} == {"kind", "object", "action", "hazards"}
    assert "dagster/column_schema" in test_md and "review" in test_md and "duration_s" in test_md
    assert test_md["database"].value.endswith(p.test_url.rsplit("/", 1)[1])
    checks = {(c.asset_key, c.check_name): c for c in result.get_asset_check_evaluations()}
    assert checks[(REVIEW, "no_error_findings")].passed
    assert checks[(TEST, "converged")].passed
    assert (TEST, "no_drift") not in checks  # drift runs on its schedule, not in the release run

    # -- prod guards -----------------------------------------------------------------------------
    with pytest.raises(dg.DagsterInvalidConfigError, match="release__prod"):
        p.defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=p.instance, asset_selection=[PROD]
        )

    other = p.repo.commit({"schemas/04_extra.sql": "CREATE TABLE public.extra (id bigint PRIMARY KEY);\n"})
    wrong = p.to_prod(approved_by="alice", expected_commit_sha=other, reason="CHG-1")
    assert not wrong.success
    text = failure_text(wrong)
    assert f"approval is for commit {other[:12]}" in text and f"test last received {sha[:12]}" in text
    assert "Nothing was changed" in text
    assert tables(p.prod_url) == set()

    p.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=REVIEW, check_name="no_error_findings", passed=False)
    )
    gated = p.to_prod(approved_by="alice", expected_commit_sha=sha, reason="CHG-1")
    assert not gated.success
    assert "gating check schema/review:no_error_findings failed" in failure_text(gated)
    assert tables(p.prod_url) == set()

    rerun = p.to_test(sha)  # re-review and re-release the same commit: the gates pass again
    assert rerun.success, failure_text(rerun)
    ok = p.to_prod(approved_by="alice", expected_commit_sha=sha[:12], reason="CHG-1 tested in test")
    assert ok.success, failure_text(ok)
    assert tables(p.prod_url) == tables(p.test_url)
    prod_mat = ok.get_asset_materialization_events()[0].materialization
    assert prod_mat.metadata["approved_by"].value == "alice"
    assert prod_mat.metadata["approval_reason"].value == "CHG-1 tested in test"
    assert prod_mat.tags["schema/commit"] == sha
    prod_checks = {c.check_name: c.passed for c in ok.get_asset_check_evaluations()}
    assert prod_checks["converged"] and all(prod_checks.values())

    # -- drift -----------------------------------------------------------------------------------
    assert all(ev.passed for ev in p.drift().values())
    for url in (p.test_url, p.prod_url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE public.employee ADD COLUMN nickname text")
    evaluations = p.drift()
    prod_ev, test_ev = evaluations["prod"], evaluations["test"]
    assert not prod_ev.passed and prod_ev.severity == dg.AssetCheckSeverity.ERROR
    assert not test_ev.passed and test_ev.severity == dg.AssetCheckSeverity.WARN
    diff = prod_ev.metadata["diff"].value
    assert "nickname" in diff and "public.employee" in diff
    correction = prod_ev.metadata["correction_sql"].value
    assert "```sql" in correction and "nickname" in correction and "DROP" in correction.upper()
    assert prod_ev.metadata["released_commit"].value == sha

    assert PASSWORD not in all_event_text(p.instance)


def test_prod_refuses_hazards_the_environment_does_not_allow(pipeline: Pipeline) -> None:
    p = pipeline
    p.repo.commit_sample()
    assert p.to_test().success
    first = p.instance.get_latest_materialization_event(TEST).asset_materialization.tags["schema/commit"]
    assert p.to_prod(approved_by="bob", expected_commit_sha=first, reason="initial").success
    dropped = p.repo.commit({"schemas/03_audit.sql": None}, "drop the audit trail")
    assert p.to_test(dropped).success  # test allows every hazard
    refused = p.to_prod(approved_by="bob", expected_commit_sha=dropped, reason="cleanup")
    assert not refused.success
    text = failure_text(refused)
    assert "hazards not allowed here" in text and "DELETES_DATA" in text
    assert "audit" in tables(p.prod_url)
    accepted = p.to_prod(
        approved_by="bob", expected_commit_sha=dropped, reason="cleanup", allow_hazards=["all"]
    )
    assert accepted.success, failure_text(accepted)
    assert "audit" not in tables(p.prod_url)


def test_bad_state_file_is_reported_with_file_and_line_and_nothing_is_applied(pipeline: Pipeline) -> None:
    p = pipeline
    p.repo.commit_sample()
    bad = "CREATE TABLE public.extra (id bigint PRIMARY KEY);\n\nINSERT INTO public.extra VALUES (1);\n"
    p.repo.commit({"schemas/04_bad.sql": bad}, "oops: DML in the state")
    result = p.to_test()
    assert not result.success
    text = failure_text(result)
    assert "schemas/04_bad.sql:3" in text
    assert "nothing was applied" in text
    assert tables(p.test_url) == set()
    assert not [m for m in result.get_asset_materialization_events() if m.asset_key != STATE]
