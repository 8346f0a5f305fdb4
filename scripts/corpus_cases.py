#!/usr/bin/env python3
"""Convert other projects' test data into cases for the acceptance kit (../shared/acceptance).

    python scripts/corpus_cases.py pgschema PGSCHEMA_CHECKOUT > /tmp/pgschema.jsonl
    python scripts/corpus_cases.py apgdiff APGDIFF_CHECKOUT > /tmp/apgdiff.jsonl
    python scripts/acceptance.py /tmp/pgschema.jsonl /tmp/apgdiff.jsonl

pgschema: each `testdata/diff/<group>/<case>/` with `old.sql` and `new.sql` becomes one `converge`
case, and each sample schema of `testdata/dump/<name>/` (employee, sakila, bytebase, ...) up to three:
an empty database to its `pg_dump` output, an empty database to pgschema's own dump of it, and the
database its original DDL (`raw.sql`) builds to pgschema's dump (two texts of one schema).

apgdiff: each `<case>_original.sql` / `<case>_new.sql` pair of its diff tests becomes one `converge` case.

The `DO` blocks the test data uses to create roles are left out (state files may not hold them); the roles
they create, and the roles that GRANT, OWNER TO and FOR ROLE name, are listed for the kit to create.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

_DO_BLOCK = re.compile(r"DO\s+\$(\w*)\$.*?\$\1\$\s*;", re.S | re.I)
_ROLE_NAMES = (r"CREATE\s+(?:ROLE|USER)\s+(\"?\w+\"?)", r"\bTO\s+(\"?\w+\"?)", r"FOR\s+(?:ROLE|USER)\s+(\"?\w+\"?)",
               r"\bFROM\s+(\"?\w+\"?)\s*;", r"\bTO\s+\"?\w+\"?\s*,\s*(\"?\w+\"?)")
_NOT_ROLES = {"public", "current_user", "session_user", "current_role"}


def roles_in(sql: str) -> set[str]:
    found = {m.group(1).strip('"') for pattern in _ROLE_NAMES for m in re.finditer(pattern, sql, re.I)}
    return {r for r in found if r.lower() not in _NOT_ROLES}


def converge_case(case_id: str, old: str, new: str, origin: str) -> dict:
    """A kit case: the database `old` builds must converge to the state `new` (DO blocks left out)."""
    roles = sorted(roles_in(old + new))  # the DO blocks' CREATE ROLE included
    old, new = _DO_BLOCK.sub("", old), _DO_BLOCK.sub("", new)
    return {
        "id": case_id, "source": case_id.split("/", 1)[0], "setup": [], "roles": roles,
        "from": [old] if old.strip() else [], "to": [new], "expect": "converge", "hazards": [], "needs": {},
        "notes": "", "origin": origin,
    }


def pgschema_cases(checkout: Path) -> Iterator[dict]:
    root = checkout / "testdata" / "diff"
    for new in sorted(root.rglob("new.sql")):
        name = new.parent.relative_to(root).as_posix()
        old = new.parent / "old.sql"
        yield converge_case(f"pgschema/{name}", old.read_text() if old.exists() else "", new.read_text(),
                            f"pgschema/pgschema:testdata/diff/{name}")
    dumps = checkout / "testdata" / "dump"
    for directory in sorted(p for p in dumps.iterdir() if p.is_dir()) if dumps.is_dir() else []:
        yield from _pgschema_dump_cases(directory)


def _pgschema_dump_cases(directory: Path) -> Iterator[dict]:
    texts = {f: (directory / f).read_text() for f in ("raw.sql", "pgdump.sql", "pgschema.sql")
             if (directory / f).exists()}
    for label, old, new in (("pgdump", None, "pgdump.sql"), ("pgschema", None, "pgschema.sql"),
                            ("raw-to-pgschema", "raw.sql", "pgschema.sql")):
        if new in texts and (old is None or old in texts):
            yield converge_case(f"pgschema/dump/{directory.name}/{label}", texts[old] if old else "", texts[new],
                                f"pgschema/pgschema:testdata/dump/{directory.name}")


def apgdiff_cases(checkout: Path) -> Iterator[dict]:
    root = checkout / "src" / "test" / "resources" / "cz" / "startnet" / "utils" / "pgdiff"
    for original in sorted(root.glob("*_original.sql")):
        name = original.name.removesuffix("_original.sql")
        new = root / f"{name}_new.sql"
        if new.exists():
            yield converge_case(f"apgdiff/{name}", original.read_text(), new.read_text(),
                                f"fordfrog/apgdiff:{new.relative_to(checkout).parent.as_posix()}/{name}_*.sql")


CORPORA = {"pgschema": (pgschema_cases, "testdata"), "apgdiff": (apgdiff_cases, "src/test/resources")}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in CORPORA:
        print(__doc__, file=sys.stderr)
        return 2
    convert, marker = CORPORA[sys.argv[1]]
    checkout = Path(sys.argv[2])
    if not (checkout / marker).is_dir():
        print(f"error: {checkout / marker} is not a directory (expected a {sys.argv[1]} checkout)", file=sys.stderr)
        return 1
    for c in convert(checkout):
        print(json.dumps(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
