"""schema_commit_sensor against a real temporary git repository."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from schema_pipeline.config import ProjectConfig, parse_config
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline.defs.resources import GitRepoResource
from schema_pipeline_tests.test_git import TempRepo, temp_repo  # noqa: F401  (fixture)


@pytest.fixture
def cfg(temp_repo: TempRepo, tmp_path: Path) -> ProjectConfig:  # noqa: F811
    return parse_config({"git": {"repo": str(temp_repo.path)}}, file=tmp_path / "schema_pipeline.yaml")


def tick(defs: dg.Definitions, cfg: ProjectConfig, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def("schema_commit_sensor")
    git = GitRepoResource(repo=cfg.git.repo, branch=cfg.git.branch, state_path=cfg.state)
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"git": git}) as ctx:
        return sensor.evaluate_tick(ctx)


def test_new_commit_requests_one_run_keyed_by_sha(temp_repo: TempRepo, cfg: ProjectConfig) -> None:  # noqa: F811
    first = temp_repo.commit_sample()
    defs = build_definitions(cfg)
    sensor = defs.resolve_sensor_def("schema_commit_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert 30 <= sensor.minimum_interval_seconds <= 60
    with dg.instance_for_test() as instance:
        data = tick(defs, cfg, instance, None)
        assert len(data.run_requests) == 1
        req = data.run_requests[0]
        assert req.run_key == first
        assert req.tags["schema/commit"] == first
        assert data.cursor == first
        job = defs.resolve_job_def("schema_to_test")
        assert req.job_name in (None, job.name)
        assert (
            dg.validate_run_config(job, req.run_config)["ops"]["schema__state"]["config"]["commit_sha"]
            == first
        )

        # cursor round-trip: the returned cursor fed back in yields a skip, and nothing else
        again = tick(defs, cfg, instance, data.cursor)
        assert not again.run_requests
        assert "no new commit" in again.skip_message

        # a commit outside the state path: skip, but move the cursor past it
        docs = temp_repo.commit({"README.md": "docs\n"}, "docs")
        outside = tick(defs, cfg, instance, data.cursor)
        assert not outside.run_requests
        assert "does not change schemas" in outside.skip_message
        assert outside.cursor == docs

        # two schema commits since the cursor: one run for the newest (state-based)
        temp_repo.commit({"schemas/04_a.sql": "CREATE TABLE public.a (id bigint PRIMARY KEY);\n"}, "a")
        newest = temp_repo.commit(
            {"schemas/05_b.sql": "CREATE TABLE public.b (id bigint PRIMARY KEY);\n"}, "b"
        )
        after = tick(defs, cfg, instance, outside.cursor)
        assert [r.run_key for r in after.run_requests] == [newest]
        assert after.run_requests[0].tags["schema/skipped_commits"] == "1"
        assert after.cursor == newest


def test_missing_branch_is_a_skip_with_a_reason(cfg: ProjectConfig) -> None:
    defs = build_definitions(cfg)
    with dg.instance_for_test() as instance:
        data = tick(defs, cfg, instance, None)
    assert not data.run_requests
    assert "branch 'main' not found" in data.skip_message


def test_remote_repository_is_polled_without_a_clone_per_tick(
    temp_repo: TempRepo,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    first = temp_repo.commit_sample()
    cfg = parse_config({"git": {"repo": f"file://{temp_repo.path}"}}, file=tmp_path / "schema_pipeline.yaml")
    defs = build_definitions(cfg)
    with dg.instance_for_test() as instance:
        data = tick(defs, cfg, instance, None)
        assert [r.run_key for r in data.run_requests] == [first]
        mirror = next((tmp_path / "cache" / "mirrors").iterdir())
        fetched_at = (mirror / "FETCH_HEAD").stat().st_mtime if (mirror / "FETCH_HEAD").exists() else None
        idle = tick(defs, cfg, instance, data.cursor)  # only `git ls-remote`: the mirror is untouched
        assert not idle.run_requests
        after = (mirror / "FETCH_HEAD").stat().st_mtime if (mirror / "FETCH_HEAD").exists() else None
        assert after == fetched_at
        second = temp_repo.commit({"schemas/04_x.sql": "CREATE TABLE public.x (id bigint PRIMARY KEY);\n"})
        new = tick(defs, cfg, instance, idle.cursor or data.cursor)
        assert [r.run_key for r in new.run_requests] == [second]
