"""A password in every database URL never shows up in output, errors, plan files or bookkeeping.

The local test server uses trust authentication, so the password is not checked; it still
travels in every URL given to the CLI, which is what this test is about.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from schema_pipeline import engine
from schema_pipeline.apply import history
from schema_pipeline.plan.model import Plan, Step
from schema_pipeline.plan.render import render_json
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import Collect, write_state
from schema_pipeline_tests.test_cli import run

PASSWORD = "Xq7-s3cret_pw.zz9"
STATE = {"a.sql": "CREATE TABLE public.items (id bigint PRIMARY KEY, name text);\n"}


@pytest.fixture
def secret_url(admin_url: str) -> Iterator[str]:
    """A database owned by a role with a password; the URL carries the password."""
    suffix = uuid.uuid4().hex[:10]
    role, dbname = f"sp_secret_{suffix}", f"sp_secret_db_{suffix}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(PASSWORD)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
            sql.Identifier(dbname), sql.Identifier(role)))
    try:
        yield f"postgresql://{role}:{PASSWORD}@127.0.0.1:5432/{dbname}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            for (name,) in conn.execute("SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                                        "WHERE r.rolname = %s", (role,)).fetchall():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def _cli(*args: str):
    out = run(*args)
    _assert_clean(out.stdout, out.stderr)
    return out


def test_password_never_printed_by_the_cli(secret_url: str, tmp_path) -> None:
    state = str(write_state(tmp_path / "s", STATE))
    base = secret_url.rsplit("/", 1)[0]
    for fmt in ("human", "sql", "json"):
        assert _cli("plan", "--database-url", secret_url, "--state", state, "--format", fmt).returncode == 0
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(_cli("plan", "--database-url", secret_url, "--state", state, "--format", "json").stdout)
    assert _cli("drift", "--database-url", secret_url, "--state", state).returncode == 2
    assert _cli("review", "--state", state, "--database-url", secret_url).returncode in (0, 2)
    out = _cli("apply", "--database-url", secret_url, "--plan", str(plan_file), "--state", state,
               "--plan-database-url", secret_url, "--allow-hazards", "all", "--yes")
    assert out.returncode == 0, out.stderr
    assert _cli("apply", "--database-url", secret_url, "--state", state, "--allow-hazards", "all",
                "--yes").returncode == 0
    assert _cli("plan", "--database-url", secret_url, "--state", state, "--check").returncode == 0
    # failure paths: refused saved plan, bad URLs, unreachable server, state error
    assert _cli("apply", "--database-url", secret_url, "--plan", str(plan_file), "--allow-hazards", "all",
                "--yes").returncode == 1
    for url in (f"{base}/no_such_database_here", secret_url.replace(":5432/", ":1/"),
                secret_url + "?sslmode=bogus", secret_url + "?target_session_attrs=bogus",
                secret_url.replace("@127.0.0.1", "@[::1"), secret_url.replace("127.0.0.1", "no-such-host.invalid")):
        for command in (("plan", "--check"), ("drift",), ("apply", "--yes", "--allow-hazards", "all")):
            out = _cli(command[0], "--database-url", url, "--state", state, *command[1:])
            assert out.returncode == 1 and out.stderr.startswith("error:"), (url, out.stderr)
        out = _cli("review", "--state", state, "--database-url", url)
        assert out.returncode == 1
    bad_state = str(write_state(tmp_path / "bad", {"a.sql": "DELETE FROM items;\n"}))
    assert _cli("plan", "--database-url", secret_url, "--state", bad_state).returncode == 1
    # the plan file itself
    _assert_clean(plan_file.read_text())


def test_password_never_in_apply_failures_progress_or_bookkeeping(secret_url: str, tmp_path) -> None:
    with psycopg.connect(secret_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
    failing = Plan([Step("ALTER TABLE t ADD COLUMN c nosuchtype", "column", "public.t.c", "alter"),
                    Step("SELECT 'postgresql://u:hunter2@db/x'::int", "table", "public.t", "alter")],
                   target_fingerprint=engine.current_catalog(secret_url).fingerprint(), desired_fingerprint="x")
    plan_file = tmp_path / "bad.json"
    plan_file.write_text(render_json(Plan(failing.steps[:1], failing.target_fingerprint, "x")))
    for extra in ((), ("--no-rehearsal",)):
        out = _cli("apply", "--database-url", secret_url, "--plan", str(plan_file), "--yes", *extra)
        assert out.returncode == 1 and "nosuchtype" in out.stderr
    progress = Collect()
    with pytest.raises(Exception) as info:
        engine.apply_plan(secret_url, failing, allow_hazards="all", progress=progress, rehearse=True, release_info={"commit": "c1"})
    _assert_clean(str(info.value), progress.text())
    echoed = Plan(failing.steps[1:], failing.target_fingerprint, "x")
    with pytest.raises(Exception) as info:  # PostgreSQL echoes the literal; URL passwords are scrubbed
        engine.apply_plan(secret_url, echoed, allow_hazards="all", progress=progress, rehearse=False, release_info={"commit": "c1"})
    assert "invalid input syntax" in str(info.value) and "hunter2" not in str(info.value)
    state = load_state(str(write_state(tmp_path / "s", STATE)))
    result = engine.apply(secret_url, state, allow_hazards="all", progress=progress,
                          plan_db_url=secret_url, release_info={"commit": "c0ffee"})
    assert result.converged
    _assert_clean(progress.text(), json.dumps(result.plan.to_dict()))
    rows = history.releases(secret_url)
    assert rows and any(r["status"] == "failed" for r in rows)
    _assert_clean(json.dumps(rows, default=str))
