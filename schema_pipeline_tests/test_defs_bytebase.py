"""The Dagster flow with `backend: bytebase` against the local fake Bytebase (not a live server).

state -> review (Bytebase advices merged) -> release/test -> approved release/prod -> drift,
plus a failing task that fails the asset with the task run's detail.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from schema_pipeline.config import parse_config
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline.defs.resources import build_resources
from schema_pipeline_tests.fake_bytebase import FakeBytebase
from schema_pipeline_tests.test_defs_pipeline import PROD, REVIEW, TEST, all_event_text, failure_text
from schema_pipeline_tests.test_git import TempRepo, temp_repo  # noqa: F401  (fixture)

TEST_DB = "instances/test-sample-instance/databases/hr_test"
PROD_DB = "instances/prod-sample-instance/databases/hr_prod"
STATE_SQL = "CREATE TABLE public.employee (\n    id bigint PRIMARY KEY,\n    name text NOT NULL\n);\n"


@pytest.fixture
def fake(monkeypatch) -> Iterator[FakeBytebase]:
    with FakeBytebase() as server:
        for name, value in server.env(BYTEBASE_POLL_INTERVAL="0.01", BYTEBASE_TIMEOUT="10").items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("BYTEBASE_ACCESS_TOKEN", raising=False)
        monkeypatch.delenv("SCHEMA_PIPELINE_TEST_URL", raising=False)
        monkeypatch.delenv("SCHEMA_PIPELINE_PROD_URL", raising=False)
        yield server


def bytebase_defs(repo: TempRepo, tmp_path: Path) -> dg.Definitions:
    cfg = parse_config(
        {
            "git": {"repo": str(repo.path)},
            "environments": {"test": {"backend": "bytebase"}, "prod": {"backend": "bytebase"}},
        },
        file=tmp_path / "schema_pipeline.yaml",
    )
    return build_definitions(cfg)


def to_test(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("schema_to_test").execute_in_process(instance=instance, raise_on_error=False)


def to_prod(defs: dg.Definitions, instance: dg.DagsterInstance, sha: str) -> dg.ExecuteInProcessResult:
    approval = {"approved_by": "alice", "expected_commit_sha": sha, "reason": "CHG-7"}
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        run_config={"ops": {"release__prod": {"config": approval}}},
        instance=instance,
        asset_selection=[PROD],
        raise_on_error=False,
    )


def test_secret_is_bound_as_env_var(fake: FakeBytebase, temp_repo: TempRepo, tmp_path: Path) -> None:  # noqa: F811
    cfg = parse_config(
        {"git": {"repo": str(temp_repo.path)}, "environments": {"test": {"backend": "bytebase"}}},
        file=tmp_path / "x.yaml",
    )
    resource = build_resources(cfg)["bytebase"]
    assert isinstance(resource.service_account_secret, dg.EnvVar)
    assert resource.service_account_secret.env_var_name == "BYTEBASE_SERVICE_ACCOUNT_SECRET"
    assert fake.secret not in repr(resource)


def test_full_flow_through_bytebase(fake: FakeBytebase, temp_repo: TempRepo, tmp_path: Path) -> None:  # noqa: F811
    sha = temp_repo.commit({"schemas/01_tables.sql": STATE_SQL})
    defs = bytebase_defs(temp_repo, tmp_path)
    with dg.instance_for_test() as instance:
        result = to_test(defs, instance)
        assert result.success, failure_text(result)
        mats = {m.asset_key: m.materialization for m in result.get_asset_materialization_events()}
        md = mats[TEST].metadata
        assert md["backend"].value == "bytebase" and md["bytebase_status"].value == "SUCCEEDED"
        assert md["bytebase_rollout"].value.startswith(fake.url) and "bytebase_plan" in md
        (task,) = md["tasks"].value.records
        assert task.data["database"] == TEST_DB and task.data["status"] == "DONE"
        assert mats[TEST].tags["schema/commit"] == sha and "duration_s" in md
        checks = {(c.asset_key, c.check_name): c.passed for c in result.get_asset_check_evaluations()}
        assert checks[(REVIEW, "no_error_findings")] and checks[(TEST, "converged")]
        assert "Bytebase releases:check" in mats[REVIEW].metadata["environments_reviewed"].value
        # nothing exists in Bytebase for prod before the approved release/prod run
        assert fake.stage_environments() == ["environments/test"]
        assert not [t for t in fake.tasks() if t.target == PROD_DB]

        prod = to_prod(defs, instance, sha)
        assert prod.success, failure_text(prod)
        assert fake.stage_environments() == ["environments/test", "environments/prod"]
        prod_md = prod.get_asset_materialization_events()[0].materialization.metadata
        assert prod_md["approved_by"].value == "alice" and prod_md["database"].value == PROD_DB

        drift = defs.resolve_job_def("drift_checks").execute_in_process(instance=instance)
        assert all(ev.passed for ev in drift.get_asset_check_evaluations())
        fake.set_live_schema(PROD_DB, STATE_SQL + "CREATE TABLE public.hotfix (id bigint);\n")
        drift = defs.resolve_job_def("drift_checks").execute_in_process(instance=instance)
        evs = {ev.asset_key: ev for ev in drift.get_asset_check_evaluations()}
        assert evs[TEST].passed and not evs[PROD].passed
        assert evs[PROD].severity == dg.AssetCheckSeverity.ERROR
        assert "hotfix" in evs[PROD].metadata["correction_sql"].value

        # Bytebase's advices land in the same report and blocking check: nothing is released
        bad = temp_repo.commit(
            {"schemas/02_more.sql": "CREATE TABLE unqualified (\n    id bigint PRIMARY KEY\n);\n"}
        )
        blocked = to_test(defs, instance)
        assert not blocked.success
        review = next(
            m.materialization for m in blocked.get_asset_materialization_events() if m.asset_key == REVIEW
        )
        report = review.metadata["report"].value
        assert "bytebase.242" in report and review.tags["schema/commit"] == bad
        # repository-relative location, like the native findings (not `schemas/schemas/...`)
        assert "`schemas/02_more.sql:1:1`" in report and "schemas/schemas" not in report
        assert (
            instance.get_latest_materialization_event(TEST).asset_materialization.tags["schema/commit"] == sha
        )
        assert fake.secret not in all_event_text(instance)
        assert not any(token in all_event_text(instance) for token in fake.tokens)


def test_failing_task_fails_the_asset_with_the_task_run_detail(
    fake: FakeBytebase,
    temp_repo: TempRepo,  # noqa: F811
    tmp_path: Path,
) -> None:
    temp_repo.commit({"schemas/01_tables.sql": STATE_SQL})
    fake.task_outcome = "FAILED"
    defs = bytebase_defs(temp_repo, tmp_path)
    with dg.instance_for_test() as instance:
        result = to_test(defs, instance)
        assert not result.success
        text = failure_text(result)
        assert 'relation "employee" already exists' in text and TEST_DB in text
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        md = failure.step_failure_data.user_failure_data.metadata
        assert md["tasks"].records[0].data["status"] == "FAILED"
        assert instance.get_latest_materialization_event(TEST) is None
        assert fake.secret not in all_event_text(instance)


def test_terminating_the_run_cancels_bytebase_task_runs(
    fake: FakeBytebase,
    temp_repo: TempRepo,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    """Dagster delivers run termination as an interrupt in the step (here: SIGINT to this process)."""
    monkeypatch.setenv("BYTEBASE_ROLLOUT_TIMEOUT", "30")
    temp_repo.commit({"schemas/01_tables.sql": STATE_SQL})
    fake.polls_per_task = 10_000  # the task keeps running until it is cancelled
    defs = bytebase_defs(temp_repo, tmp_path)

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(r.status == "RUNNING" for r in list(fake.task_runs.values())):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=interrupt_when_running, daemon=True)
    watcher.start()
    with dg.instance_for_test() as instance:
        result = to_test(defs, instance)
    watcher.join(timeout=5)
    assert not result.success
    runs = list(fake.task_runs.values())
    assert runs and all(r.status == "CANCELED" for r in runs)
    assert "RolloutService/BatchCancelTaskRuns" in " ".join(str(p) for p in fake.procedures())


def test_custom_rules_file_of_the_commit_is_sent_and_ai_advices_block(
    fake: FakeBytebase,
    temp_repo: TempRepo,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    rules = "# SQL Review Standards\n- Use text, never varchar.\n"
    monkeypatch.setenv("BYTEBASE_CUSTOM_RULES_FILE", ".bytebase/sql-review.md")
    sha = temp_repo.commit(
        {
            ".bytebase/sql-review.md": rules,
            "schemas/01_tables.sql": "CREATE TABLE public.employee (\n    id bigint PRIMARY KEY,\n"
            "    name varchar(10) NOT NULL\n);\n",
        }
    )
    defs = bytebase_defs(temp_repo, tmp_path)
    with dg.instance_for_test() as instance:
        result = to_test(defs, instance)
    assert not result.success
    checks = [r for r in fake.requests if r.procedure == "ReleaseService/CheckRelease"]
    assert checks and all(r.body["customRules"] == rules for r in checks)
    assert [f["path"] for f in checks[0].body["release"]["files"]] == ["schemas/01_tables.sql"]
    review = next(
        m.materialization for m in result.get_asset_materialization_events() if m.asset_key == REVIEW
    )
    report = review.metadata["report"].value
    assert "`schemas/01_tables.sql:3:10`" in report and "Use text instead of varchar" in report
    assert review.tags["schema/commit"] == sha
    assert fake.releases == {}  # the blocking check stopped the release before Bytebase got any work


def test_rejected_approval_creates_no_prod_work_in_bytebase(
    fake: FakeBytebase,
    temp_repo: TempRepo,  # noqa: F811
    tmp_path: Path,
) -> None:
    fake.auto_run_envs = {"test", "prod"}  # a prod stage would run at once if it were ever created
    sha = temp_repo.commit({"schemas/01_tables.sql": STATE_SQL})
    defs = bytebase_defs(temp_repo, tmp_path)
    with dg.instance_for_test() as instance:
        premature = to_prod(defs, instance, sha)  # test has not received the commit yet
        assert not premature.success
        assert fake.releases == {} and fake.plans == {}
        assert to_test(defs, instance).success
        wrong = to_prod(defs, instance, "f" * 40)  # approval for another commit
        assert not wrong.success
    assert fake.stage_environments() == ["environments/test"]
    assert not [t for t in fake.tasks() if t.target == PROD_DB] and fake.live[PROD_DB] == ""


def test_state_file_pattern_that_selects_other_files_fails_clearly(
    fake: FakeBytebase,
    temp_repo: TempRepo,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    temp_repo.commit({"schemas/01_tables.sql": STATE_SQL, "schemas/extra/02_more.sql": "CREATE TABLE public.t (id int);\n"})
    monkeypatch.setenv("STATE_FILE_PATTERN", "schemas/*.sql")  # `state: schemas` also takes schemas/extra/
    with dg.instance_for_test() as instance:
        result = to_test(bytebase_defs(temp_repo, tmp_path), instance)
    assert not result.success
    text = failure_text(result)
    assert "STATE_FILE_PATTERN='schemas/*.sql' selects other files than state: 'schemas'" in text, text
    assert fake.releases == {}

    monkeypatch.setenv("STATE_FILE_PATTERN", "schemas/**/*.sql")  # the same files: accepted
    with dg.instance_for_test() as instance:
        assert to_test(bytebase_defs(temp_repo, tmp_path), instance).success


def test_missing_custom_rules_file_fails_the_review_clearly(
    fake: FakeBytebase,
    temp_repo: TempRepo,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    monkeypatch.setenv("BYTEBASE_CUSTOM_RULES_FILE", ".bytebase/sql-review.md")
    sha = temp_repo.commit({"schemas/01_tables.sql": STATE_SQL})
    with dg.instance_for_test() as instance:
        result = to_test(bytebase_defs(temp_repo, tmp_path), instance)
    assert not result.success
    text = failure_text(result)
    assert f"BYTEBASE_CUSTOM_RULES_FILE='.bytebase/sql-review.md' does not exist at commit {sha[:12]}" in text, text
    assert not [r for r in fake.requests if r.procedure == "ReleaseService/CheckRelease"]
