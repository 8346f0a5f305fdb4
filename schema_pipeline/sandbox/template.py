"""An initialised cluster, made once (`initdb` plus the loader role) and copied for every start.

The template lives in the cache (`<cache>/<version>-<hash of bindir>/template`) so a cold CLI plan does not
pay `initdb`. Two processes building it at once serialise on a lock file; the build happens in a private
run directory and reaches the cache by an atomic rename, so a reader sees a complete template or none.
With the cache off (`SCHEMA_PIPELINE_CACHE_DIR=off`) every start initialises its own data directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from schema_pipeline.sandbox.binaries import ServerBinaries
from schema_pipeline.sandbox.errors import SandboxError
from schema_pipeline.sandbox.owner import write_owner
from schema_pipeline.sandbox.paths import cache_root, new_run_dir
from schema_pipeline.sandbox.settings import LOADER, SANDBOX_ADMIN
from schema_pipeline.sandbox.user import OsUser

TEMPLATE_FORMAT = "2"  # bump when the template's content changes (a new cache key)
_ENV = {"LC_ALL": "C", "TZ": "UTC"}
_BAKE_SQL = "\n".join([
    f"CREATE ROLE {LOADER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
    "REVOKE ALL ON DATABASE postgres FROM PUBLIC",
    "REVOKE ALL ON DATABASE template1 FROM PUBLIC",
]) + "\n"


def prepare_data_dir(binaries: ServerBinaries, run_dir: Path, user: OsUser | None) -> Path:
    """A ready data directory `run_dir/data` owned by the server's user: a copy of the template."""
    data = run_dir / "data"
    template = ensure_template(binaries, user)
    if template is None:
        initialise(binaries, data, user)
    else:
        copy_tree(template, data, user)
    return data


def ensure_template(binaries: ServerBinaries, user: OsUser | None) -> Path | None:
    """The cached template of `binaries`, built now if missing; None when the disk cache is off."""
    root = cache_root()
    if root is None:
        return None
    key = hashlib.sha256(f"{binaries.bindir.resolve()}\0{TEMPLATE_FORMAT}".encode()).hexdigest()[:12]
    key_dir = root / f"{binaries.version}-{key}"
    final = key_dir / "template"
    if _complete(final):
        return final
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(key_dir / "lock"):
        if _complete(final):
            return final
        for stale in [*key_dir.glob("template.tmp-*"), final]:  # left by a build that died
            shutil.rmtree(stale, ignore_errors=True)
        build = new_run_dir("-build")
        try:
            write_owner(build)
            initialise(binaries, build / "data", user)
            tmp = key_dir / f"template.tmp-{build.name}"
            copy_tree(build / "data", tmp, None)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return final


def initialise(binaries: ServerBinaries, data: Path, user: OsUser | None) -> None:
    """`initdb` into `data` (created here) and create the loader role, as the server's user."""
    data.mkdir(mode=0o700)
    if user:
        os.chown(data, user.uid, user.gid)
    _run(user, [str(binaries.initdb), "-D", str(data), "-U", SANDBOX_ADMIN, "--auth=trust", "-E", "UTF8",
                "--locale=C", "-N", *(["--wal-segsize=1"] if binaries.major >= 11 else [])],
         cwd=data.parent, what="initdb")
    _run(user, [str(binaries.postgres), "--single", "-D", str(data), "-F", "-c", "min_wal_size=2MB",
                "-c", "max_wal_size=32MB", "postgres"], cwd=data.parent, what="creating the loader role",
         stdin=_BAKE_SQL)
    _trim_wal(binaries, data, user)


def _trim_wal(binaries: ServerBinaries, data: Path, user: OsUser | None) -> None:
    """Remove the WAL segments after the last checkpoint's (preallocated, unused): less to copy per start."""
    controldata = binaries.bindir / "pg_controldata"
    if not os.access(controldata, os.X_OK):
        return
    try:
        out = subprocess.run([str(controldata), "-D", str(data)], capture_output=True, text=True, env=_ENV,
                             timeout=60, check=True, **_as(user)).stdout
    except (OSError, subprocess.SubprocessError):
        return
    redo = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                 if line.startswith("Latest checkpoint's REDO WAL file:")), "")
    if len(redo) != 24:
        return
    for segment in (data / "pg_wal").iterdir():
        if len(segment.name) == 24 and segment.name > redo and segment.is_file():
            segment.unlink()


def copy_tree(source: Path, target: Path, user: OsUser | None) -> None:
    """Copy a data directory (modes kept); the copy belongs to `user` when given."""
    cp = shutil.which("cp", path="/bin:/usr/bin")
    if cp:
        result = subprocess.run([cp, "-a", str(source), str(target)], capture_output=True, text=True)
        if result.returncode != 0:
            raise SandboxError(f"cannot copy {source} to {target}: {result.stderr.strip()}")
    else:
        shutil.copytree(source, target, symlinks=True)
    if user and os.lstat(target).st_uid != user.uid:
        _chown_tree(target, user)


def _chown_tree(top: Path, user: OsUser) -> None:
    os.chown(top, user.uid, user.gid, follow_symlinks=False)
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(directory, name), user.uid, user.gid, follow_symlinks=False)


def _complete(template: Path) -> bool:
    return (template / "PG_VERSION").is_file() and (template / "global" / "pg_control").is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl  # POSIX only; imported here so that the package imports everywhere

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _run(user: OsUser | None, argv: list[str], *, cwd: Path, what: str, stdin: str | None = None) -> None:
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=_ENV, cwd=cwd,
                                timeout=300, **_as(user))
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"{what} for the plan sandbox failed: {exc}") from None
    failed = result.returncode != 0 or "ERROR:" in result.stdout + result.stderr
    if failed:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        who = f" (as the sandbox user {user.name}, who must be able to read {Path(argv[0]).parent})" if user else ""
        raise SandboxError(f"{what} for the plan sandbox failed{who}: {output}")


def _as(user: OsUser | None) -> dict:
    """subprocess arguments that run the child as `user` (no supplementary groups)."""
    return {"user": user.uid, "group": user.gid, "extra_groups": []} if user else {}
