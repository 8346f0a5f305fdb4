"""Where the sandbox keeps things: the template cache (per user) and the private run directories.

The cache honours `$SCHEMA_PIPELINE_CACHE_DIR` (a path puts the sandbox templates in `<path>/sandbox`); the
default is `~/.cache/schema_pipeline/sandbox`. `off` turns off the cache of desired catalogs, not this one:
a template depends only on the server binaries, and "plan as if for the first time" should still not pay
`initdb`. `SCHEMA_PIPELINE_SANDBOX_TEMPLATES=off` does (initdb into the run directory at every start).
Run directories live in a per-user base directory, on tmpfs where there is room (see `run_bases`); the
base is created private and refused if someone else owns it, so another local user cannot plant it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from schema_pipeline.sandbox.errors import SandboxError

CACHE_ENV = "SCHEMA_PIPELINE_CACHE_DIR"
RUN_DIR_ENV = "SCHEMA_PIPELINE_SANDBOX_DIR"
TEMPLATES_ENV = "SCHEMA_PIPELINE_SANDBOX_TEMPLATES"
MIN_FREE = 1024**3  # a run directory's file system needs this much free space to be preferred
# A Unix socket path holds at most 107 bytes; the run directory leaves room for "/sock/.s.PGSQL.65535".
_MAX_BASE_LEN = 60


def cache_root() -> Path | None:
    """The directory of initialised cluster templates, or None when the disk cache is off."""
    off = ("off", "none", "0", "false")
    if os.environ.get(TEMPLATES_ENV, "").lower() in off:
        return None
    setting = os.environ.get(CACHE_ENV, "")
    root = Path(setting) if setting and setting.lower() not in off else Path.home() / ".cache" / "schema_pipeline"
    return root / "sandbox"


def run_base() -> Path:
    """The directory holding this user's run directories (not created here): the first candidate that fits."""
    return run_bases()[0]


def run_bases() -> list[Path]:
    """Every place run directories may be, preferred first (sweep looks in all of them).

    `$SCHEMA_PIPELINE_SANDBOX_DIR` if set; else memory first, since the data is thrown away anyway and a
    copy on tmpfs takes a tenth of the time it takes on a disk: `$XDG_RUNTIME_DIR` (not for root: the
    sandbox user could not enter it), `/dev/shm` when it has room (containers often give it 64 MB), then
    the temporary directory.
    """
    uid = os.geteuid()
    if os.environ.get(RUN_DIR_ENV):
        return [Path(os.environ[RUN_DIR_ENV])]
    candidates: list[Path] = []
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and uid != 0 and _roomy(runtime):
        candidates.append(Path(runtime) / "schema_pipeline-sandbox")
    if _roomy("/dev/shm"):
        candidates.append(Path("/dev/shm") / f"schema_pipeline-sandbox-{uid}")
    tmp = Path(tempfile.gettempdir()) / f"schema_pipeline-sandbox-{uid}"
    if uid != 0 or _others_can_pass(tmp.parent):
        candidates.append(tmp)
    candidates.append(Path("/tmp") / f"schema_pipeline-sandbox-{uid}")
    fitting = [c for c in candidates if len(str(c)) <= _MAX_BASE_LEN]
    return list(dict.fromkeys(fitting or [Path("/tmp") / f"schema_pipeline-sandbox-{uid}"]))


def _roomy(directory: str) -> bool:
    """Whether `directory` is a writable directory with at least MIN_FREE bytes free."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= MIN_FREE


def _others_can_pass(directory: Path) -> bool:
    """Whether a user other than the owner can traverse every directory down to `directory`."""
    path = directory.resolve()
    for part in (path, *path.parents):
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def ensure_private_dir(path: Path, mode: int) -> Path:
    """Create `path` (one level) with `mode`, or check that the existing one is ours and not a symlink."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise SandboxError(f"{path} exists but is not a directory owned by this user; remove it"
                           " (another user may have planted it)")
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
    return path


def new_run_dir(suffix: str = "") -> Path:
    """A fresh, empty directory for one sandbox (or one template build), named after this process.

    Mode 0711 when root, so the sandbox user can pass through to its own subdirectories (it cannot list
    the directory), 0700 otherwise.
    """
    mode = 0o711 if os.geteuid() == 0 else 0o700
    problems: list[str] = []
    for candidate in run_bases():  # a base planted by another user only costs the preferred place
        try:
            base = ensure_private_dir(candidate, mode)
            break
        except (SandboxError, OSError) as exc:
            problems.append(str(exc))
    else:
        raise SandboxError("no usable directory for the plan sandbox: " + "; ".join(problems))
    path = base / f"{os.getpid()}-{secrets.token_hex(8)}{suffix}"
    os.mkdir(path, mode)
    os.chmod(path, mode)  # umask
    return path
