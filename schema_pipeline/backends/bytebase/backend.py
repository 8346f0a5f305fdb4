"""`BytebaseBackend`: review, release and drift through Bytebase, as the bytebase-action does.

Declarative (SDL) flow, per environment:

- review:  `releases:check` with one file per state file (type DECLARATIVE) -> findings;
- release: one release (files concatenated), one plan over *this environment's* databases,
           one rollout created for *this environment's stage only*, then run NOT_STARTED
           tasks and poll until every task is DONE or SKIPPED;
- drift:   `:sync` then `:diffSchema` with the concatenated state; a non-empty diff is drift.

Approval safety: a rollout is only ever created with an explicit `target` stage for the
environment being released, over a plan that only names that environment's databases. No
prod task exists in Bytebase until the caller (the approved `release/prod` asset) asks
for prod, so a Bytebase prod environment with an automatic rollout policy cannot run
ahead of the Dagster gate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from schema_pipeline.backends.base import (
    DriftOutcome,
    Finding,
    ProgressFn,
    ReleaseCancelled,
    ReleaseOutcome,
    Severity,
    StateFiles,
    StepOutcome,
    TaskOutcome,
)
from schema_pipeline.backends.bytebase.client import (
    BytebaseClient,
    BytebaseError,
    BytebaseTaskFailed,
    encode_bytes,
)
from schema_pipeline.backends.bytebase.settings import BytebaseConfigError, BytebaseSettings
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.state.paths import state_root

_DONE = {"DONE", "SKIPPED"}
_ACTIVE_RUNS = {"RUNNING", "PENDING", "AVAILABLE"}
_RERUN_AFTER = 5
_SEVERITY = {"ERROR": Severity.ERROR, "WARNING": Severity.WARNING}


def _version_now(now: datetime | None = None) -> str:
    """The declarative file version, `YYYYMMDD.HHMMSS` (UTC)."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d.%H%M%S")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _run_duration(run: dict[str, Any]) -> float | None:
    start = _parse_time(run.get("startTime")) or _parse_time(run.get("createTime"))
    end = _parse_time(run.get("updateTime"))
    if start and end and end >= start:
        return (end - start).total_seconds()
    return None


def _relative_to(path: str | None, root: str) -> str | None:
    """`path` (repository-relative, as sent to Bytebase) relative to the state root."""
    if path and root and path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return path


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class BytebaseBackend:
    """The `bytebase` backend. One instance per settings; safe to reuse across calls."""

    name = "bytebase"

    def __init__(
        self,
        settings: BytebaseSettings,
        client: BytebaseClient | None = None,
        *,
        root: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.client = client or BytebaseClient(settings)
        self.root = root
        self._clock = clock
        self._version_checked = False

    @classmethod
    def from_env(cls, root: str | None = None) -> BytebaseBackend:
        """Settings from the environment variables (see settings.py)."""
        return cls(BytebaseSettings.from_env(), root=root)

    def load_state(self, root: str | None = None) -> StateFiles:
        """The state files matching STATE_FILE_PATTERN under `root` (default: the backend's root)."""
        base = root or self.root or "."
        state = StateFiles.load(base, self.settings.state_file_pattern)
        if not state.files:
            raise BytebaseConfigError(
                f"STATE_FILE_PATTERN={self.settings.state_file_pattern!r} matches no file under {base}"
            )
        return state

    def close(self) -> None:
        self.client.close()

    def _ready(self) -> None:
        if not self._version_checked:
            self.client.check_version()
            self._version_checked = True

    # -- review ------------------------------------------------------------------------------

    def review(
        self, state: StateFiles, *, environment: str | None = None, custom_rules: str | None = None
    ) -> list[Finding]:
        """`releases:check` over the targets of `environment` (default: every configured target).

        Each advice becomes a Finding `bytebase.<code>`; identical advices reported for several
        environments are merged (their `environment` is then None). Files are sent with their
        repository-relative paths (like the action); findings name them relative to the state
        root, like every other Finding, so reports can prefix the state directory once.
        """
        self._ready()
        if environment is None:
            targets = [db for dbs in self.settings.targets.values() for db in dbs]
        else:
            targets = list(self.settings.targets_for(environment))
        rules = custom_rules if custom_rules is not None else self.settings.custom_rules(self.root)
        version = _version_now()
        files = [
            {"path": f.path, "version": version, "statement": encode_bytes(f.content)} for f in state.files
        ]
        data = self.client.check_release(self.settings.project, files, targets, rules)
        env_of = {db: env for env, dbs in self.settings.targets.items() for db in dbs}
        root = state_root(state.pattern)
        merged: dict[tuple[Any, ...], tuple[Finding, set[str | None]]] = {}
        for result in data.get("results") or []:
            env = env_of.get(str(result.get("target") or ""))
            for advice in result.get("advices") or []:
                file = _relative_to(str(result.get("file") or "") or None, root)
                finding = advice_to_finding(advice, file)
                if finding is None:
                    continue
                key = (
                    finding.rule_id,
                    finding.severity,
                    finding.title,
                    finding.message,
                    finding.file,
                    finding.line,
                    finding.column,
                    finding.source,
                )
                if key in merged:
                    merged[key][1].add(env)
                else:
                    merged[key] = (finding, {env})
        findings = []
        for finding, envs in merged.values():
            only = next(iter(envs)) if len(envs) == 1 else None
            findings.append(replace(finding, environment=only))
        findings.sort(key=lambda f: (f.file or "", f.line or 0, f.column or 0, f.rule_id))
        return findings

    # -- release -----------------------------------------------------------------------------

    def release(
        self,
        environment: str,
        state: StateFiles,
        commit: str,
        *,
        progress: ProgressFn | None = None,
        cancel_event: threading.Event | None = None,
        vcs_url: str | None = None,
    ) -> ReleaseOutcome:
        """Release `state` to `environment` through Bytebase.

        Raises BytebaseError (BytebaseTaskFailed for FAILED/CANCELED tasks) or ReleaseCancelled;
        the partial ReleaseOutcome is attached to the exception as `exc.outcome`. An interrupt
        (KeyboardInterrupt, SystemExit, Dagster's run-termination interrupt) while tasks run
        cancels the running task runs before it propagates.
        """
        say = progress or (lambda _msg: None)
        cancel = cancel_event or threading.Event()
        targets = list(self.settings.targets_for(environment))
        bb_env = self.settings.bytebase_environment(environment)
        started = self._clock()
        outcome = ReleaseOutcome(environment=environment, backend=self.name, commit=commit, status="RUNNING")
        rollout_name: str | None = None
        try:
            rollout_name = self._create(
                outcome, environment, state, commit, targets, bb_env, vcs_url, say, cancel
            )
            self._run_stage(outcome, rollout_name, bb_env, environment, say, cancel)
        except ReleaseCancelled as exc:
            outcome.status = "CANCELED"
            exc.outcome = outcome  # type: ignore[attr-defined]
            raise
        except SchemaPipelineError as exc:
            outcome.status = "FAILED"
            exc.outcome = outcome  # type: ignore[attr-defined]
            raise
        except BaseException:
            # Interrupted from outside (run terminated): stop Bytebase's work too, then propagate.
            outcome.status = "CANCELED"
            if rollout_name is not None:
                try:
                    self._cancel(rollout_name, say)
                except Exception as cancel_exc:  # noqa: BLE001 - best effort while interrupted
                    say(f"could not cancel Bytebase task runs: {cancel_exc}")
            raise
        finally:
            outcome.duration_s = self._clock() - started
        outcome.status = "SUCCEEDED"
        say(f"release to {environment} done in {outcome.duration_s:.1f}s")
        return outcome

    def _create(
        self,
        outcome: ReleaseOutcome,
        environment: str,
        state: StateFiles,
        commit: str,
        targets: list[str],
        bb_env: str,
        vcs_url: str | None,
        say: ProgressFn,
        cancel: threading.Event,
    ) -> str:
        """Create the release, the plan over this environment's databases, and its one-stage rollout."""

        def step(name: str, fn: Callable[[], dict[str, Any]]) -> str:
            if cancel.is_set():
                raise ReleaseCancelled(f"release to {environment} cancelled before '{name}'")
            t0 = self._clock()
            try:
                result = fn()
            except BytebaseError as exc:
                outcome.steps.append(StepOutcome(name, "FAILED", str(exc), None, self._clock() - t0))
                raise
            resource = str(result.get("name") or "")
            if not resource:
                raise BytebaseError(f"Bytebase answered '{name}' without a resource name")
            link = self.client.link(resource)
            outcome.steps.append(StepOutcome(name, "SUCCEEDED", resource, link, self._clock() - t0))
            say(f"{name}: {link}")
            return resource

        self._ready()
        file = {
            "path": state.pattern,
            "version": _version_now(),
            "statement": encode_bytes(state.concatenated()),
        }
        release_name = step(
            "create release",
            lambda: self.client.create_release(self.settings.project, [file], vcs_url=vcs_url),
        )
        outcome.links["release"] = self.client.link(release_name)
        release_id = release_name.rsplit("/", 1)[-1]
        plan_body = {
            "title": f"{release_id} → {environment} @ {commit[:12]}"[:200],
            "description": f"schema_pipeline: declarative release of commit {commit} to {environment}",
            "specs": [
                {
                    "id": str(uuid.uuid4()),
                    "changeDatabaseConfig": {"targets": targets, "release": release_name},
                }
            ],
        }
        plan_name = step("create plan", lambda: self.client.create_plan(self.settings.project, plan_body))
        outcome.links["plan"] = self.client.link(plan_name)
        # Only this environment's stage: never let Bytebase create (and auto-run) another stage.
        rollout_name = step("create rollout", lambda: self.client.create_rollout(plan_name, bb_env))
        outcome.links["rollout"] = self.client.link(rollout_name)
        return rollout_name

    def _stages(self, rollout: dict[str, Any], bb_env: str, environment: str) -> list[dict[str, Any]]:
        stages = list(rollout.get("stages") or [])
        foreign = [s.get("environment") for s in stages if s.get("environment") != bb_env]
        if foreign:
            raise BytebaseError(
                f"Bytebase rollout {rollout.get('name')} has stages for {', '.join(map(str, foreign))}, but this "
                f"release may only run {bb_env} (environment {environment!r}); nothing was run. Check "
                "BYTEBASE_TARGETS / BYTEBASE_ENVIRONMENTS: each database must belong to its Bytebase environment"
            )
        if not stages or not any(s.get("tasks") for s in stages):
            raise BytebaseError(
                f"Bytebase rollout {rollout.get('name')} has no tasks for {bb_env}: the target databases "
                f"{', '.join(self.settings.targets_for(environment))} are not in that Bytebase environment "
                "(set BYTEBASE_ENVIRONMENTS) or not in the project"
            )
        return stages

    def _run_stage(
        self,
        outcome: ReleaseOutcome,
        rollout_name: str,
        bb_env: str,
        environment: str,
        say: ProgressFn,
        cancel: threading.Event,
    ) -> None:
        """Stage by stage: run NOT_STARTED tasks, poll with backoff until DONE/SKIPPED."""
        deadline = self._clock() + self.settings.rollout_timeout
        stage_index = 0
        interval = self.settings.poll_interval
        stage_started = self._clock()
        requested: dict[str, int] = {}  # task -> polls since we asked Bytebase to run it
        last_summary = ""
        while True:
            if cancel.is_set():
                self._cancel(rollout_name, say)
                raise ReleaseCancelled(
                    f"release to {environment} cancelled; running Bytebase task runs were cancelled"
                )
            rollout = self.client.get_rollout(rollout_name)
            stages = self._stages(rollout, bb_env, environment)
            if stage_index >= len(stages):
                return
            stage = stages[stage_index]
            stage_name = str(stage.get("name") or "")
            if "/stages/" not in stage_name:
                stage_name = (
                    f"{rollout_name}/stages/{str(stage.get('environment', bb_env)).rsplit('/', 1)[-1]}"
                )
            tasks = list(stage.get("tasks") or [])
            statuses = [str(t.get("status") or "STATUS_UNSPECIFIED") for t in tasks]
            bad = [t for t in tasks if t.get("status") in ("FAILED", "CANCELED")]
            if bad:
                self._record_tasks(outcome, rollout_name, tasks)
                details = [
                    (str(t.get("name")), str(t.get("status")), self._task_detail(outcome, t)) for t in bad
                ]
                lines = "; ".join(
                    f"{t.get('target', name)} {status}: {detail or 'no detail'}"
                    for (name, status, detail), t in zip(details, bad, strict=True)
                )
                outcome.steps.append(
                    StepOutcome(
                        f"run stage {bb_env}",
                        "FAILED",
                        lines,
                        self.client.link(rollout_name),
                        self._clock() - stage_started,
                    )
                )
                raise BytebaseTaskFailed(
                    f"Bytebase rollout {rollout_name} stage {bb_env}: {lines} (view on Bytebase: "
                    f"{self.client.link(rollout_name)})",
                    details,
                )
            if tasks and all(s in _DONE for s in statuses):
                self._record_tasks(outcome, rollout_name, tasks)
                outcome.steps.append(
                    StepOutcome(
                        f"run stage {bb_env}",
                        "SUCCEEDED",
                        f"{len(tasks)} task(s) done",
                        self.client.link(stage_name),
                        self._clock() - stage_started,
                    )
                )
                say(f"stage {bb_env}: all {len(tasks)} task(s) done")
                stage_index += 1
                stage_started = self._clock()
                interval = self.settings.poll_interval
                continue
            for name in requested:
                requested[name] += 1
            # Run NOT_STARTED tasks; ask again only if one is still NOT_STARTED several polls later
            # (BatchRunTasks is idempotent on Bytebase >= 3.13).
            not_started = [
                str(t["name"])
                for t in tasks
                if t.get("status") == "NOT_STARTED"
                and requested.get(str(t["name"]), _RERUN_AFTER) >= _RERUN_AFTER
            ]
            if not_started:
                self.client.batch_run_tasks(stage_name, not_started)
                requested.update(dict.fromkeys(not_started, 0))
                say(f"stage {bb_env}: started {len(not_started)} task(s)")
                interval = self.settings.poll_interval
            summary = ", ".join(f"{s} {statuses.count(s)}" for s in sorted(set(statuses)))
            if summary != last_summary:
                say(f"stage {bb_env}: {summary}")
                last_summary = summary
            if self._clock() > deadline:
                raise BytebaseError(
                    f"Bytebase rollout {rollout_name} stage {bb_env} did not finish within "
                    f"{self.settings.rollout_timeout:g}s ({summary}); view on Bytebase: {self.client.link(rollout_name)}"
                )
            if cancel.wait(interval):
                continue
            interval = min(interval * 1.5, self.settings.poll_max_interval)

    def _task_runs(self, rollout_name: str) -> list[dict[str, Any]]:
        return self.client.list_task_runs(f"{rollout_name}/stages/-/tasks/-")

    def _task_detail(self, outcome: ReleaseOutcome, task: dict[str, Any]) -> str:
        for t in outcome.tasks:
            if t.name == task.get("name"):
                return t.detail
        return str(task.get("skippedReason") or "")

    def _record_tasks(self, outcome: ReleaseOutcome, rollout_name: str, tasks: list[dict[str, Any]]) -> None:
        """Fill outcome.tasks with each task's status and its latest run's detail and duration."""
        runs = self._task_runs(rollout_name)
        for task in tasks:
            name = str(task.get("name") or "")
            mine = [r for r in runs if str(r.get("name", "")).startswith(name + "/taskRuns/")]
            mine.sort(key=lambda r: (str(r.get("createTime") or ""), _run_id(r)))
            latest = mine[-1] if mine else {}
            detail = str(latest.get("detail") or task.get("skippedReason") or "")
            outcome.tasks = [t for t in outcome.tasks if t.name != name]
            outcome.tasks.append(
                TaskOutcome(
                    name=name,
                    target=str(task.get("target") or ""),
                    status=str(task.get("status") or "STATUS_UNSPECIFIED"),
                    detail=detail,
                    link=self.client.link(name),
                    duration_s=_run_duration(latest) if latest else None,
                )
            )

    def _cancel(self, rollout_name: str, say: ProgressFn) -> list[str]:
        """Cancel every RUNNING/PENDING task run of the rollout, grouped by stage (batchCancel)."""
        by_stage: dict[str, list[str]] = {}
        for run in self._task_runs(rollout_name):
            if run.get("status") in _ACTIVE_RUNS:
                name = str(run.get("name") or "")
                stage = name.split("/tasks/", 1)[0]
                by_stage.setdefault(stage, []).append(name)
        cancelled: list[str] = []
        for stage, runs in by_stage.items():
            self.client.batch_cancel_task_runs(stage, runs)
            cancelled.extend(runs)
            say(f"cancelled {len(runs)} task run(s) in {stage}")
        return cancelled

    # -- drift -------------------------------------------------------------------------------

    def drift(self, environment: str, state: StateFiles) -> DriftOutcome:
        """Sync each database of `environment`, then diffSchema with the desired state."""
        self._ready()
        desired = state.concatenated()
        per_target: dict[str, str] = {}
        for db in self.settings.targets_for(environment):
            self.client.sync_database(db)
            per_target[db] = self.client.diff_schema(db, desired)
        drifted = {db: d for db, d in per_target.items() if d.strip()}
        text = "\n".join(f"-- {db}\n{d.rstrip()}\n" for db, d in drifted.items())
        return DriftOutcome(
            environment=environment,
            backend=self.name,
            has_drift=bool(drifted),
            diff=text,
            per_target=per_target,
        )


def _run_id(run: dict[str, Any]) -> int:
    tail = str(run.get("name", "")).rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def advice_to_finding(advice: dict[str, Any], file: str | None) -> Finding | None:
    """Map a Bytebase Advice to a Finding; SUCCESS advices are dropped."""
    status = str(advice.get("status") or "ADVICE_LEVEL_UNSPECIFIED")
    if status == "SUCCESS":
        return None
    code = advice.get("code") or 0
    position = advice.get("startPosition") or {}
    title = str(advice.get("title") or f"Bytebase advice {code}")
    return Finding(
        rule_id=f"bytebase.{code}",
        severity=_SEVERITY.get(status, Severity.INFO),
        title=title,
        message=str(advice.get("content") or title),
        file=file,
        line=_int(position.get("line")) if isinstance(position, dict) else None,
        column=_int(position.get("column")) if isinstance(position, dict) else None,
        source="ai" if advice.get("ruleType") == "AI_POWERED" else "rule",
    )
