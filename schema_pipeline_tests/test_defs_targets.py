"""Release bookkeeping from Dagster and environments of several databases (real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg

from schema_pipeline.config import parse_config
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline_tests.test_defs_pipeline import (
    PASSWORD,
    PROD,
    TEST,
    all_event_text,
    failure_text,
    tables,
    with_password,
)
from schema_pipeline_tests.test_git import TempRepo, temp_repo  # noqa: F401  (fixture)

STATE_SQL = "CREATE TABLE public.t (id bigint PRIMARY KEY, name text NOT NULL);\n"
# Duplicate ids: adding the primary key fails on this database only (the rehearsal has no data).
BROKEN_SQL = (
    "CREATE TABLE public.t (id bigint, name text NOT NULL); INSERT INTO public.t VALUES (1, 'a'), (1, 'b');"
)


def releases(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, commit, approved_by, status, info->>'environment', info->>'run_id', info->>'reason' "
            "FROM schema_pipeline.releases ORDER BY id"
        ).fetchall()


def run_job(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, **kw) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False, **kw)


def test_each_release_is_recorded_in_the_target(
    temp_repo: TempRepo,  # noqa: F811
    make_db,
    tmp_path: Path,
    monkeypatch,
) -> None:
    test_db, prod_db = make_db(), make_db()
    monkeypatch.setenv("SCHEMA_PIPELINE_TEST_URL", with_password(test_db))
    monkeypatch.setenv("SCHEMA_PIPELINE_PROD_URL", with_password(prod_db))
    sha = temp_repo.commit({"schemas/t.sql": STATE_SQL})
    defs = build_definitions(parse_config({"git": {"repo": str(temp_repo.path)}}, file=tmp_path / "x.yaml"))
    with dg.instance_for_test() as instance:
        first = run_job(defs, "schema_to_test", instance)
        assert first.success, failure_text(first)
        test_mat = next(
            m.materialization for m in first.get_asset_materialization_events() if m.asset_key == TEST
        )
        (row,) = releases(test_db)
        assert test_mat.metadata["release_id"].value == row[0]
        assert row[1:6] == (sha, None, "succeeded", "test", first.run_id)
        prod = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            run_config={
                "ops": {
                    "release__prod": {
                        "config": {"approved_by": "carol", "expected_commit_sha": sha, "reason": "CHG-9"}
                    }
                }
            },
            instance=instance,
            asset_selection=[PROD],
            raise_on_error=False,
        )
        assert prod.success, failure_text(prod)
        (prow,) = releases(prod_db)
        assert prow[1:] == (sha, "carol", "succeeded", "prod", prod.run_id, "CHG-9")
        prod_mat = prod.get_asset_materialization_events()[0].materialization
        assert prod_mat.metadata["release_id"].value == prow[0]
        assert PASSWORD not in all_event_text(instance)


def test_environment_of_three_databases_one_broken(
    temp_repo: TempRepo,  # noqa: F811
    make_db,
    tmp_path: Path,
    monkeypatch,
) -> None:
    good1, broken, good2 = make_db(), make_db(BROKEN_SQL), make_db()
    monkeypatch.setenv("SHARD_A", with_password(good1))
    monkeypatch.setenv("SHARD_B", with_password(broken))
    monkeypatch.setenv("SHARD_C", with_password(good2))
    temp_repo.commit({"schemas/t.sql": STATE_SQL})
    cfg = parse_config(
        {
            "git": {"repo": str(temp_repo.path)},
            "environments": {
                "test": {"database_url_env": ["SHARD_A", "SHARD_B", "SHARD_C"], "max_parallel": 2}
            },
        },
        file=tmp_path / "x.yaml",
    )
    defs = build_definitions(cfg)
    with dg.instance_for_test() as instance:
        result = run_job(defs, "schema_to_test", instance)
        assert not result.success
        text = failure_text(result)
        broken_name = broken.rsplit("/", 1)[1]
        assert "failed on 1 of 3 database(s)" in text and broken_name in text
        assert good1.rsplit("/", 1)[1] not in text.split("failed on", 1)[1]
        assert PASSWORD not in text and PASSWORD not in all_event_text(instance)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        table = failure.step_failure_data.user_failure_data.metadata["databases"]
        status = {r.data["database"].rsplit("/", 1)[1]: r.data["status"] for r in table.records}
        assert status == {
            good1.rsplit("/", 1)[1]: "succeeded",
            broken_name: "failed",
            good2.rsplit("/", 1)[1]: "succeeded",
        }
        assert "t" in tables(good1) and "t" in tables(good2)
        assert len(releases(good1)) == 1 and len(releases(good2)) == 1

        # drift over all three: the healthy ones match, the broken one drifted (its t has no PK)
        with psycopg.connect(good2, autocommit=True) as conn:
            conn.execute("ALTER TABLE public.t ADD COLUMN extra text")
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=TEST, tags={"schema/commit": temp_repo.git("rev-parse", "HEAD")}
            )
        )
        drift = run_job(defs, "drift_checks", instance)
        (ev,) = drift.get_asset_check_evaluations()
        assert not ev.passed and ev.metadata["drifted_databases"].value == 2
        rows = {
            r.data["database"].rsplit("/", 1)[1]: r.data["status"]
            for r in ev.metadata["databases"].value.records
        }
        assert rows[good1.rsplit("/", 1)[1]] == "succeeded" and rows[good2.rsplit("/", 1)[1]] == "drifted"
        assert "extra" in ev.metadata["correction_sql"].value


def test_one_variable_holding_several_urls(make_db, tmp_path: Path, monkeypatch, temp_repo: TempRepo) -> None:  # noqa: F811
    a, b = make_db(), make_db()
    monkeypatch.setenv("SHARD_URLS", f"{with_password(a)}\n  {with_password(b)}\n")
    temp_repo.commit({"schemas/t.sql": STATE_SQL})
    cfg = parse_config(
        {"git": {"repo": str(temp_repo.path)}, "environments": {"test": {"database_urls_env": "SHARD_URLS"}}},
        file=tmp_path / "x.yaml",
    )
    defs = build_definitions(cfg)
    with dg.instance_for_test() as instance:
        result = run_job(defs, "schema_to_test", instance)
        assert result.success, failure_text(result)
        mat = next(
            m.materialization for m in result.get_asset_materialization_events() if m.asset_key == TEST
        )
        records = mat.metadata["databases"].value.records
        assert len(records) == 2
        assert mat.metadata["steps_applied"].value == sum(r.data["steps"] for r in records) > 0
        assert records[0].data["steps"] == records[1].data["steps"]
        assert "t" in tables(a) and "t" in tables(b)
        assert PASSWORD not in all_event_text(instance)
