"""The plan sandbox (issue 14): real PostgreSQL servers of each installed major version, nothing mocked.

The sandbox is a security boundary: the tests act as the untrusted state would (as the loader role) and
check what PostgreSQL refuses, and they check the boundary around the server (no TCP, no inherited
environment, not root, cleaned up after a SIGKILL).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.sandbox import (
    LOADER,
    SANDBOX_ADMIN,
    Sandbox,
    ServerBinariesNotFound,
    close_all,
    find_server_binaries,
    installed_majors,
    sandbox_for,
    sweep,
)
from schema_pipeline.sandbox.owner import OWNER_FILE
from schema_pipeline.sandbox.paths import cache_root
from schema_pipeline.sandbox.template import ensure_template
from schema_pipeline.sandbox.user import sandbox_user

MAJORS = (15, 16)  # 15 from the distribution, 16 bundled with pgserver
ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def _drop_templates_of_the_suites_cache() -> Iterator[None]:
    """The suite's cache is a new temporary directory per session (conftest): do not leave templates in it."""
    yield
    root = cache_root()
    if root is not None and root.parent.name.startswith("schema_pipeline_cache_"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=MAJORS, ids=lambda m: f"pg{m}")
def major(request: pytest.FixtureRequest) -> int:
    if request.param not in installed_majors():
        pytest.skip(f"PostgreSQL {request.param} server binaries are not installed here")
    return request.param


@pytest.fixture
def sandbox(major: int) -> Sandbox:
    return sandbox_for(major)


@pytest.fixture
def loader_db(sandbox: Sandbox) -> Iterator[str]:
    url = sandbox.create_database(roles=["app_owner", "app_reader"])
    yield url
    sandbox.drop_database(url)


def _scalar(url: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def _available(sandbox: Sandbox, extension: str) -> bool:
    return bool(_scalar(sandbox.admin_url(), "SELECT count(*) FROM pg_available_extensions WHERE name = %s",
                        (extension,)))


def _child(code: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A Python child process running `code` (with this repository importable)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


# --- finding server binaries ----------------------------------------------------------------------------


def test_both_majors_are_found_with_their_full_versions() -> None:
    majors = installed_majors()
    assert 16 in majors, "pgserver (a dependency) bundles PostgreSQL 16"
    if Path("/usr/lib/postgresql/15/bin/postgres").exists():
        assert 15 in majors
    for number, binaries in majors.items():
        assert binaries.major == number and binaries.version.startswith(f"{number}.")
        assert find_server_binaries(number) == binaries
        assert (binaries.bindir / "postgres").is_file()


def test_a_missing_major_is_a_clear_error_naming_what_exists_and_how_to_install() -> None:
    with pytest.raises(ServerBinariesNotFound) as info:
        find_server_binaries(9)
    message = str(info.value)
    assert isinstance(info.value, SchemaPipelineError)
    assert "no PostgreSQL 9 server binaries" in message
    assert "apt install postgresql-9" in message and "dnf install postgresql9-server" in message
    assert "brew install postgresql@9" in message and "--plan-database-url" in message
    for binaries in installed_majors().values():
        assert binaries.version in message


def test_an_explicit_bin_dir_of_another_major_is_refused_never_used() -> None:
    sixteen = find_server_binaries(16)
    with pytest.raises(ServerBinariesNotFound, match=r"holds PostgreSQL 16\.\d+, not 15"):
        find_server_binaries(15, bin_dir=str(sixteen.bindir))
    with pytest.raises(ServerBinariesNotFound, match="holds no PostgreSQL server"):
        find_server_binaries(16, bin_dir="/nonexistent/bin")
    assert find_server_binaries(16, bin_dir=str(sixteen.bindir)) == sixteen
    assert "pip install pgserver" in str(ServerBinariesNotFound(16, {}))


# --- the server ---------------------------------------------------------------------------------------------


def test_each_major_starts_and_reports_its_version(sandbox: Sandbox, major: int) -> None:
    binaries = find_server_binaries(major)
    assert (sandbox.major, sandbox.version) == (major, binaries.version)
    version = _scalar(sandbox.admin_url(), "SHOW server_version")
    assert str(version).split()[0] == binaries.version
    assert _scalar(sandbox.admin_url(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is True


def test_the_server_listens_on_no_tcp_port(sandbox: Sandbox) -> None:
    assert _scalar(sandbox.admin_url(), "SHOW listen_addresses") == ""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=sandbox.port, user=SANDBOX_ADMIN, dbname="postgres",
                        connect_timeout=3).close()
    sockets = set()
    for fd in Path(f"/proc/{sandbox.pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            sockets.add(target[8:-1])
    tcp = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{sandbox.pid}/net/{table}")
        if path.exists():
            tcp |= {line.split()[9] for line in path.read_text().splitlines()[1:]}
    assert sockets and not sockets & tcp  # it has its Unix socket, and no TCP socket at all
    if sandbox.isolated_network:
        assert os.readlink(f"/proc/{sandbox.pid}/ns/net") != os.readlink("/proc/self/ns/net")


def test_the_server_inherits_none_of_the_callers_environment(monkeypatch: pytest.MonkeyPatch,
                                                             major: int) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_SECRET_CANARY", "canary-7f3a9c")
    with Sandbox.start(find_server_binaries(major)) as sandbox:
        environ = Path(f"/proc/{sandbox.pid}/environ").read_bytes()
        assert b"canary-7f3a9c" not in environ and b"SCHEMA_PIPELINE" not in environ
        assert b"PATH=" not in environ and b"HOME=" not in environ
        seen_by_backend = _scalar(sandbox.admin_url(), "SELECT pg_read_binary_file('/proc/self/environ')")
        assert b"canary-7f3a9c" not in bytes(seen_by_backend)


@pytest.mark.skipif(not ROOT, reason="the switch to an unprivileged user happens when the pipeline is root")
def test_run_as_root_the_server_runs_as_an_unprivileged_user(sandbox: Sandbox) -> None:
    status = Path(f"/proc/{sandbox.pid}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    gids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Gid:"))
    groups = next(line.split()[1:] for line in status.splitlines() if line.startswith("Groups:"))
    user = sandbox_user()
    assert user is not None and "0" not in uids + gids + groups
    assert set(uids) == {str(user.uid)}


@pytest.mark.skipif(not ROOT, reason="peer authentication is used when the server runs as another user")
def test_other_processes_of_the_sandbox_user_cannot_log_in(sandbox: Sandbox) -> None:
    user = sandbox_user()
    assert user is not None
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, psycopg; psycopg.connect(sys.argv[1]).close()", sandbox.admin_url()],
        capture_output=True, text=True, user=user.uid, group=user.gid, extra_groups=[], cwd="/", timeout=60)
    assert probe.returncode != 0 and "Peer authentication failed" in probe.stderr


# --- the loader role ----------------------------------------------------------------------------------------

FORBIDDEN = {
    "copy to program": "COPY (SELECT 1) TO PROGRAM 'touch /tmp/schema_pipeline_canary_program'",
    "copy from file": "COPY t FROM '/etc/passwd'",
    "read a file": "SELECT pg_read_file('/etc/passwd')",
    "read a binary file": "SELECT pg_read_binary_file('/etc/passwd')",
    "list a directory": "SELECT pg_ls_dir('.')",
    "large-object export": "SELECT lo_export(lo_from_bytea(0, 'x'::bytea), '/tmp/schema_pipeline_canary_lo')",
    "large-object import": "SELECT lo_import('/etc/passwd')",
    "C function": "CREATE FUNCTION f() RETURNS int LANGUAGE c AS '$libdir/plpgsql', 'plpgsql_call_handler'",
    "internal function": "CREATE FUNCTION g(cstring) RETURNS int LANGUAGE internal AS 'int4in'",
    "custom language": "CREATE TRUSTED LANGUAGE mine HANDLER plpgsql_call_handler",
    "alter system": "ALTER SYSTEM SET log_min_messages = debug5",
    "superuser setting": "SET session_preload_libraries = 'plpgsql'",
    "create role": "CREATE ROLE intruder",
    "create database": "CREATE DATABASE intruder",
    "become the admin": f"SET ROLE {SANDBOX_ADMIN}",
    "grant a predefined role": f"GRANT pg_execute_server_program TO {LOADER}",
    "own as the admin": f"ALTER TABLE t OWNER TO {SANDBOX_ADMIN}",
    "event trigger": "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION pg_catalog.now()",
    "tablespace": "CREATE TABLESPACE ts LOCATION '/tmp'",
    "subscription": "CREATE SUBSCRIPTION s CONNECTION 'dbname=postgres' PUBLICATION p",
    "become superuser": f"ALTER ROLE {LOADER} SUPERUSER",
    "load a library": "LOAD '/usr/lib/postgresql/15/lib/plpgsql.so'",
}


@pytest.mark.parametrize("attempt", sorted(FORBIDDEN))
def test_the_loader_is_refused_what_only_a_superuser_may_do(loader_db: str, attempt: str) -> None:
    with psycopg.connect(loader_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (line text)")
        with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedObject, errors.UndefinedFile)):
            conn.execute(FORBIDDEN[attempt])
        assert conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone() == (LOADER, False)
    assert not Path("/tmp/schema_pipeline_canary_program").exists()
    assert not Path("/tmp/schema_pipeline_canary_lo").exists()


@pytest.mark.parametrize("extension", ["dblink", "file_fdw", "adminpack", "postgres_fdw"])
def test_the_loader_cannot_create_untrusted_extensions(sandbox: Sandbox, loader_db: str, extension: str) -> None:
    available = _available(sandbox, extension)
    with psycopg.connect(loader_db, autocommit=True) as conn:
        expected = errors.InsufficientPrivilege if available else (errors.UndefinedFile, errors.FeatureNotSupported)
        with pytest.raises(expected):
            conn.execute(f"CREATE EXTENSION {extension}")
    if not available:
        pytest.skip(f"{extension} is not shipped with PostgreSQL {sandbox.version} here (refused anyway)")


def test_the_loader_can_create_trusted_extensions(sandbox: Sandbox, loader_db: str) -> None:
    if not _available(sandbox, "pg_trgm"):
        pytest.skip(f"pg_trgm is not shipped with these PostgreSQL {sandbox.version} binaries")
    with psycopg.connect(loader_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_trgm")
        assert conn.execute("SELECT similarity('abc', 'abd') > 0").fetchone() == (True,)


def test_the_loader_owns_its_database_and_can_hand_objects_to_the_given_roles(loader_db: str) -> None:
    with psycopg.connect(loader_db, autocommit=True) as conn:
        owner, public_owner = conn.execute(
            "SELECT pg_get_userbyid(d.datdba), pg_get_userbyid(n.nspowner) FROM pg_database d, pg_namespace n"
            " WHERE d.datname = current_database() AND n.nspname = 'public'").fetchone()
        assert owner == LOADER and public_owner == "pg_database_owner"  # as in a fresh database
        conn.execute("CREATE TABLE public.t (id int)")
        conn.execute("CREATE SCHEMA app AUTHORIZATION app_owner")
        conn.execute("CREATE TABLE app.t (id int)")
        conn.execute("ALTER TABLE app.t OWNER TO app_owner")
        conn.execute("GRANT SELECT ON app.t TO app_reader")
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'app'").fetchone() == ("app_owner",)
        # PostgreSQL's rule for a non-superuser: the new owner needs CREATE on the schema, which only the
        # database owner (the loader) has on a fresh database's public schema.
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for schema public"):
            conn.execute("ALTER TABLE public.t OWNER TO app_owner")
        conn.execute("GRANT CREATE ON SCHEMA public TO app_owner")
        conn.execute("ALTER TABLE public.t OWNER TO app_owner")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE public.t OWNER TO pg_execute_server_program")


def test_roles_that_would_grant_powers_are_refused(sandbox: Sandbox) -> None:
    for name in ("pg_execute_server_program", "pg_read_server_files", "pg_anything", SANDBOX_ADMIN, LOADER,
                 "x" * 64, ""):
        with pytest.raises(ValueError):
            sandbox.create_database(roles=[name])
    with pytest.raises(TypeError):
        sandbox.create_database(roles="app_owner")
    url = sandbox.create_database(roles=["Mixed Case", "app_owner", "app_owner"])
    try:
        granted = _scalar(sandbox.admin_url(), "SELECT array_agg(r.rolname ORDER BY r.rolname) FROM pg_auth_members m"
                          " JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = %s::regrole", (LOADER,))
        assert {"Mixed Case", "app_owner"} <= set(granted)
        attributes = _scalar(sandbox.admin_url(), "SELECT bool_or(rolcanlogin OR rolsuper OR rolcreaterole"
                             " OR rolcreatedb) FROM pg_roles WHERE rolname IN ('Mixed Case', 'app_owner')")
        assert attributes is False
    finally:
        sandbox.drop_database(url)


def test_create_database_twice_gives_independent_databases(sandbox: Sandbox) -> None:
    first, second = sandbox.create_database(), sandbox.create_database()
    assert first != second
    try:
        second_name = psycopg.conninfo.conninfo_to_dict(second)["dbname"]
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_in_first (id int)")
            # any role may set its own session defaults, also for another database it can see
            conn.execute(f"ALTER ROLE {LOADER} SET search_path = nowhere")
            conn.execute(f'ALTER ROLE {LOADER} IN DATABASE "{second_name}" SET search_path = elsewhere')
        with psycopg.connect(second, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('only_in_first')").fetchone() == (None,)
        third = sandbox.create_database()  # clears what the first state set
        assert _scalar(third, "SHOW search_path") == _scalar(second, "SHOW search_path") == '"$user", public'
        sandbox.drop_database(third)
    finally:
        sandbox.drop_database(first)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(first, connect_timeout=3).close()
    sandbox.drop_database(second)
    with pytest.raises(ValueError):
        sandbox.drop_database(sandbox.admin_url())


# --- sharing, life cycle, clean-up --------------------------------------------------------------------------


def test_threads_calling_sandbox_for_at_once_get_one_sandbox(major: int) -> None:
    close_all()
    results: list[Sandbox] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        barrier.wait()
        results.append(sandbox_for(major))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len({id(s) for s in results}) == 1 and results[0].alive()
    assert sandbox_for(major) is results[0]


def test_a_dead_server_is_replaced(major: int) -> None:
    first = sandbox_for(major)
    os.kill(first.pid, signal.SIGKILL)
    assert _gone(first.pid)
    second = sandbox_for(major)
    assert second is not first and second.alive()
    assert not first.run_dir.exists()
    assert _scalar(second.admin_url(), "SELECT 1") == 1


def test_sweep_removes_what_a_sigkilled_process_left(major: int) -> None:
    child = _child(f"""
        import json, time
        from schema_pipeline.sandbox import sandbox_for
        sandbox = sandbox_for({major})
        sandbox.create_database(roles=["app_owner"])
        print(json.dumps({{"dir": str(sandbox.run_dir), "pid": sandbox.pid}}), flush=True)
        time.sleep(600)
    """)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line, child.stderr.read() if child.stderr else ""
    info = json.loads(line)
    run_dir, postmaster = Path(info["dir"]), info["pid"]
    assert run_dir.is_dir() and not _gone(postmaster, timeout=0.1)
    child.kill()
    child.wait()
    assert sweep() >= 1
    assert not run_dir.exists()
    assert _gone(postmaster)


def test_sweep_stops_an_orphaned_server_and_spares_live_owners(major: int) -> None:
    shared = sandbox_for(major)
    orphan = Sandbox.start(find_server_binaries(major))
    dead = subprocess.Popen(["true"])
    dead.wait()
    (orphan.run_dir / OWNER_FILE).write_text(json.dumps({"pid": dead.pid, "start": None, "boot": None}))
    assert sweep() >= 1
    assert not orphan.run_dir.exists() and _gone(orphan.pid) and not orphan.alive()
    orphan.close()
    assert shared.alive() and shared.run_dir.exists()  # its owner (this process) lives


def test_sweep_keeps_fresh_unowned_entries_and_removes_old_ones(sandbox: Sandbox) -> None:
    base = sandbox.run_dir.parent
    fresh, old = base / "unowned-fresh", base / "unowned-old"
    fresh.mkdir()
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    try:
        sweep()
        assert fresh.exists() and not old.exists()
    finally:
        fresh.rmdir()


def test_sigterm_stops_the_sandbox_and_removes_its_directory(major: int) -> None:
    child = _child(f"""
        import json, time
        from schema_pipeline.sandbox import sandbox_for
        sandbox = sandbox_for({major})
        print(json.dumps({{"dir": str(sandbox.run_dir), "pid": sandbox.pid}}), flush=True)
        time.sleep(600)
    """)
    assert child.stdout is not None
    info = json.loads(child.stdout.readline())
    child.send_signal(signal.SIGTERM)
    assert child.wait(30) == -signal.SIGTERM
    assert not Path(info["dir"]).exists()  # no sweep needed
    assert _gone(info["pid"])


def test_two_processes_initialising_the_cache_at_once_share_one_template(tmp_path: Path, major: int) -> None:
    code = f"""
        from schema_pipeline.sandbox import find_server_binaries
        from schema_pipeline.sandbox.template import ensure_template
        from schema_pipeline.sandbox.user import sandbox_user
        print(ensure_template(find_server_binaries({major}), sandbox_user()))
    """
    env = {"SCHEMA_PIPELINE_CACHE_DIR": str(tmp_path)}
    children = [_child(code, env) for _ in range(3)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    template = Path(paths.pop())
    assert (template / "PG_VERSION").read_text().strip() == str(major)
    assert [p.name for p in template.parent.iterdir() if p.name.startswith("template")] == ["template"]


def test_without_a_disk_cache_each_start_initialises_its_own_cluster(monkeypatch: pytest.MonkeyPatch,
                                                                     major: int) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_SANDBOX_TEMPLATES", "off")
    assert ensure_template(find_server_binaries(major), sandbox_user()) is None
    with Sandbox.start(find_server_binaries(major)) as sandbox:
        url = sandbox.create_database(roles=["app_owner"])
        assert _scalar(url, "SELECT current_user") == LOADER
    assert not sandbox.run_dir.exists()


def test_finding_binaries_neither_imports_pgserver_nor_dagster() -> None:
    probe = _child("""
        import sys
        from schema_pipeline.sandbox import installed_majors
        installed_majors()
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("pgserver", "dagster")))
    """)
    out, err = probe.communicate(timeout=60)
    assert probe.returncode == 0, err
    assert out.strip() == "[]"


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root pipeline runs the server as another user")
def test_binaries_the_sandbox_user_cannot_reach_are_run_from_a_copy(tmp_path: Path) -> None:
    """A project in a private directory (/root/project/.venv/... with pgserver): the sandbox user cannot run
    those binaries, so their installation is copied where it can, libraries at the same relative place."""
    import importlib.util

    from schema_pipeline.sandbox.reachable import can_run
    from schema_pipeline.sandbox.user import sandbox_user

    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        pytest.skip("needs the pgserver package")
    site = Path(spec.origin).parent.parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    for name in ("pgserver", "pgserver.libs"):
        if (site / name).exists():
            shutil.copytree(site / name, private / name, symlinks=True)
    binaries = find_server_binaries(16, private / "pgserver" / "pginstall" / "bin")
    user = sandbox_user()
    assert user is not None and not can_run(binaries.postgres, user)
    with Sandbox.start(binaries) as sandbox:
        assert sandbox.binaries.bindir != binaries.bindir and can_run(sandbox.binaries.postgres, user)
        assert _scalar(sandbox.create_database(), "SELECT current_setting('server_version_num')").startswith("16")
