"""Two applies on one target (issue 14, item 5), against the real server.

They serialise on the target's advisory lock and never deadlock: the second waits without a
snapshot or an open transaction (the first's CREATE INDEX CONCURRENTLY waits for every older
snapshot, so a snapshot held while waiting is a deadlock), re-plans or refuses once it has the lock,
gives up after a bounded wait naming the other session, and leaves nothing half-applied.

Timeouts here are generous upper bounds that only keep a broken build from hanging.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from schema_pipeline import engine
from schema_pipeline.apply.executor import (
    ADVISORY_LOCK_KEY,
    APPLY_APPLICATION_NAME,
    ApplyOptions,
    target_lock,
)
from schema_pipeline.errors import ApplyError, ConfigError
from schema_pipeline.plan.artifact import PlanOutdated
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import (
    CLI,
    Collect,
    apply_backend,
    relations,
    scalar,
    wait_for,
    write_state,
)

DEADLOCK = "40P01"
WAITING = "another apply is running"


class _Run(threading.Thread):
    """Run `fn(progress)` in a thread; keeps its result or exception and its progress messages."""

    def __init__(self, fn: Callable[[Collect], object]):
        super().__init__(daemon=True)
        self.fn, self.progress = fn, Collect()
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn(self.progress)
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            self.error = exc

    def outcome(self, timeout: float = 30.0) -> object:
        self.join(timeout)
        assert not self.is_alive(), f"the apply did not finish within {timeout}s:\n{self.progress.text()}"
        if self.error is not None:
            raise self.error
        return self.result


def _hold_lock(url: str, application_name: str = "other_apply") -> psycopg.Connection:
    """Stand-in for another apply: a session holding the target's advisory lock."""
    conn = psycopg.connect(url, autocommit=True, application_name=application_name)
    conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    return conn


def _lock_holder(url: str) -> int | None:
    """pid of the session holding the target's advisory lock, if any."""
    return scalar(url, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = %s::oid "
                       "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                  (ADVISORY_LOCK_KEY & 0xFFFFFFFF,))  # type: ignore[return-value]


def _apply_sessions(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database() "
            "ORDER BY backend_start", (APPLY_APPLICATION_NAME,))]


def _state(tmp_path: Path, name: str, sql: str):
    return load_state(str(write_state(tmp_path / name, {"s.sql": sql})))


def _assert_no_deadlock(*errors: object) -> None:
    for err in errors:
        if isinstance(err, BaseException):
            cause = err
            while cause is not None:
                assert getattr(cause, "sqlstate", None) != DEADLOCK, repr(err)
                cause = cause.__cause__ or cause.__context__
            assert "deadlock" not in str(err).lower(), str(err)


def test_the_waiting_apply_holds_no_snapshot_and_no_transaction(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE t (id int)")
    state = _state(tmp_path, "s", "CREATE TABLE public.t (id int);\nCREATE TABLE public.a (id int);\n")
    holder = _hold_lock(url, "nightly_job")
    try:
        run = _Run(lambda progress: engine.apply(url, state, allow_hazards="all", rehearse=False,
                                                 progress=progress))
        run.start()
        wait_for(lambda: WAITING in run.progress.text(), 15)
        assert f"pid {holder.info.backend_pid} (user " in run.progress.text()
        assert "application 'nightly_job'" in run.progress.text()
        [pid] = _apply_sessions(url)
        samples = []
        with psycopg.connect(url, autocommit=True) as mon:
            for _ in range(25):
                samples.append(mon.execute(
                    "SELECT state, backend_xmin IS NOT NULL, backend_xid IS NOT NULL, xact_start IS NOT NULL, "
                    "coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone())
                time.sleep(0.02)
        assert "public.a" not in relations(url)  # nothing done while waiting
    finally:
        holder.close()
    result = run.outcome()
    # Blocking in pg_advisory_lock() shows ('active', xmin set, ..., 'advisory') in every sample. Polling
    # leaves the session idle (no transaction, no snapshot) except during the instant of a poll, which a
    # sample taken every 20 ms catches (a fraction of a millisecond every 250 ms) hardly ever.
    assert not [s for s in samples if s[0].startswith("idle in transaction")], samples
    assert not [s for s in samples if s[4] == "advisory"], samples  # never blocked inside the server
    assert not [s for s in samples if s[2]], samples  # never an xid
    with_snapshot = [s for s in samples if s[1] or s[3]]
    assert len(with_snapshot) <= 2, samples
    assert result.converged and "public.a" in relations(url)
    assert result.lock_wait_s > 0.3


def test_a_concurrent_index_build_does_not_deadlock_with_the_waiting_apply(make_db, tmp_path) -> None:
    """The first apply's CREATE INDEX CONCURRENTLY waits for every older snapshot: with a snapshot held
    by the waiting apply, each waits for the other (40P01 after deadlock_timeout)."""
    url = make_db("CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
    state = _state(tmp_path, "s", "CREATE TABLE public.t (id int, v int);\nCREATE TABLE public.b (id int);\n")
    holder = _hold_lock(url)  # the first apply, at the point where it runs its steps
    try:
        run = _Run(lambda progress: engine.apply(url, state, allow_hazards="all", rehearse=False,
                                                 progress=progress))
        run.start()
        wait_for(lambda: WAITING in run.progress.text(), 15)
        holder.execute("SET statement_timeout = '15s'")
        started = time.monotonic()
        holder.execute("CREATE INDEX CONCURRENTLY t_v ON t (v)")  # raised DeadlockDetected before the fix
        assert time.monotonic() - started < 5
        assert run.is_alive() and run.error is None  # still waiting, not a deadlock victim
    finally:
        holder.close()
    result = run.outcome()
    _assert_no_deadlock(run.error)
    # the second apply re-planned against what the first left: the index it does not declare is dropped
    assert result.converged and any(s.object_name == "public.t_v" for s in result.plan.steps)
    assert engine.plan(url, state).plan.is_empty


def test_two_applies_of_different_states_serialise_and_the_second_replans(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
    first = _state(tmp_path, "first", "CREATE TABLE public.t (id int, v int);\n"
                                      "CREATE INDEX t_v ON public.t (v);\nCREATE TABLE public.a (id int);\n")
    second = _state(tmp_path, "second", "CREATE TABLE public.t (id int, v int);\nCREATE TABLE public.b (id int);\n")
    one = _Run(lambda progress: engine.apply(url, first, allow_hazards="all", progress=progress))
    two = _Run(lambda progress: engine.apply(url, second, allow_hazards="all", progress=progress))
    one.start()
    first_pid = wait_for(lambda: _lock_holder(url), 15)
    two.start()  # the first holds the lock through its plan, rehearsal and CREATE INDEX CONCURRENTLY
    r1, r2 = one.outcome(), two.outcome()
    _assert_no_deadlock(one.error, two.error)
    assert f"{WAITING} on" in two.progress.text() and f"pid {first_pid} (" in two.progress.text()
    assert r1.converged and r2.converged and r2.lock_wait_s > 0
    assert {s.object_name for s in r1.plan.steps} == {"public.t_v", "public.a"}
    # the second planned after the first had finished: it undoes the first's objects, nothing else
    assert {s.object_name for s in r2.plan.steps} == {"public.t_v", "public.a", "public.b"}
    assert engine.plan(url, second).plan.is_empty
    assert {s.object_name for s in engine.plan(url, first).plan.steps} == {"public.t_v", "public.a", "public.b"}
    assert _lock_holder(url) is None


def test_two_cli_applies_on_one_target(make_db, tmp_path) -> None:
    """Two `schema-pipeline apply` processes: the second waits for the first (held up by a blocker),
    then migrates the target from what the first left to its own state."""
    url = make_db("CREATE TABLE t (id int)")
    first = write_state(tmp_path / "first", {"s.sql": "CREATE TABLE public.t (id int, x int);\n"
                                                      "CREATE TABLE public.a (id int);\n"})
    second = write_state(tmp_path / "second", {"s.sql": "CREATE TABLE public.t (id int, y int);\n"})
    blocker = psycopg.connect(url, application_name="report")
    blocker.execute("SELECT count(*) FROM t")  # ACCESS SHARE in an open transaction: the first's ALTER waits

    procs: list[tuple[subprocess.Popen, Path]] = []

    def cli(state: Path) -> subprocess.Popen:
        err = tmp_path / f"stderr{len(procs)}.txt"
        with err.open("w") as err_file:
            proc = subprocess.Popen([CLI, "apply", "--database-url", url, "--state", str(state), "--allow-hazards",
                                     "all", "--yes", "--lock-timeout", "30s", "--no-rehearsal"],
                                    stdout=subprocess.DEVNULL, stderr=err_file, text=True)
        procs.append((proc, err))
        return proc

    def wait_while_running(proc: subprocess.Popen, until: Callable[[], object]) -> object:
        """Wait for `until()`; fail with the CLI's output if it exits (or takes too long) first."""
        def check() -> object:
            if proc.poll() is not None:
                pytest.fail(f"apply exited early ({proc.returncode}):\n{procs[-1][1].read_text()}")
            return until()
        try:
            return wait_for(check, 20)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the CLI's output so far:\n{procs[-1][1].read_text()}") from None

    try:
        try:
            first_pid = wait_while_running(cli(first), lambda: apply_backend(url, waiting_on_lock=True))
            wait_while_running(cli(second), lambda: WAITING in procs[1][1].read_text())
            assert "x" not in _columns(url)  # the first is still held up
        finally:
            blocker.rollback()
            blocker.close()
        for proc, _ in procs:
            proc.wait(30)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
    err1, err2 = (err.read_text() for _, err in procs)
    assert procs[0][0].returncode == 0, err1
    assert procs[1][0].returncode == 0, err2
    assert "deadlock" not in (err1 + err2).lower()
    assert WAITING in err2 and f"pid {first_pid} (" in err2, err2
    assert WAITING not in err1
    assert engine.plan(url, load_state(str(second))).plan.is_empty
    assert _columns(url) == ["id", "y"] and "public.a" not in relations(url)


def _columns(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'public.t'::regclass "
                                           "AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]


def test_a_saved_plan_is_refused_when_the_target_changed_while_waiting(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE t (id int)")
    state = _state(tmp_path, "s", "CREATE TABLE public.t (id int);\nCREATE TABLE public.a (id int);\n")
    planned = engine.plan(url, state)
    holder = _hold_lock(url)
    holder_pid = holder.info.backend_pid
    try:
        run = _Run(lambda progress: engine.apply_plan(url, planned.plan, desired=planned.desired, state=state,
                                                      allow_hazards="all", rehearse=False, progress=progress))
        run.start()
        wait_for(lambda: WAITING in run.progress.text(), 15)
        holder.execute("CREATE TABLE other (id int)")  # what the first apply changed
    finally:
        holder.close()
    with pytest.raises(PlanOutdated) as info:
        run.outcome()
    assert f"the target changed while waiting for another apply (pid {holder_pid}); " in str(info.value)
    assert "re-run" in str(info.value)
    assert relations(url) == {"public.t", "public.other"}  # nothing of the plan was applied


def test_the_wait_is_bounded_and_names_the_other_session(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE t (id int)")
    state = _state(tmp_path, "s", "CREATE TABLE public.t (id int);\nCREATE TABLE public.a (id int);\n")
    holder = _hold_lock(url, "nightly_batch")
    pid = holder.info.backend_pid
    try:
        progress = Collect()
        started = time.monotonic()
        with pytest.raises(ApplyError) as info:
            engine.apply(url, state, allow_hazards="all", rehearse=False, options=ApplyOptions(apply_wait_s=0.6),
                         progress=progress)
        took = time.monotonic() - started
        message = str(info.value)
        assert 0.6 <= took < 5, took
        assert f"pid {pid} (user " in message and "application 'nightly_batch'" in message, message
        assert "running for " in message and "gave up after waiting" in message and "Nothing was applied" in message
        assert WAITING in progress.text() and "waiting up to 0.6s" in progress.text()

        started = time.monotonic()
        with pytest.raises(ApplyError) as info:  # 0: fail fast
            engine.apply(url, state, allow_hazards="all", rehearse=False, options=ApplyOptions(apply_wait_s=0))
        assert time.monotonic() - started < 2
        assert f"pid {pid} (" in str(info.value) and "not waiting (apply_wait_s 0)" in str(info.value)
        assert relations(url) == {"public.t"}
        assert _apply_sessions(url) == []  # the waiting sessions are gone
    finally:
        holder.close()
    with pytest.raises(ConfigError):
        ApplyOptions(apply_wait_s=-1)


def test_target_lock_refuses_a_connection_in_a_transaction(make_db) -> None:
    url = make_db()
    with psycopg.connect(url) as conn, pytest.raises(ValueError), target_lock(conn, url):
        pass
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN")
        with pytest.raises(ValueError), target_lock(conn, url):
            pass
        conn.execute("ROLLBACK")
        with target_lock(conn, url) as waited:
            assert not waited.waited and _lock_holder(url) == conn.info.backend_pid
    assert _lock_holder(url) is None
