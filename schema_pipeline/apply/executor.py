"""Execute a plan against a target: transactional groups, per-step timeouts, one apply at a time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psycopg

from schema_pipeline.apply.blockers import BlockerWatch, describe_pids, describe_session, lock_holders
from schema_pipeline.db import connect, describe, redact
from schema_pipeline.errors import ApplyError, ConfigError
from schema_pipeline.plan.model import Plan, Step
from schema_pipeline.plan.sizes import relation_candidates
from schema_pipeline.progress import ProgressFn
from schema_pipeline.progress import report as _report

# Key of the session-level advisory lock that serialises applies to one database.
ADVISORY_LOCK_KEY = 0x5C4E_3A_01
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
QUERY_CANCELED = "57014"
RETRYABLE = {LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED}
APPLY_APPLICATION_NAME = "schema_pipeline_apply"
APPLY_PHASE = "applying the plan"  # counted progress: steps done of the plan's steps
_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")

_CIC = re.compile(r'^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?'
                  r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+ON\s+(?:ONLY\s+)?'
                  r'((?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*\.)?', re.I)


@dataclass
class ApplyOptions:
    """Timeouts applied to every step; a lock timeout (or deadlock) is retried `lock_retries` times
    with exponential backoff (`retry_backoff_s` doubling, at most `max_backoff_s`)."""

    lock_timeout: str = "10s"
    statement_timeout: str = "0"
    lock_retries: int = 3
    retry_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    watch_interval_s: float = 0.1
    # How long an apply waits for another apply of the same target (its advisory lock) before giving
    # up with an error naming that session; 0 = do not wait (fail fast).
    apply_wait_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("lock_timeout", "statement_timeout"):
            value = str(getattr(self, name)).strip()
            if not _DURATION.match(value):
                raise ConfigError(f"invalid {name} {value!r}: use a PostgreSQL duration such as 5s, 500ms, "
                                  "2min or 0 (no limit)")
            setattr(self, name, value)
        if self.lock_retries < 0:
            raise ConfigError("lock_retries must be 0 or more")
        if not self.apply_wait_s >= 0:  # also refuses NaN
            raise ConfigError("apply_wait_s must be 0 (do not wait) or more seconds")

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.retry_backoff_s * (2**attempt))


@dataclass
class ExecutionReport:
    """What ran: per-step durations (in step order) and the attempts each group needed."""

    timings: list[float] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)


@dataclass
class LockWait:
    """What taking the target's advisory lock cost: how long we waited and for which sessions."""

    waited_s: float = 0.0
    holders: dict[int, str] = field(default_factory=dict)  # pid -> description, in the order seen

    @property
    def waited(self) -> bool:
        return bool(self.holders)

    def pids(self) -> str:
        return ", ".join(str(p) for p in self.holders)


# Polling interval while another apply holds the lock: starts short, grows to at most the maximum.
_POLL_FIRST_S, _POLL_MAX_S = 0.05, 0.25
_NOTE_EVERY_S = 15.0  # how often progress repeats that the apply is still waiting
_TRY_LOCK_SQL = """
SELECT got, CASE WHEN got THEN NULL ELSE (
    SELECT l.pid FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = %(hi)s::oid AND l.objid = %(lo)s::oid AND l.objsubid = 1
    ORDER BY l.pid LIMIT 1) END
FROM pg_try_advisory_lock(%(key)s) AS got
"""


@contextmanager
def target_lock(conn: psycopg.Connection, url: str, progress: ProgressFn | None = None,
                options: ApplyOptions | None = None) -> Iterator[LockWait]:
    """Hold the target's advisory lock for the duration of the block; yields a `LockWait`.

    When another apply holds it, wait at most `options.apply_wait_s` seconds (then ApplyError naming
    that session). The wait never blocks inside the server: `pg_advisory_lock` would hold a snapshot
    (backend_xmin) for as long as it waits, and the other apply's CREATE INDEX CONCURRENTLY (or DETACH
    PARTITION CONCURRENTLY, ...) waits for every older snapshot: a deadlock. Instead `conn`, which must
    be in autocommit mode with no open transaction, polls `pg_try_advisory_lock` and sits idle, with
    no snapshot, no transaction and no other lock, between the attempts."""
    if not conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("target_lock needs an autocommit connection with no open transaction")
    limit = (options or ApplyOptions()).apply_wait_s
    info = LockWait()
    started = time.monotonic()
    _wait_for_lock(conn, url, progress, limit, info, started)
    info.waited_s = time.monotonic() - started
    if info.waited and progress:
        progress(f"the other apply on {describe(url)} finished; got the target's lock after "
                 f"{info.waited_s:.1f}s")
    try:
        yield info
    finally:
        with suppress(psycopg.Error):
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def _wait_for_lock(conn: psycopg.Connection, url: str, progress: ProgressFn | None, limit: float,
                   info: LockWait, started: float) -> None:
    params = {"key": ADVISORY_LOCK_KEY, "hi": (ADVISORY_LOCK_KEY >> 32) & 0xFFFFFFFF,
              "lo": ADVISORY_LOCK_KEY & 0xFFFFFFFF}
    interval, next_note, holder, unseen = _POLL_FIRST_S, started + _NOTE_EVERY_S, None, 0
    while True:
        try:
            got, pid = conn.execute(_TRY_LOCK_SQL, params).fetchone()
        except psycopg.Error as exc:
            raise ApplyError(f"cannot take the target's advisory lock: {_pg_message(exc)}") from None
        if got:
            return
        if pid is None and unseen < 3:  # released between the attempt and the look at pg_locks: try again
            unseen += 1
            continue
        unseen = 0
        now = time.monotonic()
        if pid is not None and pid not in info.holders:
            holder = info.holders[pid] = describe_session(conn, pid)
            if progress:
                how = f"waiting up to {_seconds(limit)} for it to finish" if limit else "not waiting (apply_wait_s 0)"
                progress(f"another apply is running on {describe(url)}: {holder}; {how}")
        if now - started >= limit:
            raise _wait_error(conn, url, pid, holder, limit, now - started)
        if now >= next_note:
            next_note = now + _NOTE_EVERY_S
            if progress:
                progress(f"still waiting for another apply on {describe(url)} ({holder or 'its session ended'}); "
                         f"waited {now - started:.0f}s of {_seconds(limit)}")
        time.sleep(min(interval, max(0.0, started + limit - now)))
        interval = min(_POLL_MAX_S, interval * 2)


def _wait_error(conn: psycopg.Connection, url: str, pid: int | None, holder: str | None, limit: float,
                waited: float) -> ApplyError:
    if pid is not None:
        holder = describe_session(conn, pid)  # fresh: how long it has run by now
    who = holder or "a session that could not be identified"
    gave_up = (f"gave up after waiting {waited:.1f}s (apply_wait_s {_seconds(limit)})" if limit
               else "not waiting (apply_wait_s 0)")
    return ApplyError(
        f"another apply holds the lock of {describe(url)}: {who}; {gave_up}. Nothing was applied; "
        "re-run when it has finished (or wait longer, or end that session)."
    )


def _seconds(s: float) -> str:
    return f"{s:g}s"


def step_groups(plan: Plan) -> list[tuple[bool, list[tuple[int, Step]]]]:
    """Consecutive transactional steps form one group; each non-transactional step is its own."""
    return [(g.transactional, [(i, plan.steps[i]) for i in g.indices]) for g in plan.groups()]


def execute_plan(url: str, plan: Plan, options: ApplyOptions, progress: ProgressFn | None = None) -> list[float]:
    """Run every step of `plan` on `url`; returns per-step durations. Raises ApplyError on failure."""
    return run_plan(url, plan, options, progress).timings


def run_plan(url: str, plan: Plan, options: ApplyOptions, progress: ProgressFn | None = None,
             report: ExecutionReport | None = None, conn: psycopg.Connection | None = None) -> ExecutionReport:
    """Like execute_plan, filling `report` as it goes (so a caller sees partial progress on failure).

    `conn` (autocommit) is used when given, typically the one holding the target's advisory lock, so
    that losing the lock and stopping the work go together."""
    report = report if report is not None else ExecutionReport()
    if plan.is_empty:
        return report
    if conn is None:
        with connect(url, application_name=APPLY_APPLICATION_NAME) as own:
            return _run_on(own, url, plan, options, progress, report)
    return _run_on(conn, url, plan, options, progress, report)


def _run_on(conn: psycopg.Connection, url: str, plan: Plan, options: ApplyOptions, progress: ProgressFn | None,
            report: ExecutionReport) -> ExecutionReport:
    try:
        # As pg_dump does: function bodies are not checked at creation, so creating functions
        # never depends on the order of the functions they call.
        conn.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false), "
                     "set_config('check_function_bodies', 'off', false)",
                     (options.lock_timeout, options.statement_timeout))
    except psycopg.Error as exc:
        raise ApplyError(f"cannot prepare the apply session: {_pg_message(exc)}") from None
    with BlockerWatch(url, conn.info.backend_pid, options.watch_interval_s) as watch:
        for transactional, group in step_groups(plan):
            _run_with_retries(conn, plan, transactional, group, options, progress, watch, report)
    _report(progress, APPLY_PHASE, len(plan.steps), len(plan.steps), unit="steps")
    return report


def _run_with_retries(conn: psycopg.Connection, plan: Plan, transactional: bool, group: list[tuple[int, Step]],
                      options: ApplyOptions, progress: ProgressFn | None, watch: BlockerWatch,
                      report: ExecutionReport) -> None:
    for attempt in range(options.lock_retries + 1):
        watch.reset()
        try:
            if attempt and not transactional:
                _drop_invalid_leftover(conn, group[0][0], group[0][1], progress)
            report.timings.extend(_run_group(conn, plan, group, transactional, progress))
            report.attempts.append(attempt + 1)
            return
        except _Retryable as exc:
            index, step, pg_error = exc.index, exc.step, exc.pg_error
            if attempt == options.lock_retries:
                blockers = watch.blockers()
                if not blockers:
                    pids = lock_holders(conn, relation_candidates(step))
                    blockers = describe_pids(conn, pids) if pids else {}
                raise _lock_error(plan, index, step, pg_error, attempt + 1, options, blockers,
                                  transactional, len(report.timings)) from None
            wait = options.backoff(attempt)
            if progress:
                progress(f"step {index + 1} ({step.action} {step.object_kind} {step.object_name}): "
                         f"{_pg_message(pg_error)}; retrying in {wait:.1f}s "
                         f"(attempt {attempt + 2}/{options.lock_retries + 1})")
            time.sleep(wait)


class _Retryable(Exception):
    def __init__(self, index: int, step: Step, pg_error: psycopg.Error):
        self.index, self.step, self.pg_error = index, step, pg_error


def _run_group(conn: psycopg.Connection, plan: Plan, group: list[tuple[int, Step]], transactional: bool,
               progress: ProgressFn | None) -> list[float]:
    timings: list[float] = []
    total = len(plan.steps)
    done_before = group[0][0]
    try:
        if transactional:
            conn.execute("BEGIN")
        for index, step in group:
            if progress:
                where = "" if transactional else " (outside a transaction)"
                progress(f"[{index + 1}/{total}] {step.action} {step.object_kind} {step.object_name}{where}")
                _report(progress, APPLY_PHASE, index, total, unit="steps", detail=f"step {index + 1}")
            started = time.monotonic()
            try:
                conn.execute(step.sql.encode(), prepare=False)  # bytes: no client-side %-placeholders
            except psycopg.Error as exc:
                _rollback(conn, transactional)
                if exc.sqlstate in RETRYABLE and not conn.broken:
                    raise _Retryable(index, step, exc) from None
                raise _step_error(exc, conn, index, total, step, transactional, done_before) from None
            timings.append(time.monotonic() - started)
        if transactional:
            conn.execute("COMMIT")
    except psycopg.Error as exc:  # BEGIN/COMMIT themselves failed (connection lost, ...)
        first, last = group[0][0] + 1, group[-1][0] + 1
        raise ApplyError(
            f"the group of steps {first}-{last} could not be committed: {_pg_message(exc)}\n "
            " The outcome of this group is unknown (the connection failed during BEGIN/COMMIT); run "
            "`schema-pipeline plan` to see what is left.",
            step_index=group[-1][0],
        ) from None
    return timings


def _rollback(conn: psycopg.Connection, transactional: bool) -> None:
    if transactional and not conn.broken:
        with suppress(psycopg.Error):
            conn.execute("ROLLBACK")


def _pg_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip() or type(exc).__name__
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    return redact(message)


def _statement_line(step: Step) -> str:
    lines = step.sql.strip().splitlines()
    return redact(lines[0] if lines else "") + (" ..." if len(lines) > 1 else "")


def _aftermath(transactional: bool, done_before: int, lost: bool) -> str:
    committed = (f" Steps 1-{done_before} were applied (committed) before; run `schema-pipeline plan` to see "
                 "what is left." if done_before else " No earlier step was applied.")
    if transactional:
        how = "the server rolled back the transaction" if lost else "the transaction was rolled back"
        return f" {how.capitalize()}; no step of this group was applied.{committed}"
    return (" This step runs outside a transaction and may have left partial work (for example an INVALID "
            f"index); the next plan detects and repairs it.{committed}")


def _step_error(exc: psycopg.Error, conn: psycopg.Connection, index: int, total: int, step: Step,
                transactional: bool, done_before: int) -> ApplyError:
    lost = conn.broken or conn.closed
    what = "lost its database connection" if lost else "failed"
    message = _pg_message(exc)
    if exc.sqlstate == QUERY_CANCELED and "statement timeout" in message:
        message += " (raise --statement-timeout, or run the step in a quieter period)"
    return ApplyError(
        f"step {index + 1}/{total} {what} ({step.action} {step.object_kind} {step.object_name}): {message}\n"
        f"  statement: {_statement_line(step)}\n "
        + _aftermath(transactional, done_before, lost),
        step_index=index, sql=step.sql,
    )


def _lock_error(plan: Plan, index: int, step: Step, exc: psycopg.Error, attempts: int, options: ApplyOptions,
                blockers: dict[int, str], transactional: bool, done_before: int) -> ApplyError:
    who = ("blocked by " + "; ".join(blockers[p] for p in sorted(blockers))) if blockers else \
        "the blocking session could not be identified"
    total = len(plan.steps)
    return ApplyError(
        f"step {index + 1}/{total} could not get its lock ({step.action} {step.object_kind} {step.object_name}) "
        f"within lock_timeout {options.lock_timeout}, {attempts} attempt(s): {_pg_message(exc)}; {who}\n"
        f"  statement: {_statement_line(step)}\n "
        + _aftermath(transactional, done_before, False)
        + " Retry when the blocking session is done, or end it.",
        step_index=index, sql=step.sql,
    )


def _drop_invalid_leftover(conn: psycopg.Connection, index: int, step: Step, progress: ProgressFn | None) -> None:
    """Before retrying a CREATE INDEX CONCURRENTLY that timed out, drop the INVALID index it may have
    left; if that cannot get its lock either, the attempt counts as another lock timeout."""
    m = _CIC.match(step.sql)
    if not m or conn.broken:
        return
    qualified = f"{m.group(2)}{m.group(1)}" if m.group(2) else m.group(1)
    try:
        row = conn.execute("SELECT i.indisvalid, i.indexrelid::regclass::text FROM pg_index i "
                           "WHERE i.indexrelid = to_regclass(%s)", (qualified,)).fetchone()
    except psycopg.Error:
        return
    if row and not row[0]:
        if progress:
            progress(f"dropping the INVALID index {row[1]} left by the interrupted build")
        try:
            conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {row[1]}".encode())
        except psycopg.Error as exc:
            if exc.sqlstate in RETRYABLE and not conn.broken:
                raise _Retryable(index, step, exc) from None
            # anything else: the retried CREATE reports the problem with the step's context
