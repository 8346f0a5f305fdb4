"""The demo's building blocks against the real test server, and the shipped instance config."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import psycopg

from schema_pipeline import demo
from schema_pipeline.config import project_root
from schema_pipeline_tests.conftest import drop_database


def test_database_url_keeps_the_socket_query() -> None:
    admin = "postgresql://postgres:@/postgres?host=/work/main/.pgdata"
    url = demo.database_url(admin, "hr_test")
    assert url == "postgresql://postgres:@/hr_test?host=/work/main/.pgdata"
    assert demo.socket_dir(url) == "/work/main/.pgdata"


def test_ensure_database_and_apply_sample_are_idempotent(admin_url: str, capsys) -> None:
    name = f"sp_demo_{uuid.uuid4().hex[:8]}"
    try:
        url, created = demo.ensure_database(admin_url, name)
        assert created
        demo.apply_sample(url, project_root() / "schemas", name)
        with psycopg.connect(url) as conn:
            n = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()[0]
        assert n >= 8  # 7 tables + views
        again_url, created_again = demo.ensure_database(admin_url, name)
        assert (again_url, created_again) == (url, False)
        demo.apply_sample(url, project_root() / "schemas", name)
        assert "already at the sample schema" in capsys.readouterr().out
    finally:
        drop_database(demo.database_url(admin_url, name))


def test_dagster_home_gets_a_valid_instance_config(tmp_path: Path) -> None:
    home = tmp_path / ".dagster_home"
    demo.write_dagster_home(home, project_root())
    text = (home / "dagster.yaml").read_text()
    assert "telemetry" in text and "max_concurrent_runs" in text
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert "Sqlite" in type(instance.run_storage).__name__
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    finally:
        instance.dispose()
