"""Environments of several databases: run the engine per target with bounded concurrency.

Every target runs even when another fails; the caller gets one `TargetRun` per database
(host/db only, never a password) and turns them into a metadata table and, when any
failed, one `dg.Failure` that lists every failed database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dagster as dg

from schema_pipeline.config import EnvironmentConfig
from schema_pipeline.defs.common import describe_url, scrub
from schema_pipeline.defs.resources import PostgresTarget, resource_keys


@dataclass
class TargetRun:
    """The result of one engine call against one database."""

    url: str
    status: str = "pending"  # succeeded | failed
    steps: int = 0
    duration_s: float = 0.0
    error: str = ""
    value: Any = None
    exc: BaseException | None = None

    @property
    def database(self) -> str:
        return describe_url(self.url)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def env_targets(resources: Any, env: EnvironmentConfig) -> list[PostgresTarget]:
    """The environment's database resources, in configuration order."""
    return [getattr(resources, key) for key in resource_keys(env)]


def env_urls(resources: Any, env: EnvironmentConfig) -> list[str]:
    """Every database URL of the environment; a `dg.Failure` naming the variable when one is unset."""
    urls: list[str] = []
    for target in env_targets(resources, env):
        urls += target.urls()
    if not urls:
        raise dg.Failure(f"environment {env.name!r} has no database URL (its variables are empty)")
    return urls


def error_text(exc: BaseException) -> str:
    """A one-paragraph message for an exception (dg.Failure keeps its text in `description`)."""
    if isinstance(exc, dg.Failure) and exc.description:
        return exc.description
    return str(exc) or type(exc).__name__


def run_each(
    urls: list[str],
    fn: Callable[[str], tuple[Any, int]],
    max_parallel: int,
    *,
    secrets: tuple[str | None, ...] = (),
) -> list[TargetRun]:
    """Call `fn(url) -> (value, steps)` for every URL, at most `max_parallel` at once; never raises."""

    def one(url: str) -> TargetRun:
        run = TargetRun(url=url)
        t0 = time.monotonic()
        try:
            run.value, run.steps = fn(url)
            run.status = "succeeded"
        except Exception as exc:  # noqa: BLE001 - every target's failure is reported, none hides another
            run.status = "failed"
            run.exc = exc
            run.error = scrub(error_text(exc), url, *secrets)
        run.duration_s = round(time.monotonic() - t0, 3)
        return run

    if len(urls) == 1:
        return [one(urls[0])]
    with ThreadPoolExecutor(
        max_workers=max(1, min(max_parallel, len(urls))), thread_name_prefix="target"
    ) as pool:
        return list(pool.map(one, urls))


def targets_table(runs: list[TargetRun]) -> dg.TableMetadataValue:
    """One row per database: database (host/db), steps, status, duration, error."""
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("database", "string"),
            dg.TableColumn("steps", "int"),
            dg.TableColumn("status", "string"),
            dg.TableColumn("duration_s", "float"),
            dg.TableColumn("error", "string"),
        ]
    )
    records = [
        dg.TableRecord(
            {
                "database": r.database,
                "steps": int(r.steps),
                "status": r.status,
                "duration_s": float(r.duration_s),
                "error": r.error[:500],
            }
        )
        for r in runs
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def raise_if_failed(runs: list[TargetRun], what: str, metadata: dict[str, Any] | None = None) -> None:
    """One `dg.Failure` listing every failed database (after all of them ran)."""
    failed = [r for r in runs if not r.ok]
    if not failed:
        return
    listing = "\n".join(f"- {r.database}: {r.error}" for r in failed)
    raise dg.Failure(
        description=f"{what} failed on {len(failed)} of {len(runs)} database(s):\n{listing}",
        metadata={**(metadata or {}), "databases": targets_table(runs)},
    )
