"""Where the state files of a state path (directory, single file or glob) are named from."""

from __future__ import annotations

import posixpath


def state_root(pattern: str) -> str:
    """The directory that state file names are relative to, as the loader reports them ("" = the root).

    The part of a glob before its first wildcard, the parent of a single `.sql` file, or the directory
    itself; `pattern` is relative to the repository (or the working directory)."""
    path = pattern.strip().rstrip("/")
    for i, ch in enumerate(path):
        if ch in "*?[":
            prefix = path[:i]
            return prefix.rstrip("/") if prefix.endswith("/") else posixpath.dirname(prefix)
    root = posixpath.dirname(path) if path.endswith(".sql") else path
    return "" if root == "." else root
