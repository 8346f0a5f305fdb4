"""Running sandboxes of this process: shared ones, and one of its own for each plan.

`private_sandbox(major)` starts a sandbox for one plan and stops it afterwards (0.1-0.2 s): the plan
pipeline uses it, so that no plan shares a server with another one (the state's functions run as the
loader role while the state loads; in a shared cluster they could reach the other plans' databases,
which that role also owns, and change their settings or end their sessions).
`sandbox_for(major)` starts a shared sandbox on first use and hands the same one to every later caller.
Both sweep what dead processes left before their first start.
Sandboxes are closed at interpreter exit (atexit) and on SIGTERM when the handler can be installed without
displacing another one (chained otherwise; never from a non-main thread). If the process dies without
either, the servers get SIGQUIT from the kernel (see spawn.py) and the next run's sweep removes their
directories. A forked child starts its own sandboxes: it must not stop its parent's.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from schema_pipeline.sandbox.binaries import find_server_binaries
from schema_pipeline.sandbox.cluster import Sandbox
from schema_pipeline.sandbox.sweep import sweep

_sandboxes: dict[str, Sandbox] = {}
_lock = threading.Lock()
_hooks_installed = False
_sigterm_installed = False
_swept = False


def sandbox_for(major: int, *, bin_dir: str | os.PathLike[str] | None = None) -> Sandbox:
    """The running sandbox of PostgreSQL `major` (started now if needed), shared process-wide."""
    binaries = find_server_binaries(major, bin_dir)
    key = str(binaries.bindir.resolve())
    with _lock:
        sandbox = _sandboxes.get(key)
        if sandbox is not None and sandbox.alive():
            return sandbox
        if sandbox is not None:  # its server died (killed, out of memory): replace it
            sandbox.close()
        install_exit_hooks()
        sweep()
        sandbox = Sandbox.start(binaries)
        _sandboxes[key] = sandbox
        return sandbox


@contextmanager
def private_sandbox(major: int, *, bin_dir: str | os.PathLike[str] | None = None) -> Iterator[Sandbox]:
    """A sandbox of PostgreSQL `major` for one caller alone, stopped and removed when the block ends."""
    global _swept
    binaries = find_server_binaries(major, bin_dir)
    with _lock:
        install_exit_hooks()
        if not _swept:
            sweep()
            _swept = True
    sandbox = Sandbox.start(binaries)
    key = f"private:{id(sandbox)}"
    with _lock:
        _sandboxes[key] = sandbox
    try:
        yield sandbox
    finally:
        with _lock:
            _sandboxes.pop(key, None)
        sandbox.close()


def close_all() -> None:
    """Stop every sandbox this process started."""
    for sandbox in list(_sandboxes.values()):
        sandbox.close()
    _sandboxes.clear()


def install_exit_hooks() -> None:
    """Stop this process's sandboxes at interpreter exit and on SIGTERM. The SIGTERM handler can only be set
    from the main thread: a command-line entry point calls this first (planning may run in worker threads)."""
    global _hooks_installed, _sigterm_installed
    if not _hooks_installed:
        _hooks_installed = True
        atexit.register(close_all)
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    _sigterm_installed = True
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN or previous is None:  # ignored, or set outside Python: leave it
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> Any:
        close_all()
        if callable(previous):
            return previous(signum, frame)
        signal.signal(signum, signal.SIG_DFL)  # then die of SIGTERM as the default would have
        os.kill(os.getpid(), signum)
        return None

    signal.signal(signal.SIGTERM, on_sigterm)


def _forget_after_fork() -> None:
    global _lock
    _sandboxes.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
