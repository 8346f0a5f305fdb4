"""Size estimates for hazards: rows and bytes of the table or index a step touches.

Read from the TARGET's statistics (pg_class.reltuples, pg_total_relation_size /
pg_relation_size) with one set-based query for every relation the plan touches.
"""

from __future__ import annotations

import re
from dataclasses import replace

import psycopg

from schema_pipeline.plan.model import Plan, Step

# Non-ASCII letters as a negated class: a \x80-\uffff range under re.I costs ~10 ms per compile.
_IDENT = r'(?:"(?:[^"]|"")+"|(?:[A-Za-z_]|[^\x00-\x7f])(?:[A-Za-z0-9_$]|[^\x00-\x7f])*)'
_QNAME = rf"({_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}})"
_PATTERNS = [
    re.compile(rf"^ALTER\s+(?:TABLE|INDEX|MATERIALIZED\s+VIEW)\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_QNAME}", re.I),
    re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT}\s+)?"
               rf"ON\s+(?:ONLY\s+)?{_QNAME}", re.I),
    re.compile(rf"^DROP\s+(?:TABLE|INDEX|MATERIALIZED\s+VIEW)\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?{_QNAME}", re.I),
    re.compile(rf"^(?:REINDEX|CLUSTER|TRUNCATE|REFRESH\s+MATERIALIZED\s+VIEW)\s+(?:TABLE\s+|INDEX\s+)?"
               rf"(?:CONCURRENTLY\s+)?{_QNAME}", re.I),
]
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_PART = re.compile(_IDENT)
RELATION_KINDS = {"table", "index", "column", "constraint", "fkey", "trigger", "matview", "policy"}

_SIZES_SQL = """
SELECT t.n, n.nspname, c.relname, c.relkind,
       CASE WHEN c.relkind IN ('p', 'I') THEN p.rows ELSE c.reltuples::float8 END AS rows,
       CASE WHEN c.relkind IN ('p', 'I') THEN p.bytes
            WHEN c.relkind IN ('r', 'm', 't') THEN pg_total_relation_size(c.oid)
            ELSE pg_relation_size(c.oid) END AS bytes,
       CASE WHEN c.relkind IN ('p', 'I') THEN p.heap ELSE pg_relation_size(c.oid) END AS heap
FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(sch, rel, n)
JOIN pg_class c ON c.oid = CASE WHEN t.sch IS NULL THEN to_regclass(quote_ident(t.rel))
                                ELSE to_regclass(quote_ident(t.sch) || '.' || quote_ident(t.rel)) END
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT CASE WHEN bool_and(pc.reltuples >= 0) THEN sum(pc.reltuples)::float8 END AS rows,
           sum(CASE WHEN pc.relkind = 'r' THEN pg_total_relation_size(pc.oid)
                    ELSE pg_relation_size(pc.oid) END) AS bytes,
           sum(pg_relation_size(pc.oid)) AS heap
    FROM pg_partition_tree(c.oid) pt JOIN pg_class pc ON pc.oid = pt.relid
    WHERE pt.isleaf
) p ON c.relkind IN ('p', 'I')
"""


def _split(qname: str) -> list[str]:
    """'"My"."T"' -> ['My', 'T']; unquoted parts are folded to lower case like PostgreSQL does."""
    parts = []
    for m in _PART.finditer(qname):
        tok = m.group(0)
        parts.append(tok[1:-1].replace('""', '"') if tok.startswith('"') else tok.lower())
    return parts


def _raw_split(name: str) -> list[str]:
    """Names as the diff writes them ('public.users', 'public.users.email'), quoted or not."""
    if '"' in name:
        return _split(name)
    return name.split(".")


def relation_candidates(step: Step) -> list[tuple[str | None, str]]:
    """(schema, relation) pairs a step may touch, most specific first."""
    out: list[tuple[str | None, str]] = []
    for h in step.hazards:
        if h.relation:
            parts = _raw_split(h.relation)
            out.append((parts[-2], parts[-1]) if len(parts) >= 2 else (None, parts[0]))
    sql = _COMMENTS.sub(" ", step.sql).strip()
    for pattern in _PATTERNS:
        m = pattern.match(sql)
        if m:
            parts = _split(m.group(1))
            out.append((parts[-2], parts[-1]) if len(parts) >= 2 else (None, parts[0]))
            break
    if step.object_kind in RELATION_KINDS:
        parts = _raw_split(step.object_name)
        if len(parts) >= 2:
            out.append((parts[0], parts[1]))
    return list(dict.fromkeys(out))


def annotate_sizes(conn: psycopg.Connection, plan: Plan) -> Plan:
    """Fill relation/rows/bytes of every hazard from the target's statistics (in place; returns plan)."""
    wanted: list[tuple[int, tuple[str | None, str]]] = []
    for i, step in enumerate(plan.steps):
        if step.hazards:
            wanted += [(i, cand) for cand in relation_candidates(step)]
    if not wanted:
        return plan
    rows = conn.execute(_SIZES_SQL, ([c[0] for _, c in wanted], [c[1] for _, c in wanted])).fetchall()
    found = {int(r[0]) - 1: r for r in rows}
    done: set[int] = set()
    for pos, (i, _) in enumerate(wanted):
        if i in done or pos not in found:
            continue
        done.add(i)
        _, schema, relname, _, est_rows, est_bytes, heap = found[pos]
        size_bytes = int(est_bytes) if est_bytes is not None else None
        if est_rows is None or est_rows < 0:  # never analyzed: only an empty relation is certain
            est_rows = 0 if heap == 0 else None
        label = f"{schema}.{relname}"
        step = plan.steps[i]
        step.hazards = [replace(h, relation=label, rows=None if est_rows is None else int(est_rows),
                                bytes=size_bytes) for h in step.hazards]
    return plan
