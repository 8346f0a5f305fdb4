"""The shipped deployment files load, and the UI polish of `definitions.py` is on every asset.

- `dagster.yaml` (SQLite) and `deploy/dagster-postgres.yaml` are valid Dagster 1.13 instance
  configuration; the PostgreSQL profile really creates Dagster's storage in a fresh database
  (with `scheme: postgresql+psycopg2`, which SQLAlchemy 2.1 needs);
- every asset has a code reference, kinds and owners; `SCHEMA_PIPELINE_SOURCE_URL` turns the
  references into links to the git host.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest
import yaml
from dagster._core.definitions.metadata.source_code import LocalFileCodeReference, UrlCodeReference

from schema_pipeline.config import parse_config
from schema_pipeline.defs.pipeline import build_definitions

ROOT = Path(__file__).resolve().parent.parent


def test_dagster_yaml_limits_prod_releases_and_keeps_sqlite(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        queue = instance.get_concurrency_config().run_queue_config
        assert {"key": "schema/env", "value": "prod", "limit": 1} in queue.tag_concurrency_limits
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled


def test_postgres_profile_creates_dagster_storage(make_db, tmp_path: Path, monkeypatch) -> None:
    url = urlsplit(make_db())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_HOST", url.hostname or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_DB", url.path.lstrip("/"))
    profile = yaml.safe_load((ROOT / "deploy" / "dagster-postgres.yaml").read_text())
    db = profile["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    db["port"] = url.port or 5432
    db["params"] = {"sslmode": "prefer"}  # the test server has no TLS; the profile requires it
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(profile))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs() == []
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    with psycopg.connect(url.geturl()) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables


@pytest.fixture
def polished(tmp_path: Path):
    from schema_pipeline.definitions import polish

    cfg = parse_config({"git": {"repo": str(tmp_path)}}, file=tmp_path / "schema_pipeline.yaml")
    return lambda: polish(build_definitions(cfg), owners=list(cfg.owners))


def test_every_asset_has_code_reference_kinds_and_owners(polished, monkeypatch) -> None:
    monkeypatch.delenv("SCHEMA_PIPELINE_SOURCE_URL", raising=False)
    defs = polished()
    dg.Definitions.validate_loadable(defs)
    specs = list(defs.resolve_all_asset_specs())
    assert {s.key.to_user_string() for s in specs} >= {
        "schema/state",
        "schema/review",
        "release/test",
        "release/prod",
    }
    for spec in specs:
        refs = spec.metadata["dagster/code_references"].code_references
        assert refs and isinstance(refs[0], LocalFileCodeReference), spec.key
        assert Path(refs[0].file_path).is_file() and refs[0].line_number > 0
        assert {"postgres", "sql"} <= set(spec.kinds), spec.key
        assert spec.owners, spec.key
    # the jobs and the sensor still target the polished assets
    assert defs.resolve_job_def("schema_to_test").asset_layer.executable_asset_keys


def test_source_url_turns_code_references_into_links(polished, monkeypatch) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_SOURCE_URL", "https://github.com/acme/schema-pipeline.git")
    monkeypatch.setenv("SCHEMA_PIPELINE_SOURCE_BRANCH", "release")
    for spec in polished().resolve_all_asset_specs():
        ref = spec.metadata["dagster/code_references"].code_references[0]
        assert isinstance(ref, UrlCodeReference)
        assert ref.url.startswith(
            "https://github.com/acme/schema-pipeline/tree/release/schema_pipeline/defs/"
        )
        assert "#L" in ref.url
