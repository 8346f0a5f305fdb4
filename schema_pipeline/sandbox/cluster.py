"""A running throw-away PostgreSQL cluster: start, hand out databases to the loader role, stop."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from schema_pipeline.sandbox.binaries import ServerBinaries
from schema_pipeline.sandbox.errors import SandboxError
from schema_pipeline.sandbox.leftovers import pid_file_lines, remove_shared_memory
from schema_pipeline.sandbox.owner import write_owner
from schema_pipeline.sandbox.paths import new_run_dir
from schema_pipeline.sandbox.reachable import reachable
from schema_pipeline.sandbox.settings import (
    LOADER,
    SANDBOX_ADMIN,
    command_line,
    hba_files,
    server_settings,
)
from schema_pipeline.sandbox.spawn import Launched, launch
from schema_pipeline.sandbox.template import prepare_data_dir
from schema_pipeline.sandbox.user import OsUser, caller_name, sandbox_user

DATABASE_PREFIX = "sandbox_"
START_TIMEOUT = 60.0
_NAMEDATALEN = 64


class Sandbox:
    """A running throw-away cluster of one major version.

    `admin_url()` reaches its superuser; `create_database()` makes a database owned by the loader, a role
    that is not a superuser, for the untrusted state. Start with `Sandbox.start()` (or, to share one per
    process, `sandbox_for()`); `close()` stops the server and removes its directory.
    """

    def __init__(self, binaries: ServerBinaries, run_dir: Path, port: int, launched: Launched,
                 user: OsUser | None) -> None:
        self.binaries = binaries
        self.user = user  # the OS user the server runs as, when not the caller's
        self.major = binaries.major
        self.version = binaries.version
        self.run_dir = run_dir
        self.data_dir = run_dir / "data"
        self.socket_dir = run_dir / "sock"
        self.port = port
        self.isolated_network = launched.isolated_network
        self.network = launched.network
        self.dies_with_process = launched.pdeathsig
        self._process = launched.process
        self._lock = threading.RLock()
        self._databases: set[str] = set()
        self._closed = False
        self._creator = os.getpid()  # a forked child must not stop its parent's server

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return self._process.pid

    @classmethod
    def start(cls, binaries: ServerBinaries) -> Sandbox:
        """Start a new cluster of `binaries` in a fresh private run directory."""
        if os.name != "posix":
            raise SandboxError("the plan sandbox needs Linux or macOS; pass --plan-database-url to plan on a"
                               " dedicated PostgreSQL server instead")
        user = sandbox_user()
        binaries = reachable(binaries, user)
        run_dir = new_run_dir()
        try:
            write_owner(run_dir)
            data = prepare_data_dir(binaries, run_dir, user)
            socket_dir = _private_subdir(run_dir / "sock", user)
            _write_auth_files(data, user)
            port = 20000 + secrets.randbelow(40000)
            argv = command_line(binaries.postgres, data, server_settings(binaries.major, socket_dir, port))
            launched = launch(binaries.postgres, argv, env={}, cwd=run_dir, log=run_dir / "server.log",
                              user=user)
            sandbox = cls(binaries, run_dir, port, launched, user)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        try:
            sandbox._wait_ready()
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    # --- URLs and databases ------------------------------------------------------------------------------

    def admin_url(self, dbname: str = "postgres") -> str:
        """libpq URL of the superuser over the Unix socket (for the sandbox's own setup steps only)."""
        return self._url(SANDBOX_ADMIN, dbname)

    def create_database(self, roles: Iterable[str] = ()) -> str:
        """A fresh database owned by the loader; `roles` exist (NOLOGIN) and the loader is a member of each.

        Returns the loader's URL to it. Role names starting with "pg_" and the sandbox's own roles are
        refused (ValueError): granting a predefined role would hand the state server-side powers.
        """
        wanted = _checked_roles(roles)
        name = f"{DATABASE_PREFIX}{secrets.token_hex(8)}"
        with self._lock, self._admin() as conn:
            self._ensure_roles(conn, wanted)
            _reset_loader_settings(conn)
            # FILE_COPY (PG15+): a file copy and two cheap checkpoints beat WAL-logging template1 (6 vs 15-25 ms)
            strategy = sql.SQL(" STRATEGY FILE_COPY" if self.major >= 15 else "")
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template1{}").format(
                sql.Identifier(name), sql.Identifier(LOADER), strategy))
            self._databases.add(name)
        return self._url(LOADER, name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database` (its sessions are terminated)."""
        name = conninfo_to_dict(url).get("dbname", "")
        with self._lock:
            if name not in self._databases:
                raise ValueError(f"{name!r} is not a database of this sandbox")
            with self._admin() as conn:
                if self.major < 13:  # no WITH (FORCE) yet
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                 (name,))
                force = sql.SQL(" WITH (FORCE)") if self.major >= 13 else sql.SQL("")
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))
            self._databases.discard(name)

    # --- life cycle --------------------------------------------------------------------------------------

    def alive(self) -> bool:
        return not self._closed and self._process.poll() is None

    def close(self) -> None:
        """Stop the server (immediate shutdown: nothing in it is worth keeping) and remove its directory."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if os.getpid() != self._creator:
                return
            pid_lines = pid_file_lines(self.data_dir)
            stop_process(self._process)
            remove_shared_memory(pid_lines, self.pid, self.user.uid if self.user else os.geteuid())
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"<Sandbox PostgreSQL {self.version} pid={self.pid} {state} in {self.run_dir}>"

    # --- internals ---------------------------------------------------------------------------------------

    def _url(self, user: str, dbname: str) -> str:
        return (f"postgresql://{quote(user, safe='')}@/{quote(dbname, safe='')}"
                f"?host={quote(str(self.socket_dir), safe='')}&port={self.port}")

    def _admin(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.admin_url(), autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise SandboxError(f"cannot reach the plan sandbox ({self!r}): {exc}") from None

    def _ensure_roles(self, conn: psycopg.Connection, wanted: list[str]) -> None:
        if not wanted:
            return
        rows = conn.execute(
            "SELECT rolname, rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls"
            " OR rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)", (wanted,)).fetchall()
        existing = {name: powerful for name, powerful in rows}
        for name in wanted:
            if existing.get(name):
                raise SandboxError(f"the sandbox role {name!r} has attributes; it must be a plain NOLOGIN role")
            if name not in existing:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, wanted)), sql.Identifier(LOADER)))

    def _wait_ready(self) -> None:
        """Poll postmaster.pid until the server says "ready" (every 10 ms), or fail with its log."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SandboxError(f"the plan sandbox's server (PostgreSQL {self.version}) exited while"
                                   f" starting:\n{self._log_tail()}")
            lines = pid_file_lines(self.data_dir)
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            time.sleep(0.01)
        raise SandboxError(f"the plan sandbox's server did not start within {START_TIMEOUT:.0f} s:\n"
                           f"{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return (self.run_dir / "server.log").read_text(errors="replace")[-3000:].strip()
        except OSError:
            return "(no server log)"


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGQUIT (immediate shutdown), then SIGKILL if the server does not exit within `timeout`."""
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except ProcessLookupError:
        pass


def _reset_loader_settings(conn: psycopg.Connection) -> None:
    """Clear the loader's session defaults, global and per database.

    Any role may set its own (ALTER ROLE ... [IN DATABASE ...] SET); a state that did must not shape the
    loading session of the next database. (The state's allow-list refuses ALTER ROLE in the first place.)
    """
    rows = conn.execute("SELECT d.datname FROM pg_db_role_setting s LEFT JOIN pg_database d"
                        " ON d.oid = s.setdatabase WHERE s.setrole = %s::regrole", (LOADER,)).fetchall()
    for (database,) in rows:
        in_database = sql.SQL(" IN DATABASE {}").format(sql.Identifier(database)) if database else sql.SQL("")
        conn.execute(sql.SQL("ALTER ROLE {}{} RESET ALL").format(sql.Identifier(LOADER), in_database))


def _checked_roles(roles: Iterable[str]) -> list[str]:
    if isinstance(roles, str):
        raise TypeError("roles must be an iterable of role names, not one string")
    wanted: list[str] = []
    for name in roles:
        if not isinstance(name, str) or not name or "\x00" in name:
            raise ValueError(f"invalid role name {name!r}")
        if name.startswith("pg_") or name in (SANDBOX_ADMIN, LOADER):
            raise ValueError(f"role {name!r} is reserved; the sandbox will not create or grant it")
        if len(name.encode()) >= _NAMEDATALEN:
            raise ValueError(f"role name {name!r} is longer than PostgreSQL's {_NAMEDATALEN - 1} bytes")
        if name not in wanted:
            wanted.append(name)
    return wanted


def _private_subdir(path: Path, user: OsUser | None) -> Path:
    path.mkdir(mode=0o700)
    if user:
        os.chown(path, user.uid, user.gid)
    return path


def _write_auth_files(data: Path, user: OsUser | None) -> None:
    for name, text in hba_files(caller_name(), peer=user is not None).items():
        path = data / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if user:
            os.chown(path, user.uid, user.gid)
