"""The CLI contract (DESIGN.md §5) through real subprocesses: exit codes 0/1/2, messages, help."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from schema_pipeline import engine
from schema_pipeline.apply import history
from schema_pipeline_tests.test_apply_support import CLI, relations, write_state

GOOD = {"a.sql": "CREATE TABLE public.items (id bigint PRIMARY KEY, name text);\n"}


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SCHEMA_PIPELINE_DEBUG")}
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env,
                         stdin=subprocess.DEVNULL)
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr
    return out


@pytest.fixture
def good_state(tmp_path):
    return str(write_state(tmp_path / "good", GOOD))


def test_plan_check_exit_codes(make_db, good_state) -> None:
    url = make_db()
    pending = run("plan", "--database-url", url, "--state", good_state, "--check")
    assert pending.returncode == 2 and "create table public.items" in pending.stdout
    assert run("plan", "--database-url", url, "--state", good_state).returncode == 0  # without --check
    assert run("apply", "--database-url", url, "--state", good_state, "--allow-hazards", "all",
               "--yes").returncode == 0
    done = run("plan", "--database-url", url, "--state", good_state, "--check")
    assert done.returncode == 0 and "No changes" in done.stdout


def test_the_plan_sandbox_is_gone_when_the_cli_exits(make_db, good_state, monkeypatch) -> None:
    from schema_pipeline.sandbox.paths import run_base

    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", "off")  # load the state: start the sandbox
    url = make_db()
    before = set(run_base().iterdir()) if run_base().exists() else set()
    out = run("plan", "--database-url", url, "--state", good_state)
    assert out.returncode == 0, out.stderr
    assert "plan database created in the PostgreSQL" in out.stderr
    after = set(run_base().iterdir()) if run_base().exists() else set()
    assert after - before == set(), "the sandbox's run directory outlived the CLI"


def test_drift_exit_codes(make_db, good_state) -> None:
    url = make_db("CREATE TABLE public.items (id bigint PRIMARY KEY, name text)")
    assert run("drift", "--database-url", url, "--state", good_state).returncode == 0
    with __import__("psycopg").connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.items ADD COLUMN hotfix int")
    out = run("drift", "--database-url", url, "--state", good_state, "--format", "sql")
    assert out.returncode == 2 and "hotfix" in out.stdout


def test_apply_refuses_hazards_and_leaves_target_untouched(make_db, good_state) -> None:
    url = make_db("CREATE TABLE public.items (id bigint PRIMARY KEY, name text, legacy text)")
    before = engine.current_catalog(url)
    out = run("apply", "--database-url", url, "--state", good_state, "--yes")
    assert out.returncode == 1
    assert "error: the plan has hazards that were not allowed: DELETES_DATA" in out.stderr
    assert engine.current_catalog(url) == before and history.releases(url) == []
    partial = run("apply", "--database-url", url, "--state", good_state, "--allow-hazards", "INDEX_BUILD",
                  "--yes")
    assert partial.returncode == 1 and engine.current_catalog(url) == before


def test_apply_refuses_a_key_column_type_change_without_a_cast(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE public.p (id bigint PRIMARY KEY); CREATE TABLE public.c (p_id bigint REFERENCES p)")
    state = str(write_state(tmp_path / "s", {"a.sql": "CREATE TABLE public.p (id timestamp PRIMARY KEY);\n"
                                             "CREATE TABLE public.c (p_id timestamp REFERENCES p);\n"}))
    before = engine.current_catalog(url)
    out = run("apply", "--database-url", url, "--state", state, "--allow-hazards", "all", "--yes")
    assert out.returncode == 1
    assert "no cast from bigint to timestamp without time zone, and the column is part of" in out.stderr
    assert engine.current_catalog(url) == before


def test_apply_with_all_hazards_allowed_converges_and_records(make_db, good_state) -> None:
    url = make_db("CREATE TABLE public.items (id bigint PRIMARY KEY, name text, legacy text)")
    out = run("apply", "--database-url", url, "--state", good_state, "--allow-hazards", "all", "--yes",
              "--commit", "deadbeef", "--approved-by", "bob", "--lock-timeout", "2s", "--lock-retries", "1")
    assert out.returncode == 0, out.stderr
    assert "legacy" in out.stdout and "DELETES_DATA" in out.stdout
    assert run("plan", "--database-url", url, "--state", good_state, "--check").returncode == 0
    row = history.releases(url)[0]
    assert (row["status"], row["commit"], row["approved_by"]) == ("succeeded", "deadbeef", "bob")


def test_saved_plan_round_trip(make_db, good_state, tmp_path) -> None:
    url = make_db()
    out = run("plan", "--database-url", url, "--state", good_state, "--format", "json")
    assert out.returncode == 0
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(out.stdout)
    doc = json.loads(out.stdout)
    assert doc["target_fingerprint"] and doc["desired_fingerprint"] and doc["server_version"] >= 100000
    applied = run("apply", "--database-url", url, "--plan", str(plan_file), "--state", good_state,
                  "--allow-hazards", "all", "--yes", "--no-rehearsal")
    assert applied.returncode == 0, applied.stderr
    assert "public.items" in relations(url)
    again = run("apply", "--database-url", url, "--plan", str(plan_file), "--allow-hazards", "all", "--yes")
    assert again.returncode == 1 and "the target changed since the plan was made" in again.stderr


def test_saved_plan_refused_when_state_changed(make_db, good_state, tmp_path) -> None:
    url = make_db()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(run("plan", "--database-url", url, "--state", good_state, "--format", "json").stdout)
    changed = str(write_state(tmp_path / "changed", {"a.sql": GOOD["a.sql"] + "CREATE TABLE public.b (id int);"}))
    out = run("apply", "--database-url", url, "--plan", str(plan_file), "--state", changed, "--yes",
              "--allow-hazards", "all")
    assert out.returncode == 1 and "the desired state changed since the plan was made" in out.stderr
    assert relations(url) == set()


def test_apply_failure_exit_code_and_message(make_db, tmp_path) -> None:
    from schema_pipeline.plan.model import Plan, Step
    from schema_pipeline.plan.render import render_json

    url = make_db("CREATE TABLE t (id int)")
    p = Plan([Step("ALTER TABLE t ADD COLUMN c nosuchtype", "column", "public.t.c", "alter")],
             target_fingerprint=engine.current_catalog(url).fingerprint(), desired_fingerprint="x")
    plan_file = tmp_path / "bad.json"
    plan_file.write_text(render_json(p))
    out = run("apply", "--database-url", url, "--plan", str(plan_file), "--yes")
    assert out.returncode == 1
    assert "error: rehearsal failed, the target was not touched" in out.stderr
    assert 'type "nosuchtype" does not exist' in out.stderr
    out = run("apply", "--database-url", url, "--plan", str(plan_file), "--yes", "--no-rehearsal")
    assert out.returncode == 1 and "error: step 1/1 failed (alter column public.t.c)" in out.stderr


def test_review_exit_codes(tmp_path, good_state) -> None:
    assert run("review", "--state", good_state).returncode == 0
    bad = str(write_state(tmp_path / "bad", {"a.sql": 'CREATE TABLE public."BadName" (id int PRIMARY KEY);\n'}))
    out = run("review", "--state", bad, "--format", "json")
    assert out.returncode == 2 and "naming.table" in out.stdout


def test_errors_exit_1(tmp_path, good_state) -> None:
    out = run("plan", "--database-url", "postgresql://postgres@127.0.0.1:1/x", "--state", good_state, "--check")
    assert out.returncode == 1 and out.stderr.startswith("error: cannot connect to postgres@127.0.0.1:1/x")
    bad = str(write_state(tmp_path / "bad", {"a.sql": "CREATE TABLE t (id int);\nDELETE FROM t;\n"}))
    out = run("plan", "--database-url", "postgresql://postgres@127.0.0.1:1/x", "--state", bad)
    assert out.returncode == 1 and "a.sql:2" in out.stderr
    out = run("apply", "--database-url", "postgresql://postgres@127.0.0.1:1/x", "--plan",
              str(tmp_path / "missing.json"), "--yes")
    assert out.returncode == 1 and "cannot read plan file" in out.stderr


@pytest.mark.parametrize("args, needle", [
    ((), "required"),
    (("plan", "--state", "x"), "--database-url"),
    (("plan", "--database-url", "postgresql://h/x"), "--state"),
    (("plan", "--database-url", "postgresql://h/x", "--state", "x", "--format", "yaml"), "invalid choice"),
    (("apply", "--database-url", "postgresql://h/x"), "apply needs --state PATH, or --plan FILE"),
    (("apply", "--database-url", "postgresql://h/x", "--state", "x", "--lock-timeout", "soon"), "invalid lock_timeout"),
    (("apply", "--database-url", "postgresql://h/x", "--state", "x", "--lock-retries", "many"), "invalid int"),
    (("frobnicate",), "invalid choice"),
    (("plan", "--database-url", "postgresql://h/x", "--state", "x", "--bogus"), "unrecognized arguments"),
])
def test_usage_errors(args, needle) -> None:
    out = run(*args)
    assert out.returncode == 1 and needle in out.stderr, out.stderr


@pytest.mark.parametrize("command", ["plan", "apply", "drift", "review"])
def test_help_of_each_command(command) -> None:
    out = run(command, "--help")
    assert out.returncode == 0 and f"usage: schema-pipeline {command}" in out.stdout and "--state" in out.stdout


def test_top_level_help_and_version() -> None:
    out = run("--help")
    assert out.returncode == 0 and "Exit codes" in out.stdout
    assert run("--version").stdout.startswith("schema-pipeline ")


def test_review_reports_paths_relative_to_the_working_directory(tmp_path) -> None:
    """SARIF and GitHub annotations name files as the repository does (CI runs from its root)."""
    (tmp_path / "db" / "schemas").mkdir(parents=True)
    (tmp_path / "db" / "schemas" / "users.sql").write_text("CREATE TABLE Users (id int);\n")
    env = {**os.environ, "NO_COLOR": "1"}
    sarif = subprocess.run([CLI, "review", "--state", "db/schemas", "--format", "sarif"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, env=env)
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in json.loads(sarif.stdout)["runs"][0]["results"] for loc in r["locations"]}
    assert uris == {"db/schemas/users.sql"}, sarif.stdout
    gh = subprocess.run([CLI, "review", "--state", str(tmp_path / "db" / "schemas"), "--format", "github"],
                        cwd=tmp_path / "db", capture_output=True, text=True, timeout=120, env=env)
    assert "file=schemas/users.sql," in gh.stdout, gh.stdout
