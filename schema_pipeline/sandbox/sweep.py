"""Remove what dead pipeline processes left behind: run directories and their servers.

A run directory records its owner (pid, start time, boot). When that process is gone, the directory's
postmaster (if any still runs: the death signal normally stops it) gets SIGQUIT, then SIGKILL, and the
directory is removed, as is its System V shared memory segment when a killed server could not remove it.
Directories without an owner record are removed once older than `max_age` (they may be being set up).
Directories of live owners are never touched, however old: a code server keeps its sandbox for days.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from schema_pipeline.sandbox.leftovers import stop_postmaster
from schema_pipeline.sandbox.owner import read_owner
from schema_pipeline.sandbox.paths import run_bases

DAY = 24 * 3600.0


def sweep(max_age: float = DAY) -> int:
    """Remove the run directories of dead owners (and stray entries older than `max_age`); how many."""
    return sum(_sweep_base(base, max_age) for base in run_bases())


def _sweep_base(base: Path, max_age: float) -> int:
    try:
        info = os.lstat(base)
        entries = list(os.scandir(base))
    except OSError:
        return 0
    if info.st_uid != os.geteuid():
        return 0  # not ours: never act on a directory someone else controls
    removed = 0
    now = time.time()
    for entry in entries:
        path = Path(entry.path)
        owner = read_owner(path) if entry.is_dir(follow_symlinks=False) else None
        if owner is not None and owner.alive():
            continue
        if owner is None and now - entry.stat(follow_symlinks=False).st_mtime < max_age:
            continue
        if entry.is_dir(follow_symlinks=False):
            stop_postmaster(path / "data")
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed += not path.exists()
    return removed
