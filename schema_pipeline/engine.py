"""The engine's front door: plan, apply and drift for one target database.

Used by the CLI and by the Dagster layer alike; never imports Dagster.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from schema_pipeline import __version__, plandb
from schema_pipeline.apply import history, rehearsal
from schema_pipeline.apply.executor import (
    APPLY_APPLICATION_NAME,
    ApplyOptions,
    ExecutionReport,
    execute_plan,
    run_plan,
    target_lock,
)
from schema_pipeline.catalog.model import gc_paused
from schema_pipeline.db import connect, password_of, redact
from schema_pipeline.errors import HazardsNotAllowed, SchemaPipelineError
from schema_pipeline.plan.artifact import PlanOutdated
from schema_pipeline.plan.model import Plan
from schema_pipeline.plan.sizes import annotate_sizes
from schema_pipeline.progress import Counter, ProgressFn
from schema_pipeline.state.model import DesiredState

__all__ = ["ApplyOptions", "ApplyResult", "PlanResult", "Scope", "apply", "apply_plan", "check_hazards",
           "current_catalog", "desired_catalog", "drift", "execute_plan", "plan", "plan_catalogs"]


@dataclass
class Scope:
    """What is managed: which schemas (None = every non-system schema), and the owners of objects whose
    owner the state does not set ("all": the applying role, "declared": left as they are)."""

    include_schemas: list[str] | None = None
    exclude_schemas: list[str] | None = None
    ownership: str = "all"

    def to_dict(self) -> dict:
        return {"include_schemas": self.include_schemas, "exclude_schemas": self.exclude_schemas,
                "ownership": self.ownership}


@dataclass
class PlanResult:
    plan: Plan
    current: object  # schema_pipeline.catalog.Catalog of the target
    desired: object  # schema_pipeline.catalog.Catalog of the desired state


@dataclass
class ApplyResult:
    plan: Plan
    applied_steps: int
    duration_s: float
    converged: bool
    timings: list[float] = field(default_factory=list)
    release_id: int | None = None  # row id in the target's bookkeeping table
    rehearsed: bool = False
    lock_wait_s: float = 0.0
    remaining: str | None = None  # what a re-plan still shows when not converged


def _scope(scope: Scope | None) -> Scope:
    return scope or Scope()


def _now() -> datetime:
    return datetime.now(UTC)


def desired_catalog(state: DesiredState, target_url: str, *, scope: Scope | None = None,
                    plan_db_url: str | None = None, progress: ProgressFn | None = None):
    """The catalog the state files describe, read back from a plan database of the target's major version
    (the plan sandbox, or `plan_db_url`; cached by content). The target's server is only read."""
    sc = _scope(scope)
    return plandb.desired_catalog(state, target_url, plan_server_url=plan_db_url, include_schemas=sc.include_schemas,
                                  exclude_schemas=sc.exclude_schemas, progress=progress)


def current_catalog(target_url: str, *, scope: Scope | None = None, progress: ProgressFn | None = None,
                    phase: str = "reading the target's catalog"):
    """The live catalog of the target database (`progress` gets `phase` as counted work)."""
    from schema_pipeline.catalog import introspect

    sc = _scope(scope)
    with connect(target_url) as conn:
        return introspect(conn, include_schemas=sc.include_schemas, exclude_schemas=sc.exclude_schemas,
                          progress=progress, phase=phase)


def declared_renames(state: DesiredState | None, desired) -> dict[tuple[str, str], str]:
    """The state's declared renames, enum values included (resolved against the desired catalog), and its declared
    conversions of column values, as ("using", "schema.table.column") -> expression."""
    if state is None:
        return {}
    from schema_pipeline.diff.renames import enum_value_renames

    conversions = {("using", column): expr for column, expr in state.conversions.items()}  # diff/columns.py
    return {**state.renames, **enum_value_renames(state.statements, desired), **conversions}


@gc_paused()  # large catalogs: the collector's full passes cost more than the diff itself
def plan_catalogs(current, desired, renames: dict[tuple[str, str], str] | None = None, *,
                  online: bool = True, ownership: str = "all", fingerprints: bool = True) -> Plan:
    """Diff two catalogs into a plan; `renames` are the state's declared renames (see `declared_renames`).
    With `online` (the default) index builds, validations and SET NOT NULL run online (diff/online.py);
    `ownership` is the mode for owners the state does not set (diff/owners.py). Without `fingerprints`
    the plan does not record the catalogs' fingerprints (hashing a 5,000-table catalog takes ~0.3 s):
    for output that never shows them (SQL) and cannot be applied later."""
    from schema_pipeline.diff import diff_catalogs
    from schema_pipeline.diff.online import online_steps

    steps = diff_catalogs(current, desired, renames, owners=ownership)
    steps = online_steps(steps, current, desired) if online else steps
    return Plan(steps=steps, target_fingerprint=current.fingerprint() if fingerprints else "",
                desired_fingerprint=desired.fingerprint() if fingerprints else "", server_version=getattr(current, "server_version", 0),
                created_at=_now().isoformat(timespec="seconds"))


def convert_empty_tables(target_url: str, p: Plan) -> Plan:
    """Type changes without a cast (diff/columns.py) on tables that have no rows: nothing to delete, so no
    DELETES_DATA hazard (the step refuses to run if rows arrived since). Best effort: a table that cannot be
    read, or has row security, keeps the hazard."""
    from schema_pipeline.diff.columns import conversion_tables
    from schema_pipeline.diff.columns import convert_empty_tables as convert

    tables = conversion_tables(p.steps)
    if not tables:
        return p
    empty: set[str] = set()
    with suppress(psycopg.Error, SchemaPipelineError), connect(target_url) as conn:
        conn.execute("SET statement_timeout = '10s'")
        for table in sorted(tables):
            with suppress(psycopg.Error):  # row security could hide rows from this role: such tables keep it
                secured = conn.execute("SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = %s::regclass",
                                       (table,)).fetchone()[0]
                if not secured and not conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
                    empty.add(table)
    p.steps = convert(p.steps, empty)
    return p


def annotate_plan_sizes(target_url: str, p: Plan) -> Plan:
    """Hazard sizes (rows, bytes) from the target's statistics; best effort (never fails a plan)."""
    if any(s.hazards for s in p.steps):
        with suppress(psycopg.Error, SchemaPipelineError), connect(target_url) as conn:
            annotate_sizes(conn, p)
    return p


def plan(target_url: str, state: DesiredState, *, scope: Scope | None = None, plan_db_url: str | None = None,
         progress: ProgressFn | None = None, online: bool = True, fingerprints: bool = True) -> PlanResult:
    """Plan the migration of `target_url` to `state`; reads both catalogs concurrently
    (`fingerprints` as in `plan_catalogs`).

    `progress` gets the phase "planning" counted in four milestones (desired catalog ready, target
    catalog read, diff done, hazard sizes), besides the counted work of each side."""
    phases = Counter(progress, "planning", 4, unit="phases")

    def desired_side():
        wanted = desired_catalog(state, target_url, scope=scope, plan_db_url=plan_db_url, progress=progress)
        phases.advance(detail="desired catalog ready")
        return wanted

    def current_side():
        live = current_catalog(target_url, scope=scope, progress=progress)
        phases.advance(detail="target catalog read")
        return live

    with ThreadPoolExecutor(max_workers=2) as pool:
        fut_desired, fut_current = pool.submit(desired_side), pool.submit(current_side)
        desired = fut_desired.result()
        current = fut_current.result()
    p = plan_catalogs(current, desired, declared_renames(state, desired), online=online,
                      ownership=_scope(scope).ownership, fingerprints=fingerprints)
    p = convert_empty_tables(target_url, p)
    phases.advance(detail=f"diff done: {len(p.steps)} step(s)")
    p = annotate_plan_sizes(target_url, p)
    phases.finish(detail=f"{len(p.steps)} step(s)")
    return PlanResult(plan=p, current=current, desired=desired)


def drift(target_url: str, state: DesiredState, *, scope: Scope | None = None, plan_db_url: str | None = None,
          progress: ProgressFn | None = None, fingerprints: bool = True) -> PlanResult:
    """Live vs desired: the plan that would restore the desired state (empty = no drift)."""
    return plan(target_url, state, scope=scope, plan_db_url=plan_db_url, progress=progress,
                fingerprints=fingerprints)


def check_hazards(p: Plan, allow_hazards: set[str] | str | None) -> None:
    """Raise HazardsNotAllowed when the plan has hazards that were not allowed."""
    if allow_hazards == "all":
        return
    allowed = {h.upper() for h in (allow_hazards or set())}
    refused = sorted(p.hazard_types() - allowed)
    if refused:
        raise HazardsNotAllowed(
            "the plan has hazards that were not allowed: " + ", ".join(refused)
            + " (review the plan, then allow them with --allow-hazards " + ",".join(refused) + ")"
        )


def apply(target_url: str, state: DesiredState, *, allow_hazards: set[str] | str | None = None,
          scope: Scope | None = None, plan_db_url: str | None = None, options: ApplyOptions | None = None,
          progress: ProgressFn | None = None, rehearse: bool = True,
          release_info: dict | None = None, online: bool = True) -> ApplyResult:
    """Plan and apply `state` to the target under an advisory lock; verify the re-plan is empty.

    With `rehearse` the plan first runs on a schema-only copy of the target. When `release_info`
    ({"commit": ..., "approved_by": ..., anything else}) is given, the release is recorded in the
    target's bookkeeping table; without it the target gets nothing but the migration.
    """
    t0, started_at = time.monotonic(), _now()
    with connect(target_url, application_name=APPLY_APPLICATION_NAME) as lock_conn, \
            target_lock(lock_conn, target_url, progress, options):
        lock_wait = time.monotonic() - t0
        result = plan(target_url, state, scope=scope, plan_db_url=plan_db_url, progress=progress, online=online)
        check_hazards(result.plan, allow_hazards)
        return _apply_locked(target_url, lock_conn, result.plan, result.desired, scope=scope,
                             plan_db_url=plan_db_url, options=options, progress=progress, rehearse=rehearse,
                             release_info=release_info, t0=t0, started_at=started_at, lock_wait=lock_wait)


def apply_plan(target_url: str, p: Plan, *, desired=None, state: DesiredState | None = None,
               allow_hazards: set[str] | str | None = None, scope: Scope | None = None,
               plan_db_url: str | None = None, options: ApplyOptions | None = None,
               progress: ProgressFn | None = None, rehearse: bool = True,
               release_info: dict | None = None) -> ApplyResult:
    """Apply a saved plan. Refuses (PlanOutdated, nothing changed) when the target's catalog, or
    with `state` the desired state, no longer has the fingerprint recorded in the plan."""
    check_hazards(p, allow_hazards)
    t0, started_at = time.monotonic(), _now()
    with connect(target_url, application_name=APPLY_APPLICATION_NAME) as lock_conn, \
            target_lock(lock_conn, target_url, progress, options) as waited:
        lock_wait = time.monotonic() - t0
        current = current_catalog(target_url, scope=scope, progress=progress)
        if p.server_version and current.server_version // 10000 != p.server_version // 10000:
            raise PlanOutdated(f"the plan was made for PostgreSQL {p.server_version // 10000} but the target runs "
                               f"{current.server_version // 10000}; re-create the plan")
        if (found := current.fingerprint()) != p.target_fingerprint and waited.waited:
            raise PlanOutdated(f"the target changed while waiting for another apply (pid {waited.pids()}); "
                               "nothing was applied; re-run (re-create the plan)")
        if found != p.target_fingerprint:
            raise PlanOutdated(f"the target changed since the plan was made (catalog fingerprint "
                               f"{found}, plan made for {p.target_fingerprint}); nothing was "
                               "applied; re-create the plan")
        if state is not None:
            wanted = desired_catalog(state, target_url, scope=scope, plan_db_url=plan_db_url, progress=progress)
            if wanted.fingerprint() != p.desired_fingerprint:
                raise PlanOutdated(f"the desired state changed since the plan was made (fingerprint "
                                   f"{wanted.fingerprint()}, plan made for {p.desired_fingerprint}); nothing "
                                   "was applied; re-create the plan")
            desired = desired if desired is not None else wanted
        return _apply_locked(target_url, lock_conn, p, desired, scope=scope, plan_db_url=plan_db_url,
                             options=options, progress=progress, rehearse=rehearse, release_info=release_info,
                             t0=t0, started_at=started_at, lock_wait=lock_wait)


def _remaining(url: str, p: Plan, desired, scope: Scope | None, progress: ProgressFn | None = None) -> str | None:
    """None when `url` matches the desired state, else a short description of what is left."""
    after = current_catalog(url, scope=scope, progress=progress, phase="verifying the target")
    if desired is None:
        if after.fingerprint() == p.desired_fingerprint:
            return None
        return f"catalog fingerprint {after.fingerprint()} differs from the desired {p.desired_fingerprint}"
    rest = plan_catalogs(after, desired, ownership=_scope(scope).ownership)
    if rest.is_empty:
        return None
    lines = [f"  {s.action} {s.object_kind} {s.object_name}" for s in rest.steps[:10]]
    more = f"\n  ... and {len(rest.steps) - 10} more" if len(rest.steps) > 10 else ""
    return "\n".join(lines) + more


def _apply_locked(target_url: str, lock_conn: psycopg.Connection, p: Plan, desired, *, scope: Scope | None,
                  plan_db_url: str | None,
                  options: ApplyOptions | None, progress: ProgressFn | None, rehearse: bool,
                  release_info: dict | None, t0: float, started_at: datetime, lock_wait: float) -> ApplyResult:
    """Rehearse, execute, verify and record; `lock_conn` holds the target's advisory lock and runs the steps."""
    options = options or ApplyOptions()
    if p.is_empty:
        return ApplyResult(plan=p, applied_steps=0, duration_s=time.monotonic() - t0, converged=True,
                           lock_wait_s=lock_wait)
    report = ExecutionReport()
    timings: dict = {"lock_wait_s": round(lock_wait, 4)}
    rehearsed = False
    try:
        if rehearse:
            r = rehearsal.rehearse(target_url, p, lambda url: _remaining(url, p, desired, scope),
                                   plan_server_url=plan_db_url, options=options, progress=progress,
                                   target_fingerprint=lambda url: current_catalog(url, scope=scope).fingerprint())
            rehearsed, timings["rehearsal_s"] = r.ran, round(r.duration_s, 4)
        run_plan(target_url, p, options, progress, report, conn=lock_conn)
    except SchemaPipelineError as exc:
        timings.update(steps_s=report.timings, attempts=report.attempts, total_s=round(time.monotonic() - t0, 4))
        _record(target_url, p, started_at, "failed", str(exc), release_info, timings,
                {"applied_steps": len(report.timings), "rehearsed": rehearsed}, progress)
        raise
    left = _remaining(target_url, p, desired, scope, progress)
    timings.update(steps_s=report.timings, attempts=report.attempts, total_s=round(time.monotonic() - t0, 4))
    release_id = _record(target_url, p, started_at, "succeeded", None, release_info, timings,
                         {"applied_steps": len(report.timings), "rehearsed": rehearsed, "converged": left is None},
                         progress)
    return ApplyResult(plan=p, applied_steps=len(report.timings), duration_s=time.monotonic() - t0,
                       converged=left is None, timings=report.timings, release_id=release_id, rehearsed=rehearsed,
                       lock_wait_s=lock_wait, remaining=left)


def _record(url: str, p: Plan, started_at: datetime, status: str, error: str | None, release_info: dict | None,
            timings: dict, info: dict, progress: ProgressFn | None) -> int | None:
    """Write the bookkeeping row (only when `release_info` is given); a failure is reported, never fatal."""
    if release_info is None:
        return None
    extra = dict(release_info or {})
    record = history.ReleaseRecord(
        started_at=started_at, finished_at=_now(), status=status, plan_fingerprint=p.fingerprint(),
        steps=[s.to_dict() for s in p.steps], target_fingerprint=p.target_fingerprint,
        desired_fingerprint=p.desired_fingerprint, error=redact(error, password_of(url)) if error else None,
        commit=extra.pop("commit", None), approved_by=extra.pop("approved_by", None), timings=timings,
        info={**extra, **info, "tool_version": __version__},
    )
    try:
        return history.record_release(url, record)
    except (psycopg.Error, SchemaPipelineError) as exc:
        if progress:
            progress(redact(f"warning: could not record the release in the target: {exc}", password_of(url)))
        return None
