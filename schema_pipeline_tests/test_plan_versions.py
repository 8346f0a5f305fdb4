"""The plan sandbox runs the target's major version, from the binaries on this host, and never another.

This machine has PostgreSQL 15 (the distribution's, serving the suite) and 16 (the `pgserver` package):
a target of each is planned in a sandbox of its own version, and views, whose rendering differs between
majors, converge. A major without binaries is a clear error, not a fallback.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from schema_pipeline import plandb
from schema_pipeline.db import with_database
from schema_pipeline.sandbox import ServerBinariesNotFound, installed_majors
from schema_pipeline_tests.test_apply_support import write_state

VIEWS = ("CREATE TABLE t (id int PRIMARY KEY, v int, w text);\n"
         "CREATE VIEW by_id AS SELECT t.id, t.v, count(*) AS n FROM t GROUP BY t.id;\n"
         "CREATE VIEW named AS SELECT w AS label, v + 1 AS next FROM t WHERE v IN (1, 2, 3);\n")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCHEMA_PIPELINE_CACHE_DIR": "off"}
    return subprocess.run([sys.executable, "-m", "schema_pipeline.cli", *args], capture_output=True, text=True,
                          env=env, timeout=180)


def _apply_and_replan(url: str, state: Path) -> subprocess.CompletedProcess:
    applied = _cli("apply", "--database-url", url, "--state", str(state), "--allow-hazards", "all", "--yes")
    assert applied.returncode == 0, applied.stderr
    return _cli("plan", "--database-url", url, "--state", str(state), "--check")


def test_a_15_target_is_planned_in_a_15_sandbox_and_views_converge(make_db, tmp_path: Path) -> None:
    url = make_db()
    with psycopg.connect(url) as conn:
        major = conn.info.server_version // 10000
    state = write_state(tmp_path / "s", {"v.sql": VIEWS})
    result = _cli("plan", "--database-url", url, "--state", str(state))
    assert result.returncode == 0, result.stderr
    assert f"in the PostgreSQL {major}." in result.stderr
    again = _apply_and_replan(url, state)
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.fixture(scope="module")
def server16(tmp_path_factory: pytest.TempPathFactory):
    """A PostgreSQL 16 server (pgserver), stopped after the module."""
    if importlib.util.find_spec("pgserver") is None or 16 not in installed_majors():
        pytest.skip("needs the pgserver package (PostgreSQL 16)")
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg16"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


def test_a_16_target_is_planned_in_a_16_sandbox_and_views_converge(server16: str, tmp_path: Path) -> None:
    admin = server16
    with psycopg.connect(admin, autocommit=True) as conn:
        assert conn.info.server_version // 10000 == 16
        conn.execute("CREATE DATABASE versions16")
    url = with_database(admin, "versions16")
    state = write_state(tmp_path / "s", {"v.sql": VIEWS})
    result = _cli("plan", "--database-url", url, "--state", str(state))
    assert result.returncode == 0, result.stderr
    assert "PostgreSQL 16." in result.stderr
    again = _apply_and_replan(url, state)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_major_without_binaries_is_a_clear_error_and_no_fallback() -> None:
    with pytest.raises(ServerBinariesNotFound) as info, plandb.plan_database(9, ()):
        pass
    message = str(info.value)
    assert "no PostgreSQL 9 server binaries" in message
    assert "--plan-database-url" in message and "never uses another major version" in message


def test_a_planning_server_of_another_major_is_refused(server16: str, make_db, tmp_path: Path) -> None:
    """--plan-database-url on a server of another major than the target: refused, nothing loaded."""
    other = server16
    url = make_db()
    state = write_state(tmp_path / "s", {"a.sql": "CREATE TABLE a (id int);\n"})
    result = _cli("plan", "--database-url", url, "--state", str(state), "--plan-database-url", other)
    assert result.returncode == 1
    assert "runs PostgreSQL 16, the target 15" in result.stderr and "Traceback" not in result.stderr
