"""BytebaseBackend end to end against the local fake Bytebase (real HTTP, no mocks).

The fake implements Bytebase's documented API; these tests do not talk to a live Bytebase.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from schema_pipeline.backends.base import Backend, ReleaseCancelled, StateFile, StateFiles
from schema_pipeline.backends.bytebase import (
    BytebaseBackend,
    BytebaseClient,
    BytebaseConfigError,
    BytebaseError,
    BytebaseSettings,
    BytebaseTaskFailed,
    BytebaseVersionError,
    advice_to_finding,
)
from schema_pipeline.state.paths import state_root
from schema_pipeline_tests.fake_bytebase import FakeBytebase

TEST_DB = "instances/test-sample-instance/databases/hr_test"
PROD_DB = "instances/prod-sample-instance/databases/hr_prod"
SHA = "0123456789abcdef0123456789abcdef01234567"

STATE = StateFiles(
    pattern="schemas/*.sql",
    files=(
        StateFile(
            "schemas/10_tables.sql",
            "CREATE TABLE public.employee (\n    id integer NOT NULL,\n    name text NOT NULL\n);\n",
        ),
        StateFile("schemas/20_views.sql", "CREATE VIEW public.names AS SELECT name FROM public.employee;\n"),
    ),
)
BAD_STATE = StateFiles(
    pattern="schemas/*.sql",
    files=(
        StateFile(
            "schemas/a.sql", "-- header\nCREATE TABLE employee (\n    id integer,\n    name varchar(10)\n);\n"
        ),
        StateFile("schemas/b.sql", "CREATE OR REPLACE VIEW public.v AS SELECT 1;\nDROP TABLE public.old;\n"),
    ),
)


@pytest.fixture
def fake() -> Iterator[FakeBytebase]:
    with FakeBytebase() as server:
        yield server


@pytest.fixture(params=["connect", "rest"])
def protocol(request) -> str:
    return request.param


def make_backend(fake: FakeBytebase, protocol: str = "connect", **kw) -> BytebaseBackend:
    base = dict(
        url=fake.url,
        project="hr",
        targets={"test": (TEST_DB,), "prod": (PROD_DB,)},
        service_account=fake.account,
        service_account_secret=fake.secret,
        protocol=protocol,
        timeout=5.0,
        backoff_base=0.01,
        backoff_max=0.02,
        poll_interval=0.005,
        poll_max_interval=0.02,
        rollout_timeout=10.0,
    )
    base.update(kw)
    settings = BytebaseSettings(**base)
    return BytebaseBackend(settings, BytebaseClient(settings, sleep=lambda _s: None))


def test_backend_satisfies_the_protocol(fake):
    assert isinstance(make_backend(fake), Backend)


# -- review -------------------------------------------------------------------------------------


def test_review_maps_advices_to_findings_with_file_and_line(fake, protocol):
    backend = make_backend(fake, protocol)
    findings = backend.review(BAD_STATE, custom_rules="Use text, not varchar.")
    by_rule = {(f.rule_id, f.file, f.line): f for f in findings}
    # like every Finding, files are relative to the state root (the reports add `schemas/`)
    schema = by_rule[("bytebase.242", "a.sql", 2)]
    assert schema.severity == "ERROR" and schema.source == "rule" and schema.column == 1
    assert schema.title == "sdl.require-schema-name" and "employee" in schema.message
    assert schema.location() == "a.sql:2:1"
    ai = by_rule[("bytebase.0", "a.sql", 4)]
    assert ai.source == "ai" and ai.severity == "ERROR" and ai.title == "prefer-text" and ai.column == 10
    warn = by_rule[("bytebase.256", "b.sql", 1)]
    assert warn.severity == "WARNING" and warn.column is None
    assert by_rule[("bytebase.239", "b.sql", 2)].severity == "ERROR"
    # the same advice for both environments' databases is reported once, for no single environment
    assert len(findings) == 4
    assert all(f.environment is None for f in findings)
    check = next(r for r in fake.requests if r.procedure == "ReleaseService/CheckRelease")
    release = check.body["release"]
    assert release["type"] == "DECLARATIVE"
    assert [f["path"] for f in release["files"]] == ["schemas/a.sql", "schemas/b.sql"]  # one file per path
    assert len({f["version"] for f in release["files"]}) == 1
    assert check.body["customRules"] == "Use text, not varchar."
    assert sorted(check.body["targets"]) == sorted([TEST_DB, PROD_DB])


def test_review_for_one_environment_tags_findings(fake):
    findings = make_backend(fake).review(BAD_STATE, environment="prod")
    assert findings and all(f.environment == "prod" for f in findings)
    assert not any(f.source == "ai" for f in findings)  # no custom rules, no AI advice
    check = next(r for r in fake.requests if r.procedure == "ReleaseService/CheckRelease")
    assert check.body["targets"] == [PROD_DB] and "customRules" not in check.body


def test_review_clean_state_has_no_findings(fake):
    assert make_backend(fake).review(STATE) == []


@pytest.mark.parametrize(
    ("pattern", "root"),
    [
        ("schemas", "schemas"),
        ("schemas/", "schemas"),
        ("schemas/*.sql", "schemas"),
        ("db/**/*.sql", "db"),
        ("db/schema.sql", "db"),
        ("*.sql", ""),
        ("schema.sql", ""),
    ],
)
def test_state_root(pattern, root):
    assert state_root(pattern) == root


def test_review_paths_outside_the_state_root_are_kept(fake):
    state = StateFiles(pattern="*.sql", files=(StateFile("a.sql", "DROP TABLE public.x;\n"),))
    (finding,) = make_backend(fake).review(state, environment="test")
    assert finding.file == "a.sql" and finding.rule_id == "bytebase.239"


def test_advice_mapping_edge_cases():
    assert advice_to_finding({"status": "SUCCESS", "code": 0, "title": "OK"}, "f.sql") is None
    f = advice_to_finding({"title": "odd", "startPosition": {"line": 0}}, "f.sql")
    assert f is not None and f.severity == "INFO" and f.line is None and f.rule_id == "bytebase.0"
    assert f.to_dict()["file"] == "f.sql" and f.to_dict()["severity"] == "INFO"


# -- release ------------------------------------------------------------------------------------


def test_full_release_test_then_prod(fake, protocol):
    backend = make_backend(fake, protocol)
    messages: list[str] = []
    test = backend.release("test", STATE, SHA, progress=messages.append)
    assert test.status == "SUCCEEDED" and test.environment == "test" and test.backend == "bytebase"
    assert [t.target for t in test.tasks] == [TEST_DB]
    assert test.tasks[0].status == "DONE" and "Applied release" in test.tasks[0].detail
    assert test.tasks[0].link and test.tasks[0].link.startswith(fake.url + "/projects/hr/plans/")
    assert [s.name for s in test.steps] == [
        "create release",
        "create plan",
        "create rollout",
        "run stage environments/test",
    ]
    assert all(s.status == "SUCCEEDED" for s in test.steps)
    assert set(test.links) == {"release", "plan", "rollout"}
    assert any("done" in m for m in messages)
    # nothing exists for prod yet
    assert fake.stage_environments() == ["environments/test"]
    assert fake.live[TEST_DB] == STATE.concatenated() and fake.live[PROD_DB] == ""

    prod = backend.release("prod", STATE, SHA)
    assert prod.status == "SUCCEEDED" and [t.target for t in prod.tasks] == [PROD_DB]
    assert fake.live[PROD_DB] == STATE.concatenated()
    assert [t.rsplit("/stages/", 1)[1].split("/")[0] for t in fake.started_tasks] == ["test", "prod"]

    # wire shapes: one concatenated file named after the pattern, declarative, per-env plan, explicit target
    creates = [r for r in fake.requests if r.procedure == "ReleaseService/CreateRelease"]
    release = creates[0].body["release"]
    assert release["type"] == "DECLARATIVE" and len(release["files"]) == 1
    assert release["files"][0]["path"] == "schemas/*.sql"
    plans = [r.body["plan"] for r in fake.requests if r.procedure == "PlanService/CreatePlan"]
    assert [p["specs"][0]["changeDatabaseConfig"]["targets"] for p in plans] == [[TEST_DB], [PROD_DB]]
    assert SHA[:12] in plans[0]["title"] and SHA in plans[0]["description"]
    rollouts = [r.body for r in fake.requests if r.procedure == "RolloutService/CreateRollout"]
    assert [r["target"] for r in rollouts] == ["environments/test", "environments/prod"]
    assert fake.logins == 1


def test_prod_is_never_started_unless_asked_even_with_an_automatic_policy(fake, protocol):
    fake.auto_run_envs = {"test", "prod"}  # Bytebase would run prod immediately if a prod stage existed
    backend = make_backend(fake, protocol)
    outcome = backend.release("test", STATE, SHA)
    assert outcome.status == "SUCCEEDED"
    assert all("/stages/prod/" not in t for t in fake.started_tasks)
    assert "environments/prod" not in fake.stage_environments()
    assert all(t.target != PROD_DB for t in fake.tasks())
    assert fake.live[PROD_DB] == ""
    # test tasks were started by the server's automatic policy; the backend did not start them twice
    assert len(fake.started_tasks) == 1


def test_misconfigured_targets_never_run_another_environment(fake):
    # our "test" points at a database that Bytebase has in its prod environment
    backend = make_backend(fake, targets={"test": (PROD_DB,), "prod": (TEST_DB,)})
    with pytest.raises(BytebaseError, match="no tasks for environments/test") as err:
        backend.release("test", STATE, SHA)
    assert "BYTEBASE_ENVIRONMENTS" in str(err.value)
    assert fake.started_tasks == [] and fake.tasks() == []


def test_task_failed_reports_the_task_run_detail(fake, protocol):
    fake.task_outcome = "FAILED"
    backend = make_backend(fake, protocol)
    with pytest.raises(BytebaseTaskFailed) as err:
        backend.release("test", STATE, SHA)
    msg = str(err.value)
    assert TEST_DB in msg and "FAILED" in msg and 'relation "employee" already exists' in msg
    assert "view on Bytebase" in msg and fake.url in msg
    assert err.value.tasks[0][1] == "FAILED"
    assert fake.secret not in msg and not any(t in msg for t in fake.tokens)


def test_task_canceled_is_a_failure(fake):
    fake.task_outcome = "CANCELED"
    with pytest.raises(BytebaseTaskFailed, match="CANCELED: task run was canceled"):
        make_backend(fake).release("test", STATE, SHA)


def test_slow_tasks_are_polled_until_done(fake, protocol):
    fake.polls_per_task = 6
    messages: list[str] = []
    outcome = make_backend(fake, protocol).release("test", STATE, SHA, progress=messages.append)
    assert outcome.status == "SUCCEEDED"
    polls = [r for r in fake.requests if r.procedure == "RolloutService/GetRollout"]
    assert len(polls) >= 7
    assert any("RUNNING 1" in m for m in messages)
    runs = [r for r in fake.requests if r.procedure == "RolloutService/BatchRunTasks"]
    assert len(runs) == 1  # NOT_STARTED tasks are run once, then only polled
    assert outcome.tasks[0].duration_s is not None


def test_skipped_tasks_count_as_done_and_are_never_run():
    databases = {
        TEST_DB: "test",
        "instances/test-sample-instance/databases/hr_test_eu": "test",
        PROD_DB: "prod",
    }
    with FakeBytebase(databases=databases) as fake:
        eu = "instances/test-sample-instance/databases/hr_test_eu"
        fake.skip_dbs = {eu}
        backend = make_backend(fake, targets={"test": (TEST_DB, eu), "prod": (PROD_DB,)})
        outcome = backend.release("test", STATE, SHA)
        assert outcome.status == "SUCCEEDED"
        by_db = {t.target: t for t in outcome.tasks}
        assert by_db[TEST_DB].status == "DONE" and by_db[eu].status == "SKIPPED"
        assert "skipped by a user" in by_db[eu].detail
        ran = [
            n for r in fake.requests if r.procedure == "RolloutService/BatchRunTasks" for n in r.body["tasks"]
        ]
        assert ran and all(fake_task.target == TEST_DB for fake_task in fake.tasks() if fake_task.name in ran)
        assert fake.live[TEST_DB] == STATE.concatenated() and fake.live[eu] == ""


def test_all_tasks_failed_or_canceled_per_database_are_all_reported():
    databases = {TEST_DB: "test", "instances/t2/databases/hr_test_2": "test", PROD_DB: "prod"}
    with FakeBytebase(databases=databases) as fake:
        other = "instances/t2/databases/hr_test_2"
        fake.task_outcome_by_db = {other: "CANCELED"}
        fake.task_outcome = "FAILED"
        backend = make_backend(fake, targets={"test": (TEST_DB, other), "prod": (PROD_DB,)})
        with pytest.raises(BytebaseTaskFailed) as err:
            backend.release("test", STATE, SHA)
    msg = str(err.value)
    assert f"{TEST_DB} FAILED: failed to execute statement" in msg
    assert f"{other} CANCELED: task run was canceled" in msg
    assert sorted(status for _name, status, _detail in err.value.tasks) == ["CANCELED", "FAILED"]


def test_rollout_timeout(fake):
    fake.polls_per_task = 10_000
    with pytest.raises(BytebaseError, match="did not finish within"):
        make_backend(fake, rollout_timeout=0.2).release("test", STATE, SHA)


def test_cancellation_cancels_running_task_runs(fake, protocol):
    fake.polls_per_task = 10_000
    cancel = threading.Event()

    def progress(message: str) -> None:
        if "RUNNING" in message:
            cancel.set()

    with pytest.raises(ReleaseCancelled):
        make_backend(fake, protocol).release("test", STATE, SHA, progress=progress, cancel_event=cancel)
    cancels = [r for r in fake.requests if r.procedure == "RolloutService/BatchCancelTaskRuns"]
    assert len(cancels) == 1
    assert cancels[0].body["taskRuns"] and cancels[0].body["taskRuns"][0].startswith(fake.started_tasks[0])
    assert all(r.status == "CANCELED" for r in fake.task_runs.values())
    assert [t.status for t in fake.tasks()] == ["CANCELED"]


def test_cancel_before_start_creates_nothing(fake):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ReleaseCancelled):
        make_backend(fake).release("test", STATE, SHA, cancel_event=cancel)
    assert fake.releases == {}


def test_transient_errors_during_release_are_retried(fake):
    backend = make_backend(fake)
    backend.client.check_version()
    fake.fail_next = [503]
    fake.expire_token_once = True
    assert backend.release("test", STATE, SHA).status == "SUCCEEDED"
    assert fake.logins == 2


def test_unsupported_server_is_refused_before_any_work():
    with FakeBytebase(version="3.13.0") as fake:
        with pytest.raises(BytebaseVersionError, match="3.13.0"):
            make_backend(fake).release("test", STATE, SHA)
        assert fake.releases == {} and fake.plans == {}


def test_unknown_environment(fake):
    with pytest.raises(BytebaseConfigError, match="no databases for environment 'staging'"):
        make_backend(fake).release("staging", STATE, SHA)


# -- drift --------------------------------------------------------------------------------------


def test_drift_without_and_with_differences(fake, protocol):
    backend = make_backend(fake, protocol)
    backend.release("prod", STATE, SHA)
    clean = backend.drift("prod", STATE)
    assert clean.has_drift is False and clean.diff == "" and clean.per_target == {PROD_DB: ""}

    fake.set_live_schema(PROD_DB, STATE.concatenated() + "\nCREATE TABLE public.hotfix (id int);\n")
    drift = backend.drift("prod", STATE)
    assert drift.has_drift is True
    assert drift.diff.startswith(f"-- {PROD_DB}\n")
    assert "public.hotfix" in drift.diff
    procs = [p for p in fake.procedures() if p and p.startswith("DatabaseService/")]
    assert procs[-2:] == ["DatabaseService/SyncDatabase", "DatabaseService/DiffSchema"]  # sync first
    diff_req = [r for r in fake.requests if r.procedure == "DatabaseService/DiffSchema"][-1]
    assert diff_req.body["schema"] == STATE.concatenated()


def test_drift_on_a_never_released_database(fake):
    drift = make_backend(fake).drift("test", STATE)
    assert drift.has_drift and "CREATE TABLE public.employee" in drift.diff


def test_interrupt_while_running_cancels_task_runs(fake):
    """Dagster terminates a run by raising an interrupt in the op; Bytebase's work is cancelled."""
    fake.polls_per_task = 10_000

    def progress(message: str) -> None:
        if "RUNNING" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_backend(fake).release("test", STATE, SHA, progress=progress)
    assert [p for p in fake.procedures() if p == "RolloutService/BatchCancelTaskRuns"]
    assert all(r.status == "CANCELED" for r in fake.task_runs.values())


def test_failure_carries_the_partial_outcome(fake):
    fake.task_outcome = "FAILED"
    with pytest.raises(BytebaseTaskFailed) as err:
        make_backend(fake).release("test", STATE, SHA)
    outcome = err.value.outcome
    assert outcome.status == "FAILED" and set(outcome.links) == {"release", "plan", "rollout"}
    assert outcome.steps[-1].name == "run stage environments/test" and outcome.steps[-1].status == "FAILED"
    assert outcome.tasks[0].status == "FAILED" and "already exists" in outcome.tasks[0].detail


def test_backend_from_fake_env_vars(fake, tmp_path, monkeypatch):
    (tmp_path / "schemas").mkdir()
    for f in STATE.files:
        (tmp_path / f.path).write_text(f.content)
    for key, value in fake.env(BYTEBASE_PROTOCOL="rest", BYTEBASE_POLL_INTERVAL="0.01").items():
        monkeypatch.setenv(key, value)
    backend = BytebaseBackend.from_env(root=str(tmp_path))
    state = backend.load_state()
    assert state == STATE
    assert backend.release("test", state, SHA).status == "SUCCEEDED"
    assert not backend.drift("test", state).has_drift
    backend.close()


def test_state_file_pattern_selects_the_files_sent(fake, tmp_path, monkeypatch):
    (tmp_path / "db" / "hr").mkdir(parents=True)
    (tmp_path / "db" / "hr" / "10_tables.sql").write_text(STATE.files[0].content)
    (tmp_path / "db" / "20_views.sql").write_text(STATE.files[1].content)
    (tmp_path / "db" / "notes.md").write_text("not SQL")
    for key, value in fake.env(STATE_FILE_PATTERN="db/**/*.sql", BYTEBASE_POLL_INTERVAL="0.01").items():
        monkeypatch.setenv(key, value)
    backend = BytebaseBackend.from_env(root=str(tmp_path))
    state = backend.load_state()
    assert [f.path for f in state.files] == ["db/20_views.sql", "db/hr/10_tables.sql"]
    backend.review(state)
    check = next(r for r in fake.requests if r.procedure == "ReleaseService/CheckRelease")
    assert [f["path"] for f in check.body["release"]["files"]] == ["db/20_views.sql", "db/hr/10_tables.sql"]
    backend.release("test", state, SHA)
    create = next(r for r in fake.requests if r.procedure == "ReleaseService/CreateRelease")
    assert create.body["release"]["files"][0]["path"] == "db/**/*.sql"
    backend.close()

    monkeypatch.delenv("STATE_FILE_PATTERN")
    monkeypatch.setenv("FILE_PATTERN", "db/*.sql")  # the example repository's variable name
    assert [f.path for f in BytebaseBackend.from_env(root=str(tmp_path)).load_state().files] == [
        "db/20_views.sql"
    ]
    monkeypatch.setenv("FILE_PATTERN", "nothing/*.sql")
    with pytest.raises(BytebaseConfigError, match="STATE_FILE_PATTERN='nothing/\\*.sql' matches no file"):
        BytebaseBackend.from_env(root=str(tmp_path)).load_state()
