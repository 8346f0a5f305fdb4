"""Real-database convergence harness for the diff engine (no mocks)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable

import psycopg

from schema_pipeline.catalog import Catalog, introspect
from schema_pipeline.diff import diff_catalogs
from schema_pipeline.plan.model import Step


def read_catalog(url: str) -> Catalog:
    """Introspect the database at `url`."""
    with psycopg.connect(url, autocommit=True) as conn:
        return introspect(conn)


def apply_steps(url: str, steps: list[Step]) -> None:
    """Run steps in order: consecutive transactional steps in one transaction, others on their own."""
    with psycopg.connect(url, autocommit=True) as conn:
        batch: list[Step] = []

        def flush() -> None:
            if batch:
                with conn.transaction():
                    for s in batch:
                        conn.execute(s.sql)
                batch.clear()

        for s in steps:
            if s.transactional:
                batch.append(s)
            else:
                flush()
                conn.execute(s.sql)
        flush()


def catalog_diff_text(a: Catalog, b: Catalog) -> str:
    """Readable unified diff of two catalogs' content."""
    ta = json.dumps(a.content(), indent=1, sort_keys=True).splitlines()
    tb = json.dumps(b.content(), indent=1, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(ta, tb, "current", "desired", lineterm="", n=2))


def assert_converges(make_db: Callable[[str | None], str], from_sql: str, to_sql: str) -> list[Step]:
    """Build A from `from_sql` and B from `to_sql`, migrate A with the diff, and check A == B."""
    url_a = make_db(from_sql or None)
    url_b = make_db(to_sql or None)
    cat_a, cat_b = read_catalog(url_a), read_catalog(url_b)
    steps = diff_catalogs(cat_a, cat_b)
    sql = "\n".join(s.sql for s in steps)
    try:
        apply_steps(url_a, steps)
    except psycopg.Error as exc:
        raise AssertionError(f"applying the plan failed: {exc}\n--- plan ---\n{sql}") from exc
    after = read_catalog(url_a)
    assert after.fingerprint() == cat_b.fingerprint(), (
        f"catalogs differ after apply\n--- plan ---\n{sql}\n--- diff ---\n{catalog_diff_text(after, cat_b)}"
    )
    again = diff_catalogs(after, cat_b)
    assert not again, "re-diff not empty:\n" + "\n".join(s.sql for s in again)
    return steps
