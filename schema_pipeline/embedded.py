"""The embedded PostgreSQL server (the `pgserver` package): the default when nothing else is given."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

DEFAULT_DATADIR = Path(os.environ.get("SCHEMA_PIPELINE_EMBEDDED_DIR", Path.home() / ".cache" / "schema_pipeline" / "pgdata"))


def embedded_server_url(datadir: str | os.PathLike[str] | None = None) -> str:
    """Start (or reuse) an embedded PostgreSQL in `datadir`; return its admin URL.

    The server keeps running after this process exits, so later calls are instant.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

        path = Path(datadir or DEFAULT_DATADIR)
        path.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(path, cleanup_mode=None)
        return server.get_uri()
