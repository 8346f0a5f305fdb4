"""The sandbox server's configuration: command-line settings and client authentication files.

Everything is given on the command line (`-c name=value`), which outranks postgresql.conf and
postgresql.auto.conf. The server listens on a Unix socket in its private directory only, is tuned for
throw-away data (no fsync, minimal WAL), and bounds what a hostile state can consume on disk.
"""

from __future__ import annotations

from pathlib import Path

SANDBOX_ADMIN = "schema_pipeline_sandbox_admin"
LOADER = "schema_pipeline_loader"
IDENT_MAP = "schema_pipeline"


def server_settings(major: int, socket_dir: Path, port: int) -> dict[str, str]:
    """The `-c` settings of a sandbox server of PostgreSQL `major`."""
    settings = {
        "listen_addresses": "",
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        "unix_socket_permissions": "0700",
        "ssl": "off",
        "cluster_name": "schema_pipeline_sandbox",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "min_wal_size": "32MB",
        "autovacuum": "off",
        "jit": "off",
        "shared_buffers": "32MB",
        "huge_pages": "off",
        "max_connections": "20",
        "max_locks_per_transaction": "1024",
        "max_parallel_workers_per_gather": "0",
        "max_parallel_maintenance_workers": "0",
        "temp_file_limit": "1GB",
        # Segments in the data directory (on tmpfs by default): a killed server leaves nothing in /dev/shm.
        "dynamic_shared_memory_type": "mmap",
        "shared_preload_libraries": "",
        "logging_collector": "off",
        "log_destination": "stderr",
        "log_line_prefix": "%m [%p] ",
        "lc_messages": "C",
    }
    if major < 11:
        settings.pop("max_parallel_maintenance_workers")
    return settings


def command_line(postgres: Path, data_dir: Path, settings: dict[str, str]) -> list[str]:
    argv = [str(postgres), "-D", str(data_dir)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    return argv


def hba_files(client_user: str | None, peer: bool) -> dict[str, str]:
    """pg_hba.conf and pg_ident.conf for the data directory.

    Only Unix-socket connections exist. When the server runs as another OS user than the pipeline (root),
    `peer` authentication maps only the pipeline's own OS user to the admin and loader roles, so other
    processes of the sandbox user (including the server itself) cannot log in even though they can reach
    the socket. Otherwise the socket's 0700 permissions already restrict it to the pipeline's user: trust.
    """
    if peer and client_user:
        hba = f"local all all peer map={IDENT_MAP}\n"
        ident = "".join(f"{IDENT_MAP} {client_user} {role}\n" for role in (SANDBOX_ADMIN, LOADER))
    else:
        hba, ident = "local all all trust\n", ""
    return {"pg_hba.conf": hba, "pg_ident.conf": ident}
