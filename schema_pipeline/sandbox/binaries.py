"""Find the PostgreSQL server binaries (`postgres`, `initdb`) of one major version on this host.

Search order: an explicit `bin_dir`, `$SCHEMA_PIPELINE_PG_BIN_DIR` (one directory or an os.pathsep-separated
list), `pg_config --bindir` from PATH, the Debian layout (/usr/lib/postgresql/*/bin), the RPM layout
(/usr/pgsql-*/bin), Homebrew (/opt/homebrew/opt/postgresql@*/bin, /usr/local/opt/postgresql@*/bin),
/usr/local/pgsql/bin, and the binaries bundled with the `pgserver` package. The version is what
`postgres --version` says. A major version that is not installed is an error: the sandbox never falls back
to another major (views, defaults and catalogs differ between majors).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from schema_pipeline.sandbox.errors import SandboxError

BIN_DIR_ENV = "SCHEMA_PIPELINE_PG_BIN_DIR"

_VERSION = re.compile(r"\(PostgreSQL\)\s+((\d+)[0-9A-Za-z.]*)")
_PROBES: dict[str, ServerBinaries | None] = {}
_FOUND: dict[tuple[int, str | None, str, str], ServerBinaries] = {}
_PG_CONFIG: dict[str, list[str]] = {}
_PROBES_LOCK = threading.Lock()


@dataclass(frozen=True)
class ServerBinaries:
    """One installation of the PostgreSQL server: its bin directory and version."""

    bindir: Path
    version: str  # in full, e.g. "15.19" or "17beta1"
    major: int

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"


class ServerBinariesNotFound(SandboxError):
    """No server binaries of the wanted major version (the message says how to get them)."""

    def __init__(self, major: int, found: dict[int, ServerBinaries], detail: str = ""):
        self.major = major
        self.found = found
        super().__init__(_not_found_message(major, found, detail))


def find_server_binaries(major: int, bin_dir: str | os.PathLike[str] | None = None) -> ServerBinaries:
    """The server binaries of PostgreSQL `major`; `bin_dir` (if given) must hold exactly that version.

    Answers are cached per process (per search setting: `bin_dir`, the environment variable and PATH).
    """
    key = (major, str(bin_dir) if bin_dir is not None else None, os.environ.get(BIN_DIR_ENV, ""),
           os.environ.get("PATH", ""))
    with _PROBES_LOCK:
        found = _FOUND.get(key)
    if found is None:
        found = _find(major, bin_dir)
        with _PROBES_LOCK:
            _FOUND[key] = found
    return found


def _find(major: int, bin_dir: str | os.PathLike[str] | None) -> ServerBinaries:
    if bin_dir is not None:
        found = _probe(Path(bin_dir))
        if found is None:
            raise ServerBinariesNotFound(major, installed_majors(),
                                         f"{bin_dir} holds no PostgreSQL server (postgres and initdb)")
        if found.major != major:
            raise ServerBinariesNotFound(major, installed_majors(),
                                         f"{bin_dir} holds PostgreSQL {found.version}, not {major}")
        return found
    for candidate in _candidates():
        found = _probe(candidate)
        if found is not None and found.major == major:
            return found
    raise ServerBinariesNotFound(major, installed_majors())


def installed_majors() -> dict[int, ServerBinaries]:
    """Every major version found, each with the first installation in search order."""
    majors: dict[int, ServerBinaries] = {}
    for candidate in _candidates():
        found = _probe(candidate)
        if found is not None:
            majors.setdefault(found.major, found)
    return dict(sorted(majors.items()))


def _candidates() -> list[Path]:
    """Directories that may hold server binaries, in search order (not yet checked)."""
    dirs: list[str] = [d for d in os.environ.get(BIN_DIR_ENV, "").split(os.pathsep) if d]
    dirs += _pg_config_bindir()
    dirs += _sorted_glob("/usr/lib/postgresql/*/bin")
    dirs += _sorted_glob("/usr/pgsql-*/bin")
    dirs += _sorted_glob("/opt/homebrew/opt/postgresql@*/bin")
    dirs += _sorted_glob("/usr/local/opt/postgresql@*/bin")
    dirs += ["/usr/local/pgsql/bin"]
    dirs += _pgserver_bindir()
    return [Path(d) for d in dirs]


def _sorted_glob(pattern: str) -> list[str]:
    """Matches of `pattern`, newest major first (numeric order of the first number in the path)."""

    def major_of(path: str) -> int:
        match = re.search(r"(\d+)", path)
        return int(match.group(1)) if match else 0

    return sorted(glob.glob(pattern), key=major_of, reverse=True)


def _pg_config_bindir() -> list[str]:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return []
    if pg_config not in _PG_CONFIG:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10,
                                 check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        _PG_CONFIG[pg_config] = [out] if out else []
    return _PG_CONFIG[pg_config]


def _pgserver_bindir() -> list[str]:
    """pgserver's bundled binaries, located without importing the package (importing it has side effects)."""
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [str(Path(location) / "pginstall" / "bin") for location in spec.submodule_search_locations]


def _probe(bindir: Path) -> ServerBinaries | None:
    """The server in `bindir` (None if there is none), asked once per process for each directory."""
    try:
        key = str(bindir.resolve())
    except OSError:
        return None
    with _PROBES_LOCK:
        if key in _PROBES:
            return _PROBES[key]
    found = _ask_version(Path(key))
    with _PROBES_LOCK:
        return _PROBES.setdefault(key, found)


def _ask_version(bindir: Path) -> ServerBinaries | None:
    postgres, initdb = bindir / "postgres", bindir / "initdb"
    if not (os.access(postgres, os.X_OK) and os.access(initdb, os.X_OK) and postgres.is_file()):
        return None
    try:
        out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, timeout=20,
                             env={"LC_ALL": "C"}, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out.stdout)
    if not match:
        return None
    return ServerBinaries(bindir=bindir, version=match.group(1), major=int(match.group(2)))


def _not_found_message(major: int, found: dict[int, ServerBinaries], detail: str) -> str:
    lines = [f"no PostgreSQL {major} server binaries for the plan sandbox"
             + (f": {detail}" if detail else "")]
    if found:
        lines.append("found: " + ", ".join(f"{b.version} in {b.bindir}" for b in found.values()))
    else:
        lines.append("found: no PostgreSQL server binaries at all")
    ways = [f"Debian/Ubuntu: apt install postgresql-{major}",
            f"RHEL/Fedora: dnf install postgresql{major}-server",
            f"macOS: brew install postgresql@{major}"]
    if major == 16:
        ways.append("any platform: pip install pgserver (bundles PostgreSQL 16)")
    lines.append("install them (" + "; ".join(ways) + f"), point {BIN_DIR_ENV} at their bin directory,")
    lines.append(f"or pass --plan-database-url to plan on a dedicated PostgreSQL {major} server;"
                 " the sandbox never uses another major version than the target's")
    return "\n".join(lines)
