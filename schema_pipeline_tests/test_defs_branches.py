"""Reviews of open branches before merge: sensor, review-only run, sticky PR comment and status.

GitHub is the local fake speaking GitHub's REST format; git is a real temporary repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from schema_pipeline.config import parse_config
from schema_pipeline.defs.branches import parse_cursor
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline.defs.resources import GitRepoResource
from schema_pipeline.review.github import MARKER
from schema_pipeline_tests.fake_github import FakeGitHub
from schema_pipeline_tests.test_defs_pipeline import (
    PROD,
    REVIEW,
    STATE,
    TEST,
    all_event_text,
    failure_text,
    tables,
    with_password,
)
from schema_pipeline_tests.test_git import TempRepo, temp_repo  # noqa: F401  (fixture)

TOKEN = "ghs_fake_token_0123456789"
REPO = "acme/schemas"


def tick(defs: dg.Definitions, repo: TempRepo, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def("schema_branch_review_sensor")
    git = GitRepoResource(repo=str(repo.path), branch="main", state_path="schemas")
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, resources={"git": git})
    )


def branch_commit(repo: TempRepo, branch: str, files: dict[str, str | None]) -> str:
    repo.git("checkout", "-q", "-B", branch)
    sha = repo.commit(files, f"work on {branch}")
    repo.git("checkout", "-q", "main")
    return sha


def test_cursor_is_parsed_defensively() -> None:
    sha = "a" * 40
    assert parse_cursor(None) == {} and parse_cursor("not json") == {} and parse_cursor("[1]") == {}
    assert parse_cursor(json.dumps({"f": sha, "g": "nope", "h": 3})) == {"f": sha}


def test_new_branch_head_is_reviewed_once_without_releasing(
    temp_repo: TempRepo,  # noqa: F811
    make_db,
    tmp_path: Path,
    monkeypatch,
) -> None:
    test_db, prod_db = make_db(), make_db()
    monkeypatch.setenv("SCHEMA_PIPELINE_TEST_URL", with_password(test_db))
    monkeypatch.setenv("SCHEMA_PIPELINE_PROD_URL", with_password(prod_db))
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    main = temp_repo.commit_sample()
    sha = branch_commit(
        temp_repo,
        "feature/nickname",
        {"schemas/04_x.sql": "CREATE TABLE public.x (id bigint PRIMARY KEY);\n"},
    )
    branch_commit(temp_repo, "wip/ignored", {"schemas/05_y.sql": "CREATE TABLE public.y (id bigint);\n"})
    temp_repo.git("branch", "-f", "same-as-main", "main")
    with FakeGitHub(TOKEN, REPO) as github:
        github.add_pull(12, "feature/nickname", sha)
        cfg = parse_config(
            {
                "git": {"repo": str(temp_repo.path), "review_branches": ["feature/*", "same-*"]},
                "review": {"github": {"token_env": "GH_TOKEN", "repo": REPO, "api_url": github.api_url}},
            },
            file=tmp_path / "schema_pipeline.yaml",
        )
        defs = build_definitions(cfg)
        sensor = defs.resolve_sensor_def("schema_branch_review_sensor")
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        job = defs.resolve_job_def("schema_review")
        assert job.asset_layer.selected_asset_keys == {STATE, REVIEW}
        with dg.instance_for_test() as instance:
            data = tick(defs, temp_repo, instance, None)
            (req,) = data.run_requests
            assert req.run_key == f"review:feature/nickname:{sha}"
            assert req.tags["schema/branch"] == "feature/nickname" and req.tags["schema/commit"] == sha
            assert json.loads(data.cursor) == {"feature/nickname": sha}
            again = tick(defs, temp_repo, instance, data.cursor)
            assert not again.run_requests and "no new branch head" in again.skip_message
            assert [r.run_key for r in tick(defs, temp_repo, instance, "{broken").run_requests] == [
                req.run_key
            ]

            for _ in range(2):  # the second review updates the same comment in place
                result = job.execute_in_process(
                    run_config=req.run_config, instance=instance, tags=req.tags, raise_on_error=False
                )
                assert result.success, failure_text(result)
            mats = {m.asset_key: m.materialization for m in result.get_asset_materialization_events()}
            assert set(mats) == {STATE, REVIEW}
            assert mats[REVIEW].tags["schema/commit"] == sha
            assert mats[REVIEW].tags["schema/branch"] == "feature-nickname"
            assert mats[REVIEW].metadata["branch"].value == "feature/nickname"
            assert mats[REVIEW].metadata["pull_request"].value == 12
            assert tables(test_db) == set() and tables(prod_db) == set()
            assert instance.get_latest_materialization_event(TEST) is None
            assert instance.get_latest_materialization_event(PROD) is None

            ours = [c for c in github.comments[12] if MARKER in c["body"]]
            assert len(ours) == 1 and sha[:12] in ours[0]["body"] and "feature/nickname" in ours[0]["body"]
            assert [s["state"] for s in github.statuses[sha]] == ["success", "success"]
            assert github.statuses[sha][0]["context"] == "schema-pipeline/review"
            assert TOKEN not in all_event_text(instance)

            # a release launched on its own never picks up the branch's commit
            release = defs.resolve_job_def("schema_to_test").execute_in_process(
                run_config={"ops": {"schema__state": {"config": {"commit_sha": ""}}}},
                instance=instance,
                raise_on_error=False,
            )
            assert release.success, failure_text(release)
            latest = instance.get_latest_materialization_event(TEST).asset_materialization
            assert latest.tags["schema/commit"] == main and "x" not in tables(test_db)


def test_branch_review_without_token_reports_why(temp_repo: TempRepo, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv("SCHEMA_PIPELINE_TEST_URL", raising=False)
    monkeypatch.delenv("SCHEMA_PIPELINE_PROD_URL", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    temp_repo.commit_sample()
    sha = branch_commit(
        temp_repo, "fix-1", {"schemas/04_x.sql": "CREATE TABLE public.x (id bigint PRIMARY KEY);\n"}
    )
    cfg = parse_config(
        {"git": {"repo": str(temp_repo.path)}, "review": {"github": {"token_env": "GH_TOKEN", "repo": REPO}}},
        file=tmp_path / "schema_pipeline.yaml",
    )
    defs = build_definitions(cfg)
    with dg.instance_for_test() as instance:
        (req,) = tick(defs, temp_repo, instance, None).run_requests
        result = defs.resolve_job_def("schema_review").execute_in_process(
            run_config=req.run_config, instance=instance, tags=req.tags, raise_on_error=False
        )
        assert result.success, failure_text(result)
        review = next(
            m.materialization for m in result.get_asset_materialization_events() if m.asset_key == REVIEW
        )
        assert review.tags["schema/commit"] == sha
        assert "set GH_TOKEN" in review.metadata["github"].value


def test_failing_branch_review_does_not_gate_the_tested_main_commit(
    temp_repo: TempRepo,  # noqa: F811
    make_db,
    tmp_path: Path,
    monkeypatch,
) -> None:
    test_db, prod_db = make_db(), make_db()
    monkeypatch.setenv("SCHEMA_PIPELINE_TEST_URL", with_password(test_db))
    monkeypatch.setenv("SCHEMA_PIPELINE_PROD_URL", with_password(prod_db))
    main = temp_repo.commit({"schemas/t.sql": "CREATE TABLE public.t (id bigint PRIMARY KEY);\n"})
    branch_commit(temp_repo, "feature/nopk", {"schemas/u.sql": "CREATE TABLE public.u (id bigint);\n"})
    cfg = parse_config(
        {"git": {"repo": str(temp_repo.path)}, "review": {"rules": {"table.require-pk": "ERROR"}}},
        file=tmp_path / "schema_pipeline.yaml",
    )
    defs = build_definitions(cfg)
    with dg.instance_for_test() as instance:
        released = defs.resolve_job_def("schema_to_test").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert released.success, failure_text(released)
        (req,) = tick(defs, temp_repo, instance, None).run_requests
        review = defs.resolve_job_def("schema_review").execute_in_process(
            run_config=req.run_config, instance=instance, tags=req.tags, raise_on_error=False
        )
        (check,) = review.get_asset_check_evaluations()
        assert not check.passed  # the branch's review blocks the branch, not main
        prod = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            run_config={
                "ops": {
                    "release__prod": {
                        "config": {"approved_by": "dana", "expected_commit_sha": main, "reason": "r"}
                    }
                }
            },
            instance=instance,
            asset_selection=[PROD],
            raise_on_error=False,
        )
        assert prod.success, failure_text(prod)
        assert tables(prod_db) == {"t"}
