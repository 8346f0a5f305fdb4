#!/usr/bin/env python3
"""Run the external acceptance kit (../shared/acceptance) through our CLI, with a ratchet.

    python scripts/acceptance.py migra pg-schema-diff [--jobs 2] [--update]

For each corpus the kit's summary is printed as `acceptance <corpus>: N passed, ...`.
`acceptance/passing-<corpus>.txt` lists the case ids known to pass: the run fails
(exit 1) when any of them stops passing. `--update` rewrites the lists from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = Path(os.environ.get("ACCEPTANCE_KIT", ROOT.parent / "shared" / "acceptance"))
RATCHET_DIR = ROOT / "acceptance"


def cli_command() -> str:
    exe = shutil.which("schema-pipeline", path=str(Path(sys.executable).parent)) or "schema-pipeline"
    return exe


def run_corpus(corpus: str, dsn: str, jobs: int, timeout: int) -> dict:
    exe = cli_command()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cases = Path(corpus) if corpus.endswith(".jsonl") else KIT / "cases" / f"{corpus}.jsonl"
        cmd = [
            sys.executable, str(KIT / "run.py"), "--dsn", dsn,
            "--cases", str(cases),
            "--apply", f"{exe} -q apply --database-url {{url}} --state {{state}} --allow-hazards all --yes",
            "--check", f"{exe} -q plan --database-url {{url}} --state {{state}} --check",
            "--jobs", str(jobs), "--timeout", str(timeout), "--report", str(report),
        ]
        # Stream the kit's per-case lines as they come; its last line is the summary.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        last = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if last:
                print(f"  {last[:300]}", flush=True)
            last = line
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait()
        summary = last if last else f"kit failed: {stderr[-500:]}"
        print(f"acceptance {Path(corpus).stem}: {summary}", flush=True)
        if not report.exists():
            raise SystemExit(f"acceptance kit produced no report for {corpus}: {stderr[-2000:]}")
        return json.loads(report.read_text())


def read_ratchet(path: Path) -> set[str]:
    """Case ids listed in a ratchet file, one per line (ids may contain spaces)."""
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def passed_ids(report: dict) -> set[str]:
    cases = report.get("results", [])
    return {c["id"] for c in cases if c.get("status") == "pass"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", nargs="+", help="migra, pg-schema-diff, psqldef, or a path to a .jsonl of cases")
    ap.add_argument("--dsn", default=os.environ.get("SCHEMA_PIPELINE_TEST_DSN",
                                                    "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--update", action="store_true", help="rewrite the ratchet lists from this run")
    args = ap.parse_args()
    regressions: list[str] = []
    for corpus in args.corpora:
        report = run_corpus(corpus, args.dsn, args.jobs, args.timeout)
        passing = passed_ids(report)
        ratchet = RATCHET_DIR / f"passing-{Path(corpus).stem}.txt"
        known = read_ratchet(ratchet)
        lost = sorted(known - passing)
        regressions += [f"{corpus}: {case}" for case in lost]
        gained = sorted(passing - known)
        if gained:
            print(f"  {len(gained)} case(s) pass that are not in {ratchet.name} yet", flush=True)
        if args.update:
            ratchet.write_text("".join(f"{c}\n" for c in sorted(passing | (known if lost else set()))))
    if regressions:
        print("acceptance ratchet: these cases passed before and fail now:", *regressions, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
