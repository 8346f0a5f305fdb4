"""The plan sandbox: a throw-away PostgreSQL cluster of the target's major version for untrusted state SQL.

- `binaries`: find the server binaries of one major version (never another major);
- `template`: an initialised cluster kept in the cache, copied for each start;
- `spawn` / `_launcher`: start the server with an empty environment, in its own network namespace where
  the host allows it, as an unprivileged user when the pipeline is root, dying with the pipeline;
- `cluster`: the running sandbox, its admin URL and the loader's databases;
- `registry`: a sandbox of its own per plan, or one shared per version; `sweep`: what dead processes left.
"""

from schema_pipeline.sandbox.binaries import (
    ServerBinaries,
    ServerBinariesNotFound,
    find_server_binaries,
    installed_majors,
)
from schema_pipeline.sandbox.cluster import Sandbox
from schema_pipeline.sandbox.errors import SandboxError
from schema_pipeline.sandbox.registry import close_all, private_sandbox, sandbox_for
from schema_pipeline.sandbox.settings import LOADER, SANDBOX_ADMIN
from schema_pipeline.sandbox.sweep import sweep

__all__ = [
    "LOADER",
    "SANDBOX_ADMIN",
    "Sandbox",
    "SandboxError",
    "ServerBinaries",
    "ServerBinariesNotFound",
    "close_all",
    "find_server_binaries",
    "installed_majors",
    "private_sandbox",
    "sandbox_for",
    "sweep",
]
