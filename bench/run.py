#!/usr/bin/env python3
"""Benchmarks of issue 7, measured in one run on one server, printed as a table and saved.

    .venv/bin/python bench/run.py [--sizes 100,1000,5000] [--runs 3] [--skip-migra] [--drift-dbs 100]

Schemas come from ../shared/bench/gen_schema.py. migra is installed on first use into its
own virtual environment (bench/.venv-migra: migra, psycopg2-binary, sqlalchemy<2).
Results: bench/results/latest.md and latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
GEN = Path(os.environ.get("BENCH_GENERATOR", ROOT.parent / "shared" / "bench" / "gen_schema.py"))
MIGRA_VENV = ROOT / "bench" / ".venv-migra"
RESULTS = ROOT / "bench" / "results"
PY = sys.executable


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def run_once(cmd: list[str], env: dict | None = None, ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one run of a command (exit codes in `ok` count as success)."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - t
    if proc.returncode not in ok:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=proc.stderr)
    return elapsed


def timed(cmd: list[str], runs: int, env: dict | None = None, ok: tuple[int, ...] = (0,)) -> float:
    """Median wall time of a command over `runs` runs."""
    return statistics.median(run_once(cmd, env, ok) for _ in range(runs))


def interleaved(runs: int, **measures) -> dict[str, float]:
    """Median of each measure (a function returning seconds), run alternately: this machine's speed
    drifts by 2x over minutes (shared disk and CPU), and a ratio must compare the same moments."""
    times: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, measure in measures.items():
            times[name].append(measure())
    return {name: statistics.median(values) for name, values in times.items()}


def timed_fn(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Server:
    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.created: list[str] = []

    def url(self, db: str) -> str:
        from schema_pipeline.db import with_database

        return with_database(self.admin_url, db)

    def create(self, name: str, template: str = "template0") -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
        self.created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            for name in self.created:
                c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def psql_load(url: str, path: Path, single_tx: bool = False) -> float:
    t = time.perf_counter()
    sh(["psql", "-q", "-v", "ON_ERROR_STOP=1", *(["-1"] if single_tx else []), "-d", url, "-f", str(path)])
    return time.perf_counter() - t


class PsqlBaseline:
    """`psql -1 -f` of the state into a fresh database, as issue 7 specifies; where one transaction holds more
    locks than the server's lock table (max_locks_per_transaction), statement by statement instead, and the
    row says so."""

    def __init__(self, server: Server, n: int, path: Path):
        self.server, self.n, self.path = server, n, path
        self.single_tx = True
        self.runs = 0

    def __call__(self) -> float:
        self.runs += 1
        url = self.server.create(f"bench_load_{self.n}_{self.runs}")
        if self.single_tx:
            try:
                return psql_load(url, self.path, single_tx=True)
            except subprocess.CalledProcessError as exc:
                if "max_locks_per_transaction" not in (exc.stderr or ""):
                    raise
                self.single_tx = False
                url = self.server.create(f"bench_load_{self.n}_{self.runs}")  # recreated empty
        return psql_load(url, self.path)


def migra_exe() -> str:
    exe = MIGRA_VENV / "bin" / "migra"
    if not exe.exists():
        print("installing migra into bench/.venv-migra ...", file=sys.stderr)
        sh([sys.executable, "-m", "venv", str(MIGRA_VENV)])
        sh([str(MIGRA_VENV / "bin" / "pip"), "install", "-q", "migra", "psycopg2-binary", "sqlalchemy<2",
            "setuptools<81"])
    return str(exe)


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak resident memory of this one child process (wait4's rusage, not the running max of all children)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return usage.ru_maxrss / 1024


def bench_size(server: Server, n: int, runs: int, skip_migra: bool, tmp: Path) -> dict:
    from schema_pipeline import engine
    from schema_pipeline.state import load_state

    base, changes = tmp / f"base_{n}.sql", tmp / f"changes_{n}.sql"
    base.write_text(sh([sys.executable, str(GEN), "base", str(n)]).stdout)
    changes.write_text(sh([sys.executable, str(GEN), "changes", str(n)]).stdout)
    state_dir = tmp / f"state_{n}"
    state_dir.mkdir()

    url_a = server.create(f"bench_a_{n}")
    url_b = server.create(f"bench_b_{n}")
    psql_load(url_a, base)
    psql_load(url_b, base)
    psql_load(url_b, changes)
    # The desired state is database B as state files: its `pg_dump --schema-only` (base + changes cannot be
    # concatenated: the change script redefines a view, and state files declare each object once).
    sh(["pg_dump", "--schema-only", "-d", url_b, "-f", str(state_dir / "schema.sql")])
    row: dict = {"tables": n}

    ours_cmd = [PY, str(ROOT / "bench" / "diff_dbs.py"), url_a, url_b]
    diffs = {"ours_db_diff_s": lambda: run_once(ours_cmd)}
    if not skip_migra:
        migra = migra_exe()  # migra exits 2 when it found differences
        diffs["migra_s"] = lambda: run_once([migra, "--unsafe", url_a, url_b], {**os.environ}, ok=(0, 2))
    row.update(interleaved(runs, **diffs))
    row["ours_peak_rss_mb"] = peak_rss_mb(ours_cmd)

    row.update(interleaved(
        runs,
        pg_dump_s=lambda: run_once(["pg_dump", "--schema-only", "-d", url_b, "-f", os.devnull]),
        introspect_s=lambda: timed_fn(lambda: engine.current_catalog(url_b), 1)))

    psql = PsqlBaseline(server, n, state_dir / "schema.sql")
    # What a user waits for: the whole `schema-pipeline plan` process (human output, fingerprints included).
    plan_cmd = [str(Path(PY).parent / "schema-pipeline"), "-q", "plan", "--database-url", url_a,
                "--state", str(state_dir)]
    row.update(interleaved(
        runs,
        psql_load_s=psql,
        plan_cold_s=lambda: run_once(plan_cmd, {**os.environ, "SCHEMA_PIPELINE_CACHE_DIR": "off"})))  # no disk cache
    row["psql_load_mode"] = "-1" if psql.single_tx else "statement by statement"
    warm_env = {**os.environ, "SCHEMA_PIPELINE_CACHE_DIR": str(tmp / f"cache_{n}")}
    run_once(plan_cmd, warm_env)  # parses the state and loads the desired catalog into the disk cache
    state = load_state(str(state_dir))
    engine.plan(url_a, state)  # and into this process's memory
    row.update(interleaved(
        runs,
        plan_warm_cli_s=lambda: run_once(plan_cmd, warm_env),
        plan_warm_s=lambda: timed_fn(lambda: engine.plan(url_a, state), 1),
        pg_dump_warm_s=lambda: run_once(["pg_dump", "--schema-only", "-d", url_b, "-f", os.devnull])))
    return row


def bench_drift_many(server: Server, dbs: int, tables: int, tmp: Path) -> dict:
    from schema_pipeline import engine
    from schema_pipeline.state import load_state

    base = tmp / "drift_base.sql"
    base.write_text(sh([sys.executable, str(GEN), "base", str(tables)]).stdout)
    tpl = server.create("bench_drift_tpl")
    psql_load(tpl, base)
    urls = [server.create(f"bench_drift_{i:03d}", template="bench_drift_tpl") for i in range(dbs)]
    state_dir = tmp / "drift_state"
    state_dir.mkdir()
    shutil.copy(base, state_dir / "schema.sql")
    state = load_state(str(state_dir))
    t = time.perf_counter()
    desired = engine.desired_catalog(state, urls[0])

    def one(url: str) -> bool:
        return engine.plan_catalogs(engine.current_catalog(url), desired).is_empty

    with ThreadPoolExecutor(max_workers=8) as pool:
        clean = list(pool.map(one, urls))
    elapsed = time.perf_counter() - t
    return {"databases": dbs, "tables_each": tables, "drift_s": elapsed, "all_clean": all(clean)}


def bench_idle_tick(runs: int = 20) -> dict:
    """Median time of a sensor tick when the branch head has not moved (this checkout)."""
    import dagster as dg

    from schema_pipeline.definitions import defs
    from schema_pipeline.git import GitRepo

    d = defs()
    sensor = d.resolve_sensor_def("schema_commit_sensor")
    head = GitRepo(str(ROOT)).head_sha()
    with dg.instance_for_test() as instance:
        resources = d.resources or {}
        ctx = dg.build_sensor_context(instance=instance, cursor=head, definitions=d, resources=resources)
        sensor.evaluate_tick(ctx)  # warm-up: imports, resource construction
        times = []
        for _ in range(runs):
            ctx = dg.build_sensor_context(instance=instance, cursor=head, definitions=d, resources=resources)
            t = time.perf_counter()
            data = sensor.evaluate_tick(ctx)
            times.append(time.perf_counter() - t)
            assert not data.run_requests
    return {"idle_tick_ms": statistics.median(times) * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default=os.environ.get("SCHEMA_PIPELINE_TEST_DSN",
                                                    "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-migra", action="store_true")
    ap.add_argument("--drift-dbs", type=int, default=100)
    args = ap.parse_args()
    if not GEN.exists():
        print(f"schema generator not found at {GEN} (set BENCH_GENERATOR)", file=sys.stderr)
        return 1
    server = Server(args.dsn)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            for n in [int(s) for s in args.sizes.split(",") if s]:
                print(f"== {n} tables", file=sys.stderr)
                rows.append(bench_size(server, n, args.runs, args.skip_migra, tmp))
                print(json.dumps(rows[-1]), file=sys.stderr)
            drift = bench_drift_many(server, args.drift_dbs, 100, tmp) if args.drift_dbs else None
            tick = bench_idle_tick()
    finally:
        server.drop_all()
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = render(rows, drift) + f"\nIdle sensor tick: {tick['idle_tick_ms']:.1f} ms (median of 20)\n"
    (RESULTS / "latest.md").write_text(report)
    (RESULTS / "latest.json").write_text(json.dumps({"sizes": rows, "drift": drift, **tick}, indent=2))
    print(report)
    return 0


def render(rows: list[dict], drift: dict | None) -> str:
    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a and b else "n/a"

    lines = ["| tables | ours DB-diff s | migra s | ours/migra | introspect s | pg_dump -s s | introspect/pg_dump "
             "| plan cold s | psql load s | cold/psql | plan warm s | warm/pg_dump | warm in-process s "
             "| in-process/pg_dump | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['tables']} | {r['ours_db_diff_s']:.3f} | {r.get('migra_s', float('nan')):.3f} | "
            f"{ratio(r['ours_db_diff_s'], r.get('migra_s'))} | {r['introspect_s']:.3f} | {r['pg_dump_s']:.3f} | "
            f"{ratio(r['introspect_s'], r['pg_dump_s'])} | {r['plan_cold_s']:.3f} | {r['psql_load_s']:.3f} | "
            f"{ratio(r['plan_cold_s'], r['psql_load_s'])}{'' if r.get('psql_load_mode') == '-1' else ' *'} | "
            f"{r['plan_warm_cli_s']:.3f} | {ratio(r['plan_warm_cli_s'], r['pg_dump_warm_s'])} | "
            f"{r['plan_warm_s']:.3f} | {ratio(r['plan_warm_s'], r['pg_dump_warm_s'])} | {r['ours_peak_rss_mb']:.0f} |")
    if any(r.get("psql_load_mode") != "-1" for r in rows):
        lines.append("")
        lines.append("\\* psql loaded statement by statement: `psql -1` ran out of the server's lock table "
                     "(max_locks_per_transaction)")
    if drift:
        lines.append("")
        lines.append(f"Drift check of {drift['databases']} databases x {drift['tables_each']} tables: "
                     f"{drift['drift_s']:.2f} s (all clean: {drift['all_clean']})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
