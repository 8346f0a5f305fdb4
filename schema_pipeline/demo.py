"""`python -m schema_pipeline.demo`: the sample pipeline on an embedded PostgreSQL, in the Dagster UI.

1. start (or reuse) an embedded PostgreSQL (`pgserver`) whose data lives in `.pgdata/`;
2. create `hr_test` and `hr_prod` if missing and bring both to the sample state in `schemas/`;
3. point `SCHEMA_PIPELINE_TEST_URL` / `SCHEMA_PIPELINE_PROD_URL` at them and `DAGSTER_HOME`
   at `.dagster_home/` (SQLite, run queue limits, telemetry off);
4. replace this process with `dagster dev` on http://127.0.0.1:3000.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from schema_pipeline.config import CONFIG_ENV_VAR, CONFIG_FILE_NAME, load_config, project_root
from schema_pipeline.errors import SchemaPipelineError

DATABASES = {"test": "hr_test", "prod": "hr_prod"}


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def database_url(admin_url: str, dbname: str) -> str:
    """The admin URL with another database name (keeps the unix-socket `host=` query)."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def socket_dir(url: str) -> str:
    parts = urlsplit(url)
    return (parse_qs(parts.query).get("host") or [parts.hostname or "localhost"])[0]


def start_postgres(datadir: Path) -> str:
    """Start or reuse the embedded server; return its admin URL."""
    from schema_pipeline.embedded import embedded_server_url

    say(f"starting the embedded PostgreSQL (data in {datadir})")
    return embedded_server_url(datadir)


def ensure_database(admin_url: str, dbname: str) -> tuple[str, bool]:
    """Create `dbname` if missing; return (its URL, whether it was created)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return database_url(admin_url, dbname), not exists


def apply_sample(url: str, state_dir: Path, label: str) -> None:
    """Bring a database to the sample state with the engine (a no-op when it is already there)."""
    from schema_pipeline import engine
    from schema_pipeline.state import load_state

    state = load_state(str(state_dir), root=str(state_dir.parent))
    result = engine.apply(url, state, allow_hazards="all")
    if result.applied_steps:
        say(f"{label}: applied {result.applied_steps} step(s) of the sample schema")
    else:
        say(f"{label}: already at the sample schema")


def write_dagster_home(home: Path, root: Path) -> None:
    """`.dagster_home/dagster.yaml` = the repository's dagster.yaml (SQLite under DAGSTER_HOME)."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    source = root / "dagster.yaml"
    if source.is_file():
        shutil.copyfile(source, target)
    elif not target.exists():
        target.write_text("concurrency:\n  runs:\n    max_concurrent_runs: 4\ntelemetry:\n  enabled: false\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schema_pipeline.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="webserver host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="webserver port (default 3000)")
    parser.add_argument(
        "--setup-only", action="store_true", help="prepare the databases, do not start Dagster"
    )
    args = parser.parse_args(argv)

    root = project_root()
    if CONFIG_ENV_VAR not in os.environ and (root / CONFIG_FILE_NAME).is_file():
        os.environ[CONFIG_ENV_VAR] = str(root / CONFIG_FILE_NAME)  # the code server may run elsewhere
    try:
        cfg = load_config()
        admin_url = start_postgres(root / ".pgdata")
        state_dir = cfg.root / cfg.state
        if not state_dir.is_dir():  # a glob or a remote repository: seed with the bundled sample
            state_dir = root / "schemas"
        if not state_dir.is_dir():
            raise SchemaPipelineError(f"the sample state directory {state_dir} does not exist")
        for env in cfg.environments:
            dbname = DATABASES.get(env.name, f"hr_{env.name}")
            url, created = ensure_database(admin_url, dbname)
            say(f"database {dbname} {'created' if created else 'exists'} (socket {socket_dir(url)})")
            apply_sample(url, state_dir, dbname)
            os.environ[env.database_url_env] = url
    except SchemaPipelineError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1

    home = root / ".dagster_home"
    write_dagster_home(home, root)
    os.environ["DAGSTER_HOME"] = str(home)
    say(f"DAGSTER_HOME={home} (SQLite)")
    for env in cfg.environments:
        say(f"{env.database_url_env} -> {DATABASES.get(env.name, env.name)} on the embedded server")
    if (root / ".env").exists():
        say(
            "note: ./.env exists; dagster dev would let it override these variables, so it runs from DAGSTER_HOME"
        )
    if args.setup_only:
        return 0

    cmd = [
        sys.executable, "-m", "dagster", "dev",
        "-w", str(root / "workspace.yaml"),
        "-h", args.host, "--port", str(args.port),
    ]  # fmt: skip
    say(f"starting Dagster: open http://{args.host}:{args.port} (Ctrl-C to stop)")
    say("edit schemas/*.sql and commit on main: the schema_commit_sensor releases it to test within a minute")
    os.chdir(home)  # dagster dev loads ./.env from its working directory; keep the project's out of it
    os.execv(sys.executable, cmd)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
