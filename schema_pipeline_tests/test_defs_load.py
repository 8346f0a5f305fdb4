"""The code location loads, validates and has the intended shape (no database needed)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from schema_pipeline.config import parse_config
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline.defs.resources import build_resources

STATE = dg.AssetKey(["schema", "state"])
REVIEW = dg.AssetKey(["schema", "review"])
TEST = dg.AssetKey(["release", "test"])
PROD = dg.AssetKey(["release", "prod"])
PACKAGE = Path(__file__).resolve().parent.parent / "schema_pipeline"


def test_entry_point_loads_and_validates() -> None:
    from schema_pipeline.definitions import defs

    loaded = defs()
    dg.Definitions.validate_loadable(loaded)
    graph = loaded.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {STATE, REVIEW, TEST, PROD}
    assert graph.get(REVIEW).parent_keys == {STATE}
    assert graph.get(TEST).parent_keys == {REVIEW}
    assert graph.get(PROD).parent_keys == {TEST}
    for spec in loaded.resolve_all_asset_specs():
        assert spec.kinds == {"postgres", "sql"}
        assert spec.owners and spec.description and spec.group_name in ("schema", "release")
    assert set(graph.asset_check_keys) == {
        dg.AssetCheckKey(REVIEW, "no_error_findings"),
        dg.AssetCheckKey(TEST, "converged"),
        dg.AssetCheckKey(PROD, "converged"),
        dg.AssetCheckKey(TEST, "no_drift"),
        dg.AssetCheckKey(PROD, "no_drift"),
    }


def test_jobs_sensor_and_schedule(tmp_path: Path) -> None:
    defs = build_definitions(_cfg(tmp_path))
    release_job = defs.resolve_job_def("schema_to_test")
    assert release_job.asset_layer.selected_asset_keys == {STATE, REVIEW, TEST}
    assert release_job.asset_layer.asset_graph.asset_check_keys == {
        dg.AssetCheckKey(REVIEW, "no_error_findings"),
        dg.AssetCheckKey(TEST, "converged"),
    }
    drift_job = defs.resolve_job_def("drift_checks")
    assert drift_job.asset_layer.selected_asset_keys == set()
    assert drift_job.asset_layer.asset_graph.asset_check_keys == {
        dg.AssetCheckKey(TEST, "no_drift"),
        dg.AssetCheckKey(PROD, "no_drift"),
    }
    (schedule,) = defs.schedules
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.job_name == "drift_checks"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.instance_for_test() as instance, dg.build_schedule_context(instance=instance) as ctx:
        assert len(schedule.evaluate_tick(ctx).run_requests) == 1


def test_materialize_all_fails_closed_for_prod(tmp_path: Path) -> None:
    defs = build_definitions(_cfg(tmp_path))
    everything = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(dg.DagsterInvalidConfigError, match="release__prod"):
        dg.validate_run_config(everything, {})
    with (
        dg.instance_for_test() as instance,
        pytest.raises(dg.DagsterInvalidConfigError, match="release__prod"),
    ):
        everything.execute_in_process(instance=instance)
    approval = {"approved_by": "a", "expected_commit_sha": "abc", "reason": "r"}
    for missing in approval:
        partial = {k: v for k, v in approval.items() if k != missing}
        with pytest.raises(dg.DagsterInvalidConfigError, match=missing):
            dg.validate_run_config(everything, {"ops": {"release__prod": {"config": partial}}})


def test_every_later_environment_needs_approval_and_crons_split_schedules(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "git": {"repo": str(tmp_path)},
            "environments": {
                "dev": {},
                "staging": {"drift_cron": "*/15 * * * *"},
                "prod": {},
            },
        },
        file=tmp_path / "schema_pipeline.yaml",
    )
    defs = build_definitions(cfg)
    dg.Definitions.validate_loadable(defs)
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    assert {dg.AssetKey(["release", n]) for n in ("dev", "staging", "prod")} <= keys
    assert defs.resolve_job_def("schema_to_dev")
    everything = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(dg.DagsterInvalidConfigError) as err:
        dg.validate_run_config(everything, {})
    assert "release__staging" in str(err.value) and "release__prod" in str(err.value)
    crons = {s.name: s.cron_schedule for s in defs.schedules}
    assert crons == {"drift_schedule_dev_prod": "0 * * * *", "drift_schedule_staging": "*/15 * * * *"}


def test_database_urls_are_bound_through_env_vars(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_TEST_URL", "postgresql://u:pw@db.example.com/hr_test")
    monkeypatch.delenv("SCHEMA_PIPELINE_PROD_URL", raising=False)
    resources = build_resources(_cfg(tmp_path))
    assert isinstance(resources["db_test"].database_url, dg.EnvVar)
    assert resources["db_test"].database_url.env_var_name == "SCHEMA_PIPELINE_TEST_URL"
    assert resources["db_prod"].database_url is None
    assert resources["db_prod"].display() == "(unset: SCHEMA_PIPELINE_PROD_URL)"
    with pytest.raises(dg.Failure, match="set the environment variable SCHEMA_PIPELINE_PROD_URL"):
        resources["db_prod"].url()


def test_bytebase_multi_database_and_github_environments_load(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BYTEBASE_SERVICE_ACCOUNT_SECRET", "bb-secret")
    monkeypatch.setenv("GH_TOKEN", "ghs_x")
    monkeypatch.setenv("SHARDS", "postgresql://u:pw@a/db1 postgresql://u:pw@b/db2")
    cfg = parse_config(
        {
            "git": {"repo": str(tmp_path)},
            "environments": {
                "test": {"database_url_env": ["T1", "T2"]},
                "shards": {"database_urls_env": "SHARDS"},
                "prod": {"backend": "bytebase"},
            },
            "review": {"github": {"token_env": "GH_TOKEN", "repo": "acme/schemas"}},
        },
        file=tmp_path / "schema_pipeline.yaml",
    )
    defs = build_definitions(cfg)
    dg.Definitions.validate_loadable(defs)
    resources = build_resources(cfg)
    assert {"db_test", "db_test_2", "db_shards", "db_prod", "bytebase", "github"} <= set(resources)
    assert resources["db_test_2"].database_url_env == "T2"
    assert resources["bytebase"].service_account_secret.env_var_name == "BYTEBASE_SERVICE_ACCOUNT_SECRET"
    assert resources["github"].token.env_var_name == "GH_TOKEN"
    assert {s.name for s in defs.sensors} == {"schema_commit_sensor", "schema_branch_review_sensor"}
    by_key = {a.key: a for a in defs.assets}
    assert by_key[PROD].required_resource_keys - {"io_manager"} == {"bytebase", "git"}
    assert by_key[TEST].required_resource_keys - {"io_manager"} == {"git", "db_test", "db_test_2"}


def test_nothing_outside_the_dagster_layer_imports_dagster() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "definitions.py" or rel.startswith("defs/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "dagster" or n.startswith(("dagster.", "dagster_")) for n in names):
                offenders.append(rel)
    assert offenders == []


def _cfg(tmp_path: Path):
    return parse_config({"git": {"repo": str(tmp_path)}}, file=tmp_path / "schema_pipeline.yaml")


def test_dagster_cli_validates_the_code_location(tmp_path: Path) -> None:
    """`dagster definitions validate` as a deployment would run it (from outside the checkout: no .env)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(PACKAGE.parent / "workspace.yaml"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "schema-pipeline" in proc.stdout + proc.stderr
