#!/usr/bin/env python3
"""Rule review of a 5,000-table state and a migration, next to Squawk on the same files.

    .venv/bin/python bench/review_bench.py [--tables 5000] [--runs 5]

The state is ../shared/bench/gen_schema.py's base schema; the migration is its change
script (11 edits) plus the base schema itself as a migration that creates everything,
so both tools lint the same statements. Squawk (`pip install squawk-cli`) is run on the
same two files. Medians of `--runs`, wall time of whole processes (start-up included).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT.parent / "shared" / "bench" / "gen_schema.py"

OURS = """
import sys
from schema_pipeline.plan.model import Step
from schema_pipeline.review import review_plan, review_state
from schema_pipeline.state import load_state
state = load_state(sys.argv[1])
migration = load_state(sys.argv[2])
steps = [Step(sql=s.sql, object_kind="", object_name="", action="alter") for s in migration.statements]
findings = review_state(state) + review_plan(steps, "bench", state=state)
print(len(findings))
"""


def median_wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    squawk = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")
    with tempfile.TemporaryDirectory() as tmp:
        state_dir, mig_dir = Path(tmp, "state"), Path(tmp, "migration")
        state_dir.mkdir()
        mig_dir.mkdir()
        base = subprocess.run([sys.executable, str(GEN), "base", str(args.tables)], capture_output=True,
                              text=True, check=True).stdout
        changes = subprocess.run([sys.executable, str(GEN), "changes", str(args.tables)], capture_output=True,
                                 text=True, check=True).stdout
        (state_dir / "schema.sql").write_text(base)
        (mig_dir / "0001_create.sql").write_text(base)
        (mig_dir / "0002_changes.sql").write_text(changes)
        ours = median_wall([sys.executable, "-c", OURS, str(state_dir), str(mig_dir)], args.runs)
        print(f"ours   (state + migration review, {args.tables} tables): {ours:.3f} s")
        if squawk:
            theirs = median_wall([squawk, str(mig_dir / "0001_create.sql"), str(mig_dir / "0002_changes.sql")],
                                 args.runs)
            print(f"squawk (migration lint of the same files):          {theirs:.3f} s  -> ours/squawk {ours / theirs:.3f}x")
        else:
            print("squawk not installed (pip install squawk-cli); no comparison")
    return 0


if __name__ == "__main__":
    sys.exit(main())
