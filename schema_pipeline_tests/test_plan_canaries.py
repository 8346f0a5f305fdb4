"""Untrusted state never runs on an environment's server (issue 14): hostile states with canaries.

Each state below tries to reach the target's server or the pipeline's host while it is planned: read a
file into the plan, write a file, run a program, create a table through a loopback connection, read the
pipeline's secrets. The plan runs through the CLI, as a branch review would, against a real target. A case
passes when no canary fired (no file written, no table created on the target, no secret or file content
in the output), nothing new exists on the target's server (no plan database), and the refusal, if any,
names file:line. Some cases are legitimate schema and must plan.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from schema_pipeline_tests.test_apply_support import write_state

SECRET = f"canary-secret-{uuid.uuid4().hex}"


def _plan(target: str, state: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCHEMA_PIPELINE_SECRET_CANARY": SECRET, "SCHEMA_PIPELINE_CACHE_DIR": "off"}
    return subprocess.run([sys.executable, "-m", "schema_pipeline.cli", "-q", "plan", "--database-url", target,
                           "--state", str(state), *extra], capture_output=True, text=True, env=env, timeout=120)


def _databases(admin_url: str) -> set[str]:
    """The plan databases on the target's server (the old design created them there, by this name)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return {r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'schema\\_pipeline\\_plan\\_%'").fetchall()}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchall()}


CANARY_FILE = Path("/tmp") / f"schema_pipeline_canary_{uuid.uuid4().hex}"

# (id, state text, legitimate: must plan; else it must be refused at file:line)
CASES = [
    ("operator_over_pg_read_file_in_partition_bound",
     "CREATE OPERATOR public.#> (RIGHTARG = text, FUNCTION = pg_catalog.pg_read_file);\n"
     "CREATE TABLE p (k text) PARTITION BY LIST (k);\n"
     "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (#> '/etc/passwd');\n", False),
    ("lo_export_writes_a_file",
     "CREATE TABLE p (k int) PARTITION BY LIST (k);\n"
     f"CREATE TABLE p1 PARTITION OF p FOR VALUES IN (lo_export(lo_from_bytea(0, 'x'), '{CANARY_FILE}'));\n", False),
    ("copy_to_program_through_a_volatile_function_in_a_partition_bound",
     "CREATE FUNCTION public.w(int) RETURNS int LANGUAGE plpgsql VOLATILE AS $$ BEGIN\n"
     f"  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {CANARY_FILE}'''; RETURN 1; END $$;\n"
     "CREATE TABLE p (k int) PARTITION BY LIST (k);\n"
     "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (public.w(1));\n", False),
    ("read_file_through_an_immutable_function_in_an_added_default",
     "CREATE TABLE t (a int);\n"
     "CREATE FUNCTION public.r(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN\n"
     "  RAISE EXCEPTION '%', pg_read_file('/etc/passwd'); END $$;\n"
     "CREATE INDEX t_r ON t ((public.r(a)));\n"
     "ALTER TABLE t ADD COLUMN b int DEFAULT public.r(2);\n", False),
    ("copy_to_file_through_a_domain_check",
     "CREATE FUNCTION public.c(int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$ BEGIN\n"
     f"  EXECUTE 'COPY (SELECT 1) TO ''{CANARY_FILE}'''; RETURN true; END $$;\n"
     "CREATE DOMAIN d AS int CHECK (public.c(VALUE));\n"
     "CREATE TABLE p (k d) PARTITION BY LIST (k);\n"
     "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);\n", False),
    ("dblink_loopback_into_the_target",
     "CREATE EXTENSION dblink;\n"
     "CREATE TABLE p (k int) PARTITION BY LIST (k);\n"
     "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (dblink_exec('host=127.0.0.1 dbname={db} user=postgres', "
     "'CREATE TABLE canary_table ()'));\n", False),
    ("implicit_cast_over_builtin_types",
     "CREATE FUNCTION public.to_int(text) RETURNS int LANGUAGE plpgsql VOLATILE AS $$ BEGIN\n"
     f"  EXECUTE 'COPY (SELECT 1) TO ''{CANARY_FILE}'''; RETURN 1; END $$;\n"
     "CREATE CAST (text AS int4) WITH FUNCTION public.to_int(text) AS IMPLICIT;\n"
     "CREATE TABLE p (k int) PARTITION BY LIST (k);\n"
     "CREATE TABLE p1 PARTITION OF p FOR VALUES IN ('1'::text);\n", False),
    ("event_trigger_never_fires_while_loading",
     "CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN\n"
     f"  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {CANARY_FILE}'''; END $$;\n"
     "CREATE EVENT TRIGGER on_ddl ON ddl_command_end EXECUTE FUNCTION public.on_ddl();\n"
     "CREATE TABLE after_trigger (a int);\n"
     "CREATE INDEX after_trigger_a ON after_trigger (a);\n", True),
    ("leakproof_security_definer_function_runs_as_the_loader",
     "CREATE FUNCTION public.lp(int) RETURNS int LANGUAGE plpgsql VOLATILE LEAKPROOF SECURITY DEFINER AS $$ BEGIN\n"
     f"  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {CANARY_FILE}'''; RETURN 1; END $$;\n"
     "CREATE TABLE p (k int) PARTITION BY LIST (k);\n"
     "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (public.lp(1));\n", False),
    ("c_language_function",
     "CREATE FUNCTION f() RETURNS int LANGUAGE U&\"\\0063\" AS '$libdir/dblink', 'dblink_exec';\n", False),
    ("keyword_named_function_hides_copy_program",
     "CREATE FUNCTION public.begin() RETURNS int LANGUAGE sql AS $$ select 1 $$;\n"
     f"COPY (SELECT 1) TO PROGRAM 'touch {CANARY_FILE}';\n", False),
    ("extension_membership_lifts_nothing",
     "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ select 1 $$;\n"
     "ALTER EXTENSION plpgsql ADD FUNCTION public.f();\n", False),
    ("set_schema_pg_catalog",
     "CREATE FUNCTION public.f(int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ select 1 $$;\n"
     "ALTER FUNCTION public.f(int) SET SCHEMA pg_catalog;\n", False),
    ("aggregate_initcond_reads_a_setting",
     "CREATE FUNCTION public.s(text, text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ select $1 || $2 $$;\n"
     "CREATE AGGREGATE public.a(text) (SFUNC = public.s, STYPE = text, INITCOND = 'x');\n", True),
    ("generated_column_calls_a_state_function",
     "CREATE FUNCTION public.twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ select 2 * $1 $$;\n"
     "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (public.twice(a)) STORED, "
     "c int DEFAULT public.twice(21));\n", True),
    ("secrets_of_the_pipeline_are_not_in_the_server_environment",
     "CREATE FUNCTION public.env() RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN\n"
     "  RETURN pg_read_file('/proc/self/environ'); END $$;\n"
     "CREATE TABLE p (k text) PARTITION BY LIST (k);\n"
     "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (public.env());\n", False),
]


# Why each hostile case is refused: PostgreSQL's privileges in the sandbox, or the allow-list on the parse tree.
REASONS = {
    "operator_over_pg_read_file_in_partition_bound": "permission denied for function pg_catalog.pg_read_file",
    "lo_export_writes_a_file": "permission denied for function lo_export",
    "copy_to_program_through_a_volatile_function_in_a_partition_bound": "to COPY to or from an external program",
    "read_file_through_an_immutable_function_in_an_added_default": "permission denied for function pg_read_file",
    "copy_to_file_through_a_domain_check": "role to COPY to a file",
    "dblink_loopback_into_the_target": 'permission denied to create extension "dblink"',
    "implicit_cast_over_builtin_types": "must be owner of type text or type integer",
    "leakproof_security_definer_function_runs_as_the_loader": "to COPY to or from an external program",
    "c_language_function": "untrusted language 'c'",
    "keyword_named_function_hides_copy_program": "COPY ... PROGRAM runs a shell command",
    "extension_membership_lifts_nothing": "ALTER EXTENSION ... ADD/DROP",
    "set_schema_pg_catalog": "SET SCHEMA pg_catalog",
    "secrets_of_the_pipeline_are_not_in_the_server_environment": "permission denied for function pg_read_file",
}


@pytest.mark.parametrize("case_id,text,legitimate", CASES, ids=[c[0] for c in CASES])
def test_hostile_state_fires_no_canary(case_id: str, text: str, legitimate: bool, make_db, admin_url: str,
                                       tmp_path: Path) -> None:
    target = make_db()
    text = text.replace("{db}", psycopg.conninfo.conninfo_to_dict(target)["dbname"])
    state = write_state(tmp_path / "state", {"schema.sql": text})
    before = _databases(admin_url)
    result = _plan(target, state)
    out = result.stdout + result.stderr
    assert not CANARY_FILE.exists(), f"{case_id}: a file was written on the host\n{out}"
    assert "canary_table" not in _tables(target), f"{case_id}: the loopback connection created a table"
    assert "root:" not in out and SECRET not in out, f"{case_id}: file content or a secret reached the output"
    assert _databases(admin_url) - before == set(), "the plan created a database on the target's server"
    if legitimate:
        assert result.returncode == 0, out
    else:
        assert result.returncode == 1, out
        assert "Traceback" not in out
        assert "schema.sql:" in out, f"{case_id}: the refusal names no file:line\n{out}"
        assert REASONS[case_id] in out, f"{case_id}: refused, but not for the reason expected\n{out}"


def test_branch_review_creates_nothing_on_the_target_server(make_db, admin_url: str, tmp_path: Path) -> None:
    """A plan (what the branch review runs per environment) leaves no database, role or object behind."""
    target = make_db("CREATE TABLE kept (a int);")
    state = write_state(tmp_path / "s", {"a.sql": "CREATE TABLE kept (a int, b text);\nCREATE TABLE added ();\n"})
    with psycopg.connect(admin_url, autocommit=True) as conn:
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
    before = _databases(admin_url)
    result = _plan(target, state, "--format", "sql")
    assert result.returncode == 0, result.stderr
    assert 'ADD COLUMN "b" text' in result.stdout and 'CREATE TABLE "public"."added"' in result.stdout
    assert _databases(admin_url) == before
    assert _tables(target) == {"kept"}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        assert {r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()} == roles


def test_a_role_the_target_lacks_is_named_at_file_line(make_db, tmp_path: Path) -> None:
    target = make_db()
    state = write_state(tmp_path / "s", {"a.sql": "CREATE TABLE t (a int);\n\nALTER TABLE t OWNER TO nobody_here_x;\n"})
    result = _plan(target, state)
    assert result.returncode == 1
    assert "a.sql:3" in result.stderr and "nobody_here_x" in result.stderr


def test_declared_owner_and_grants_plan_and_converge(make_db, admin_url: str, tmp_path: Path) -> None:
    role = f"sp_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        target = make_db()
        state = write_state(tmp_path / "s", {"a.sql": f"CREATE TABLE t (a int);\nALTER TABLE t OWNER TO {role};\n"
                                                       f"GRANT SELECT ON t TO PUBLIC;\n"})
        env = {**os.environ, "SCHEMA_PIPELINE_CACHE_DIR": "off"}
        cli = [sys.executable, "-m", "schema_pipeline.cli", "-q"]
        applied = subprocess.run([*cli, "apply", "--database-url", target, "--state", str(state),
                                  "--allow-hazards", "all", "--yes"], capture_output=True, text=True, env=env)
        assert applied.returncode == 0, applied.stderr
        again = subprocess.run([*cli, "plan", "--database-url", target, "--state", str(state), "--check"],
                               capture_output=True, text=True, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 't'").fetchone()[0] == role
    finally:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


def test_a_role_with_only_connect_can_plan(make_db, admin_url: str, tmp_path: Path) -> None:
    """The branch review and drift need to read the target only: a role without any privilege plans."""
    reader = f"sp_reader_{uuid.uuid4().hex[:8]}"
    target = make_db("CREATE TABLE secret_data (a int); INSERT INTO secret_data VALUES (1);")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {reader} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    try:
        params = {k: v for k, v in psycopg.conninfo.conninfo_to_dict(target).items() if k not in ("user", "password")}
        url = psycopg.conninfo.make_conninfo(**params, user=reader)
        state = write_state(tmp_path / "s", {"a.sql": "CREATE TABLE secret_data (a int, b int);\n"})
        result = _plan(url, state, "--format", "sql")
        assert result.returncode == 0, result.stderr
        assert 'ADD COLUMN "b" integer' in result.stdout
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {reader}")


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_a_plan_killed_while_loading_leaves_no_sandbox_beyond_the_next_run(sig: str, make_db, tmp_path: Path) -> None:
    """SIGTERM: the sandbox is stopped and removed before the CLI dies. SIGKILL: the server dies with the CLI
    and the next run's sweep removes its directory."""
    import signal
    import time

    from schema_pipeline.sandbox.paths import run_bases

    def run_dirs(pid: int) -> set[Path]:
        """The run directories of process `pid`'s sandboxes (other processes may plan meanwhile)."""
        return {d for base in run_bases() if base.exists() for d in base.glob(f"{pid}-*")}

    def postmasters(pid: int) -> set[int]:
        out = subprocess.run(["pgrep", "-f", f"schema_pipeline-sandbox-[0-9]+/{pid}-"], capture_output=True,
                             text=True).stdout
        return {int(p) for p in out.split()}

    target = make_db()
    tables = "".join(f"CREATE TABLE t{i} (id int PRIMARY KEY, v text, w int CHECK (w > 0));\n" for i in range(3000))
    state = write_state(tmp_path / "s", {"a.sql": tables})
    env = {**os.environ, "SCHEMA_PIPELINE_CACHE_DIR": "off", "TERM": "dumb"}
    proc = subprocess.Popen([sys.executable, "-m", "schema_pipeline.cli", "plan", "--database-url", target,
                             "--state", str(state)], stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the sandbox is loading the state
        if "loading the state" in line:
            break
    assert run_dirs(proc.pid) and postmasters(proc.pid), "the plan's sandbox should be running now"
    os.kill(proc.pid, getattr(signal, sig))
    proc.wait(30)
    deadline = time.monotonic() + 10
    while postmasters(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postmasters(proc.pid) == set(), "the sandbox's server outlived the plan"
    if sig == "SIGKILL":  # the next run sweeps what the killed one left
        assert _plan(target, write_state(tmp_path / "small", {"a.sql": "CREATE TABLE x ();\n"})).returncode == 0
    assert run_dirs(proc.pid) == set(), "the sandbox's directory outlived the next run"
