"""Who owns a sandbox directory: the process that created it, recorded so that a later run can tell
whether that process is still alive (pid, its start time and the boot it ran in, so a reused pid or a
reboot never makes a dead owner look alive)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

OWNER_FILE = "owner.json"


@dataclass(frozen=True)
class Owner:
    pid: int
    start: str | None
    boot: str | None

    def alive(self) -> bool:
        """Whether the recorded process still runs (the same process, not a later one with its pid)."""
        if self.boot is not None and self.boot != boot_id():
            return False
        if not _pid_exists(self.pid):
            return False
        return self.start is None or self.start == process_start(self.pid)


def current() -> Owner:
    pid = os.getpid()
    return Owner(pid=pid, start=process_start(pid), boot=boot_id())


def write_owner(directory: Path) -> None:
    """Record this process as the owner of `directory` (atomically)."""
    me = current()
    tmp = directory / (OWNER_FILE + ".tmp")
    tmp.write_text(json.dumps({"pid": me.pid, "start": me.start, "boot": me.boot}))
    os.replace(tmp, directory / OWNER_FILE)


def read_owner(directory: Path) -> Owner | None:
    """The recorded owner of `directory`, or None if there is no (readable) record."""
    try:
        data = json.loads((directory / OWNER_FILE).read_text())
        return Owner(pid=int(data["pid"]), start=data.get("start"), boot=data.get("boot"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
