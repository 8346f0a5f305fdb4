#!/usr/bin/env python3
"""DB-vs-DB diff with our engine, as one process (the counterpart of `migra A B`).

    python bench/diff_dbs.py URL_FROM URL_TO     # prints the migration SQL
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from schema_pipeline import engine
from schema_pipeline.plan.render import render_sql


def main() -> int:
    url_from, url_to = sys.argv[1], sys.argv[2]
    with ThreadPoolExecutor(max_workers=2) as pool:
        current, desired = pool.map(engine.current_catalog, [url_from, url_to])
    # SQL output never shows the catalogs' fingerprints (as `plan --format sql`)
    sys.stdout.write(render_sql(engine.plan_catalogs(current, desired, fingerprints=False)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
