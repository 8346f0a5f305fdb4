"""Server binaries the sandbox user can run.

When the pipeline runs as root the server runs as an unprivileged user, which must be able to read and
execute `postgres` and `initdb` and everything beside them. The distribution's binaries are (under /usr);
binaries inside a project's virtualenv (the `pgserver` package) are not when the project lives in a
private directory such as /root. Then the installation (bin, lib, share, as laid out, so that PostgreSQL
finds its files relative to the binary) is copied once to a directory of the pipeline's user that the
sandbox user may read but nobody else may write, and run from there.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from schema_pipeline.sandbox.binaries import ServerBinaries
from schema_pipeline.sandbox.errors import SandboxError
from schema_pipeline.sandbox.paths import ensure_private_dir
from schema_pipeline.sandbox.user import OsUser

_INSTALL_PARTS = ("bin", "lib", "share")


def _allows(info: os.stat_result, user: OsUser, bits: tuple[int, int, int]) -> bool:
    """Whether `user` has the permission (owner, group, other bits) on a file with `info`."""
    owner, group, other = bits
    if info.st_uid == user.uid:
        return bool(info.st_mode & owner)
    if info.st_gid == user.gid:
        return bool(info.st_mode & group)
    return bool(info.st_mode & other)


def can_run(path: Path, user: OsUser) -> bool:
    """Whether `user` can reach `path` (search permission on every directory above it) and read and run it."""
    try:
        path = path.resolve()
        for parent in path.parents:
            if not _allows(os.stat(parent), user, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)):
                return False
        info = os.stat(path)
    except OSError:
        return False
    return _allows(info, user, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)) and \
        _allows(info, user, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH))


def _origin_dirs(binaries: ServerBinaries) -> list[Path]:
    """Library directories the binaries name relative to themselves ($ORIGIN in their run path: a wheel's
    bundled libraries, e.g. pgserver's), so that a copy keeps them at the same relative place."""
    found: set[Path] = set()
    for program in (binaries.postgres, binaries.initdb):
        try:
            data = program.read_bytes()
        except OSError:
            continue
        for m in re.finditer(rb"\$ORIGIN(/[^\x00:]*)?", data):
            rel = (m.group(1) or b"").decode(errors="replace").lstrip("/")
            directory = (binaries.bindir.resolve() / rel).resolve()
            if directory.is_dir() and directory != binaries.bindir.resolve():
                found.add(directory)
    return sorted(found)


def reachable(binaries: ServerBinaries, user: OsUser | None) -> ServerBinaries:
    """`binaries` when `user` (None: the caller) can run them, else a copy of their installation it can run."""
    if user is None or (can_run(binaries.postgres, user) and can_run(binaries.initdb, user)):
        return binaries
    bindir = binaries.bindir.resolve()
    needed = [bindir.parent / part for part in _INSTALL_PARTS if (bindir.parent / part).is_dir()]
    needed += _origin_dirs(binaries)
    anchor = Path(os.path.commonpath(needed))
    key = hashlib.sha256(f"{bindir}\0{binaries.version}".encode()).hexdigest()[:12]
    base = ensure_private_dir(Path(tempfile.gettempdir()) / f"schema_pipeline-pg-{os.geteuid()}", 0o755)
    target = base / f"{binaries.version}-{key}"
    copied_bindir = target / bindir.relative_to(anchor)
    if not (copied_bindir / "postgres").exists():
        building = Path(tempfile.mkdtemp(prefix=".copy-", dir=base))
        try:
            for directory in needed:
                shutil.copytree(directory, building / directory.relative_to(anchor), symlinks=True)
            for directory, _dirs, _files in os.walk(building):
                os.chmod(directory, 0o755)
            os.chmod(building, 0o755)
            try:
                os.rename(building, target)
            except OSError:  # another process copied it meanwhile
                shutil.rmtree(building, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(building, ignore_errors=True)
            raise SandboxError(f"the sandbox user {user.name} cannot run the PostgreSQL binaries in "
                               f"{binaries.bindir}, and copying them to {base} failed: {exc}") from None
    copy = ServerBinaries(bindir=copied_bindir, version=binaries.version, major=binaries.major)
    if not (can_run(copy.postgres, user) and can_run(copy.initdb, user)):
        raise SandboxError(f"the sandbox user {user.name} cannot run the PostgreSQL binaries in {binaries.bindir} "
                           f"nor their copy in {target.parent}; install the server where it can (for example "
                           "your distribution's package) or point SCHEMA_PIPELINE_PG_BIN_DIR at such a copy")
    return copy
