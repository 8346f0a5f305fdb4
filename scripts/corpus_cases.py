#!/usr/bin/env python3
"""Convert pgschema's diff test data into cases for the acceptance kit (../shared/acceptance).

    python scripts/pgschema_cases.py PGSCHEMA_CHECKOUT > /tmp/pgschema.jsonl
    python scripts/acceptance.py /tmp/pgschema.jsonl

Each `testdata/diff/<group>/<case>/` with `old.sql` and `new.sql` becomes one `converge` case. The
`DO` blocks pgschema uses to create test roles are left out (state files may not hold them); the roles
they create, and the roles that GRANT, OWNER TO and FOR ROLE name, are listed for the kit to create.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_DO_BLOCK = re.compile(r"DO\s+\$(\w*)\$.*?\$\1\$\s*;", re.S | re.I)
_ROLE_NAMES = (r"CREATE\s+(?:ROLE|USER)\s+(\"?\w+\"?)", r"\bTO\s+(\"?\w+\"?)", r"FOR\s+(?:ROLE|USER)\s+(\"?\w+\"?)",
               r"\bFROM\s+(\"?\w+\"?)\s*;", r"\bTO\s+\"?\w+\"?\s*,\s*(\"?\w+\"?)")
_NOT_ROLES = {"public", "current_user", "session_user", "current_role"}


def roles_in(sql: str) -> set[str]:
    found = {m.group(1).strip('"') for pattern in _ROLE_NAMES for m in re.finditer(pattern, sql, re.I)}
    return {r for r in found if r.lower() not in _NOT_ROLES}


def case(directory: Path, root: Path) -> dict:
    old = (directory / "old.sql").read_text() if (directory / "old.sql").exists() else ""
    new = (directory / "new.sql").read_text()
    return {
        "id": f"pgschema/{directory.relative_to(root).as_posix()}", "source": "pgschema", "setup": [],
        "roles": sorted(roles_in(old + new)), "from": [_DO_BLOCK.sub("", old)] if old.strip() else [],
        "to": [_DO_BLOCK.sub("", new)], "expect": "converge", "hazards": [], "needs": {}, "notes": "",
        "origin": f"pgschema/pgschema:testdata/diff/{directory.relative_to(root).as_posix()}",
    }


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(sys.argv[1]) / "testdata" / "diff"
    if not root.is_dir():
        print(f"error: {root} is not a directory (expected a pgschema checkout)", file=sys.stderr)
        return 1
    for new in sorted(root.rglob("new.sql")):
        print(json.dumps(case(new.parent, root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
