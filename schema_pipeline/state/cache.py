"""Parsed states kept on disk, by the content of their files: an unchanged state is parsed once.

The key is the hash of every file's relative path and bytes (DesiredState.fingerprint), the size limit,
the pglast (libpg_query) version and the code of this package; only a state that parsed without error
is kept. `SCHEMA_PIPELINE_CACHE_DIR=off` turns the cache off, as for desired catalogs.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

import pglast

from schema_pipeline.state.model import DesiredState

_CODE: str | None = None


def _code_version() -> str:
    global _CODE
    if _CODE is None:
        h = hashlib.sha256(pglast.__version__.encode())
        for path in sorted(Path(__file__).parent.glob("*.py")):
            h.update(path.read_bytes())
        _CODE = h.hexdigest()[:16]
    return _CODE


def _directory() -> Path | None:
    setting = os.environ.get("SCHEMA_PIPELINE_CACHE_DIR", "")
    if setting.lower() in ("off", "none", "0", "false"):
        return None
    return (Path(setting) if setting else Path.home() / ".cache" / "schema_pipeline") / "states"


def cache_key(fingerprint: str, max_file_bytes: int) -> str:
    return hashlib.sha256(f"{fingerprint}\0{max_file_bytes}\0{_code_version()}".encode()).hexdigest()


def get(key: str) -> DesiredState | None:
    """The parsed state cached under `key`, or None."""
    directory = _directory()
    if directory is None:
        return None
    try:
        with open(directory / f"{key}.pickle", "rb") as fh:
            state = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None
    return state if isinstance(state, DesiredState) else None


def put(key: str, state: DesiredState) -> None:
    """Keep a parsed state; never fails the caller (the cache is an optimisation)."""
    directory = _directory()
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, directory / f"{key}.pickle")
    except OSError:
        pass
