"""Start the sandbox's postmaster through `_launcher.py`, from one dedicated thread.

Why a dedicated thread: the postmaster gets PR_SET_PDEATHSIG, and Linux sends that signal when the
*thread* that forked it exits, not the process. A long-running code server calls the sandbox from worker
threads that come and go, so every launch is forked by one daemon thread that lives as long as the
process; the signal then fires only when the process dies (even by SIGKILL). The pre-exec work runs in a
fresh interpreter (`_launcher.py`), so nothing runs between fork and exec in this threaded process.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schema_pipeline.sandbox.errors import SandboxError
from schema_pipeline.sandbox.user import OsUser

LAUNCHER = Path(__file__).with_name("_launcher.py")
# RLIMIT_FSIZE of the server: no single file beyond 2 GiB. Relation, temporary and WAL files are
# segmented (1 GiB, 1 GiB, 1 MiB), so this bounds what is not: the server log.
MAX_FILE_SIZE = 2 * 1024**3
_ISOLATION_BROKEN = 86


@dataclass(frozen=True)
class Launched:
    """A started server process and what the launcher could set up for it."""

    process: subprocess.Popen
    isolated_network: bool
    network: str
    pdeathsig: bool


def launch(program: Path, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path,
           user: OsUser | None, isolate_network: bool = True) -> Launched:
    """Run `argv` (whose argv[0] is `program`) as the server; the pid of the result is the server's own."""
    launched = _launch_once(program, argv, env, cwd, log, user, isolate_network)
    if launched is None:  # the namespace could not be completed: start without it
        launched = _launch_once(program, argv, env, cwd, log, user, False)
    assert launched is not None
    return launched


def _launch_once(program: Path, argv: list[str], env: dict[str, str], cwd: Path, log: Path,
                 user: OsUser | None, isolate_network: bool) -> Launched | None:
    read_end, write_end = os.pipe()
    spec = {"program": str(program), "argv": argv, "env": env, "status_fd": write_end,
            "isolate_network": isolate_network and sys.platform.startswith("linux"),
            "max_file_size": MAX_FILE_SIZE,
            "uid": user.uid if user else None, "gid": user.gid if user else None,
            "pdeathsig": sys.platform.startswith("linux"), "parent_pid": os.getpid()}
    try:
        with open(log, "ab") as log_file:
            process = _in_spawner_thread(lambda: subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env={}, cwd=cwd,
                pass_fds=(write_end,), start_new_session=True))
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as status:
        lines = [json.loads(line) for line in status.read().splitlines() if line.strip()]
    if lines and "error" not in lines[-1]:
        report = lines[-1]
        return Launched(process, bool(report["isolated_network"]), str(report["network"]),
                        bool(report["pdeathsig"]))
    code = process.wait()
    if code == _ISOLATION_BROKEN:
        return None
    detail = lines[-1]["error"] if lines else f"the launcher exited with code {code}; see {log}"
    raise SandboxError(f"cannot start the plan sandbox's server: {detail}")


# --- the dedicated spawner thread -----------------------------------------------------------------------

_jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future]] | None = None
_spawner_lock = threading.Lock()


def _in_spawner_thread(job: Callable[[], subprocess.Popen]) -> subprocess.Popen:
    global _jobs
    with _spawner_lock:
        if _jobs is None:
            _jobs = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(_jobs,), name="schema_pipeline-sandbox-spawner",
                             daemon=True).start()
        jobs = _jobs
    done: Future = Future()
    jobs.put((job, done))
    return done.result()


def _serve(jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future]]) -> None:
    while True:
        job, done = jobs.get()
        try:
            done.set_result(job())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            done.set_exception(exc)


def _forget_spawner() -> None:
    """In a forked child the spawner thread does not exist: start a new one on first use."""
    global _jobs, _spawner_lock
    _jobs = None
    _spawner_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_spawner)
