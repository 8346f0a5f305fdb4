"""Stop a sandbox server that is not (or no longer) our child, and free what a killed server left.

The pid is taken from postmaster.pid, which the sandbox's user can write, so it is only signalled after
checking that the process really is that server: it runs in that data directory as the directory's owner
(Linux /proc; elsewhere nothing is signalled, and the server stops by itself within a minute of its data
directory vanishing). A server killed by SIGKILL cannot remove its System V segment (56 bytes, but they
count against the host's limit on segments); it is removed once nothing is attached to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import time
from pathlib import Path

IPC_RMID = 0


def stop_postmaster(data_dir: Path, timeout: float = 5.0) -> bool:
    """Stop the postmaster of `data_dir` if one still runs there; whether one was stopped."""
    lines = pid_file_lines(data_dir)
    try:
        pid = int(lines[0])
    except (ValueError, IndexError):
        return False
    try:
        owner = os.stat(data_dir).st_uid
    except OSError:
        return False
    stopped = _is_postmaster_of(pid, data_dir)
    if stopped:
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if _wait_gone(pid, data_dir, timeout):
                break
    remove_shared_memory(lines, pid, owner)
    return stopped


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a process running in `data_dir` as the owner of that directory (Linux /proc)."""
    if pid <= 1:
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        status = Path(f"/proc/{pid}/status").read_text()
        owner = os.stat(data_dir).st_uid
    except OSError:
        return False  # gone, or no /proc: the server notices its data directory vanished within a minute
    uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
    return os.path.realpath(cwd) == os.path.realpath(data_dir) and uids[:1] == [str(owner)]


def _wait_gone(pid: int, data_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_postmaster_of(pid, data_dir):
            return True
        time.sleep(0.01)
    return False


def pid_file_lines(data_dir: Path) -> list[str]:
    """The lines of `data_dir`/postmaster.pid (empty if there is none).

    Read defensively: the server's user could have replaced it by a symlink, a FIFO or a huge file.
    """
    try:
        fd = os.open(data_dir / "postmaster.pid", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        return os.read(fd, 4096).decode(errors="replace").splitlines()
    except OSError:
        return []
    finally:
        os.close(fd)


def remove_shared_memory(pid_lines: list[str], pid: int, uid: int, wait: float = 2.0) -> None:
    """Remove the System V segment named in postmaster.pid if server `pid` (running as `uid`) made it,
    once nothing is attached to it any more (a killed server's children detach within moments)."""
    try:
        shmid = str(int(pid_lines[6].split()[1]))
    except (ValueError, IndexError):
        return
    deadline = time.monotonic() + wait
    while True:
        row = _segment(shmid)
        # key shmid perms size cpid lpid nattch uid ...
        if row is None or row[4] != str(pid) or row[7] != str(uid):
            return  # gone (the normal case: the server removed it), or not that server's
        if row[6] == "0":
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None).shmctl(int(shmid), IPC_RMID, None)
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _segment(shmid: str) -> list[str] | None:
    try:
        table = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return None
    return next((cols for cols in map(str.split, table) if len(cols) > 7 and cols[1] == shmid), None)
