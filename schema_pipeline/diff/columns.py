"""SQL for columns: ADD/DROP COLUMN and in-place ALTER COLUMN (type, default, NOT NULL, identity, ...)."""

from __future__ import annotations

import re
from dataclasses import replace

from schema_pipeline.catalog.model import DbObject
from schema_pipeline.catalog.names import ident, literal, qname
from schema_pipeline.diff.base import DiffContext, Generator
from schema_pipeline.diff.common import Hazard, HazardType, Step, acl_steps, comment_steps, hz, step
from schema_pipeline.errors import UnplannableChange

_INT_WIDTH = {"smallint": 2, "integer": 4, "bigint": 8}
_NO_REWRITE = {("character varying", "text"), ("text", "character varying")}
# Exact integers: beyond this many bits a floating type rounds them.
_FLOAT_MANTISSA = {"real": 24, "double precision": 53}
_INT_BITS = {"smallint": 15, "integer": 31, "bigint": 63}
_STRINGS = {"text", "character varying", "character"}
_BITS = {"bit", "bit varying"}
# Types whose typmod is a fractional-seconds precision (no typmod = 6 digits).
_PRECISION = {"timestamp without time zone", "timestamp with time zone", "time without time zone",
              "time with time zone", "interval"}
# Length or precision increases PostgreSQL applies without rewriting (varchar_support, varbit_support,
# numeric_support with an unchanged scale, TemporalSimplify): the stored values already fit.
_RELABEL_WIDER = {"character varying", "bit varying", "numeric", *_PRECISION}
# Conversions that drop part of every value (not only out-of-range ones).
_DROPS_PART = {
    ("timestamp with time zone", "timestamp without time zone"): "the time zone offset (the instant) is lost",
    ("timestamp with time zone", "date"): "the time of day is lost",
    ("timestamp without time zone", "date"): "the time of day is lost",
    ("timestamp with time zone", "time with time zone"): "the date is lost",
    ("timestamp with time zone", "time without time zone"): "the date is lost",
    ("timestamp without time zone", "time without time zone"): "the date is lost",
    ("time with time zone", "time without time zone"): "the time zone offset is lost",
    ("interval", "time without time zone"): "days, months and years are lost",
    ("json", "jsonb"): "key order, duplicate keys and white space are lost",
}


def _split_type(t: str) -> tuple[str, list[int]]:
    m = re.match(r"^(.*?)\(([\d,\s]+)\)(.*)$", t)
    if not m:
        return t, []
    return m.group(1) + m.group(3), [int(x) for x in m.group(2).split(",")]


def _element(t: str) -> tuple[str, list[int], int]:
    """(base type, typmods, array dimensions) of a column type as format_type writes it:
    'character varying(10)[]' -> ('character varying', [10], 1)."""
    dims = 0
    while t.endswith("[]"):
        t, dims = t[:-2], dims + 1
    base, mods = _split_type(t)
    return base, mods, dims


def _max_length(base: str, mods: list[int]) -> float:
    """The longest value a string or bit-string type holds (text and unbounded varchar/varbit: no limit)."""
    return mods[0] if mods and base in _STRINGS | _BITS else float("inf")


def lossy_conversion(old: str, new: str) -> str | None:
    """Why converting a column from type `old` to `new` (USING col::new) can lose data, or None.

    Lossy: integer narrowing; numeric precision or scale shrink; numeric/floating -> integer; double
    precision -> real; numeric or wide integers -> floating types; string length shrink (text or
    varchar -> varchar(n)/char(n), a smaller n); bit and bit varying length shrink; a smaller
    fractional-seconds precision; timestamptz -> timestamp and the other conversions in _DROPS_PART.
    Widenings (varchar(50) -> varchar(100), varchar -> text, int -> bigint, ...) are not lossy."""
    ob, om, od = _element(old)
    nb, nm, nd = _element(new)
    if od != nd:
        return None
    if ob in _INT_WIDTH and nb in _INT_WIDTH:
        return f"values outside the range of {nb} no longer fit" if _INT_WIDTH[nb] < _INT_WIDTH[ob] else None
    if nb in _INT_WIDTH and ob in ("numeric", "real", "double precision"):
        return "the fractional part is rounded away"
    if ob == "double precision" and nb == "real":
        return "real keeps about 6 significant digits instead of 15"
    if nb in _FLOAT_MANTISSA and (ob == "numeric" or _INT_BITS.get(ob, 0) > _FLOAT_MANTISSA[nb]):
        return f"{nb} rounds values beyond {_FLOAT_MANTISSA[nb]} bits of precision"
    if ob == nb == "numeric":
        if not nm:
            return None
        if not om:
            return "an unconstrained numeric becomes bounded"
        (op, os_), (np_, ns) = (om + [0])[:2], (nm + [0])[:2]
        if ns < os_:
            return f"the scale shrinks from {os_} to {ns} (values are rounded)"
        if np_ - ns < op - os_:
            return f"values with more than {np_ - ns} integer digits (up to {op - os_} before) no longer fit"
        return None
    if (ob in _STRINGS and nb in _STRINGS) or (ob in _BITS and nb in _BITS):
        if _max_length(nb, nm) < _max_length(ob, om):
            longest = "unlimited" if _max_length(ob, om) == float("inf") else f"{int(_max_length(ob, om))}"
            return f"values longer than {int(_max_length(nb, nm))} are truncated (was {longest})"
        return None
    if ob == nb and ob in _PRECISION:
        if nm and nm[-1] < (om[-1] if om else 6):
            return f"fractional seconds are rounded to {nm[-1]} digits"
        return None
    if ob.startswith("interval") and nb.startswith("interval") and ob != nb and nb != "interval":
        return f"the fields that {nb} does not have are dropped"
    return _DROPS_PART.get((ob, nb))


def _relabel_only(old: str, new: str) -> bool:
    """True when PostgreSQL changes the type without rewriting the table (binary-compatible widening)."""
    (ob, om), (nb, nm) = _split_type(old), _split_type(new)
    if (ob, nb) in _NO_REWRITE and not nm:
        return True
    if ob != nb or ob not in _RELABEL_WIDER or lossy_conversion(old, new):
        return False
    if ob == "numeric" and om and nm:
        return (om + [0])[1] == (nm + [0])[1]  # numeric_support: a changed scale rewrites every value
    return True


def type_change_hazards(key: str, old: str, new: str) -> list:
    """Hazards of ALTER COLUMN TYPE: a lossy conversion deletes data; most changes rewrite the table."""
    hazards = []
    why = lossy_conversion(old, new)
    if why:
        hazards.append(hz(HazardType.DELETES_DATA, f"type change of {key} from {old} to {new} can lose data: {why}"))
    if not _relabel_only(old, new):
        hazards.append(hz(HazardType.TABLE_REWRITE, f"type change of {key} rewrites the table"))
    return hazards


def _seq_options(spec: str | None, name: str | None) -> str:
    if not spec:
        return ""
    _typ, start, inc, mn, mx, cache, cycle = spec.split("|")
    cyc = "CYCLE" if cycle in ("t", "True", "true") else "NO CYCLE"
    seq_name = f"SEQUENCE NAME {name} " if name else ""
    return f" ({seq_name}START WITH {start} INCREMENT BY {inc} MINVALUE {mn} MAXVALUE {mx} CACHE {cache} {cyc})"


def _identity(a: dict) -> str:
    kind = "ALWAYS" if a["identity"] == "a" else "BY DEFAULT"
    return f"GENERATED {kind} AS IDENTITY{_seq_options(a.get('identity_seq'), a.get('identity_seq_name'))}"


def column_definition(col: DbObject) -> str:
    """Column definition as used in CREATE TABLE / ADD COLUMN."""
    a = col.attrs
    sql = f"{ident(col.name)} {a['type']}"
    if a.get("collation"):
        sql += f" COLLATE {a['collation']}"
    if a.get("generated"):
        sql += f" GENERATED ALWAYS AS ({a['generated']}) STORED"
    if a.get("default") is not None:
        sql += f" DEFAULT {a['default']}"
    if a.get("notnull"):
        sql += " NOT NULL"
    if a.get("identity"):
        sql += " " + _identity(a)
    return sql


def _table_ref(col: DbObject) -> str:
    table = col.parent.split(":", 1)[1] if col.parent else ""
    schema, _, name = table.partition(".")
    return qname(schema, name)


def _is_user_type(type_sql: str, ctx: DiffContext, desired: bool) -> bool:
    """True when the column type is an enum/domain/composite of the catalog (casts go through text)."""
    base = type_sql.removesuffix("[]").replace('"', "")
    cat = ctx.desired if desired else ctx.current
    obj = cat.get(f"type:{base}") or (cat.get(f"type:public.{base}") if "." not in base else None)
    return obj is not None and obj.attrs.get("typtype") == "e"


# PostgreSQL's built-in casts between common built-in types (pg_cast, the same from 12 to 17): type -> the
# types it can be cast to. Every type casts to and from the string types (I/O conversion), and each type to
# itself (a new length or precision).
_BUILTIN_CASTS: dict[str, frozenset[str]] = {k: frozenset(v.split(", ")) for k, v in {
    "bigint": "bit, double precision, integer, money, numeric, oid, real, smallint",
    "bit": "bigint, bit varying, integer",
    "bit varying": "bit",
    "boolean": "character, character varying, integer, text",
    "box": "circle, lseg, point, polygon",
    "cidr": "character, character varying, inet, text",
    "circle": "box, point, polygon",
    "date": "timestamp with time zone, timestamp without time zone",
    "double precision": "bigint, integer, numeric, real, smallint",
    "inet": "character, character varying, cidr, text",
    "integer": "bigint, bit, boolean, double precision, money, numeric, oid, real, smallint",
    "interval": "time without time zone",
    "json": "jsonb",
    "jsonb": "bigint, boolean, double precision, integer, json, numeric, real, smallint",
    "lseg": "point",
    "macaddr": "macaddr8",
    "macaddr8": "macaddr",
    "money": "numeric",
    "numeric": "bigint, double precision, integer, money, real, smallint",
    "oid": "bigint, integer",
    "path": "polygon",
    "point": "box",
    "polygon": "box, circle, path, point",
    "real": "bigint, double precision, integer, numeric, smallint",
    "smallint": "bigint, double precision, integer, numeric, oid, real",
    "time with time zone": "time without time zone",
    "time without time zone": "interval, time with time zone",
    "timestamp with time zone": "date, time with time zone, time without time zone, timestamp without time zone",
    "timestamp without time zone": "date, time without time zone, timestamp with time zone",
    "xml": "character, character varying, text",
}.items()}
_STRING_TYPES = {"text", "character varying", "character", "name"}
# The built-in types whose casts _BUILTIN_CASTS lists completely; of other types (user-defined, extensions')
# nothing is assumed: the conversion is written as a cast and the rehearsal tells.
_KNOWN_TYPES = set(_BUILTIN_CASTS) | _STRING_TYPES | {
    "uuid", "bytea", "tsvector", "tsquery", "line", "int4range", "int8range", "numrange", "daterange", "tsrange",
    "tstzrange", "pg_lsn"}


def has_cast(old: str, new: str, ctx: DiffContext | None = None) -> bool:
    """Whether `USING column::new` can convert a column of type `old` (format_type names): False only for
    built-in types that PostgreSQL has no cast between (bigint -> uuid, integer -> date, ...) and no cast of the
    target's converts either."""
    ob, _om, od = _element(old)
    nb, _nm, nd = _element(new)
    if od == nd and (ob == nb or ob in _STRING_TYPES or nb in _STRING_TYPES):
        return True
    if (not od and ob in _STRING_TYPES) or (not nd and nb in _STRING_TYPES):
        return True  # I/O conversion of the whole value, arrays included
    if ob not in _KNOWN_TYPES or nb not in _KNOWN_TYPES:
        return True
    if od != nd:
        return False
    if ctx is not None and ctx.current.get(f"cast:({ob} AS {nb})") and ctx.desired.get(f"cast:({ob} AS {nb})"):
        return True
    return nb in _BUILTIN_CASTS.get(ob, frozenset())


def _keys_on(col_id: str, ctx: DiffContext) -> list[str]:
    """Primary keys, unique/exclusion constraints and foreign keys that use the column, on either side."""
    names = {o.key for cat in (ctx.current, ctx.desired) for o in cat.objects.values()
             if col_id in o.deps and (o.kind == "fkey" or o.attrs.get("contype") in ("p", "u", "x"))}
    return sorted(names)


def _refuse_key_column(col: DbObject, new_type: str, old_type: str, ctx: DiffContext) -> None:
    """A key column's type is never changed without a cast: its values identify rows or point at them, and
    the keys around it would have to be dropped and rebuilt on values nobody chose."""
    keys = _keys_on(col.id, ctx)
    if keys:
        raise UnplannableChange(
            f"{col.key}: no cast from {old_type} to {new_type}, and the column is part of {', '.join(keys)}; "
            "change it with a migration of your own (add a column of the new type, convert, swap the keys)")


NO_CAST = "no cast from "


def _no_cast_type_change(col: DbObject, table: str, new_type: str, old_type: str, hazards: list,
                         using: str | None) -> Step:
    """A type change PostgreSQL has no cast for: with the conversion the state declares (`using`), else the
    column keeps its place, constraints and indexes but not its values: they become NULL, or the column's new
    default, as dropping the column and adding it again would make them (DELETES_DATA; `convert_empty_tables`
    lifts the hazard for a table with no rows)."""
    ref = f"ALTER TABLE {table} ALTER COLUMN {ident(col.name)} TYPE {new_type} USING"
    if using:
        return step(col, "alter", f"{ref} {using}", *hazards)
    a = col.attrs
    fill = f"({a['default']})" if a.get("default") is not None and not a.get("identity") else "NULL"
    message = (f"{NO_CAST}{old_type} to {new_type} for {col.key}: its values are deleted (the column is emptied, "
               f"{'then set to its default' if fill != 'NULL' else 'set to NULL'}, as dropping and adding it "
               "again would); to keep them, declare their conversion on the column's line: "
               "-- schema-pipeline: using <expression>")
    relation = (col.parent or ":").split(":", 1)[1]
    return step(col, "alter", f"{ref} {fill}", *hazards, Hazard(HazardType.DELETES_DATA, message, relation=relation))


_CONVERSION = re.compile(r'^ALTER TABLE ("(?:[^"]|"")*"\."(?:[^"]|"")*") ALTER COLUMN ')


def _no_cast_hazard(s: Step) -> Hazard | None:
    return next((h for h in s.hazards if h.type == HazardType.DELETES_DATA and h.message.startswith(NO_CAST)), None)


def conversion_tables(steps: list[Step]) -> set[str]:
    """The tables (quoted, qualified) of the type changes without a cast that delete values if there are any."""
    return {m.group(1) for s in steps if s.object_kind == "column" and _no_cast_hazard(s)
            and (m := _CONVERSION.match(s.sql))}


def convert_empty_tables(steps: list[Step], empty: set[str]) -> list[Step]:
    """The steps with each type change without a cast on a table of `empty` (tables without rows when the plan
    is made) as one that deletes nothing: no DELETES_DATA hazard, and the step refuses to run (and with it the
    whole transaction) if the table has rows by then."""
    out: list[Step] = []
    for s in steps:
        hazard = _no_cast_hazard(s) if s.object_kind == "column" else None
        m = _CONVERSION.match(s.sql) if hazard else None
        if m is None or m.group(1) not in empty:
            out.append(s)
            continue
        table = m.group(1)
        message = (f"{hazard.relation} has rows now but had none when the plan was made: the type change of "
                   f"{s.object_name} would delete their values; re-create the plan")
        tag = next(t for t in (f"$sp{n or ''}$" for n in range(100)) if t not in s.sql)
        sql = (f"DO {tag} BEGIN\n  LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n"
               f"  IF EXISTS (SELECT 1 FROM {table}) THEN\n    RAISE EXCEPTION {literal(message).replace('%', '%%')};\n"
               f"  END IF;\n  {s.sql}\nEND {tag};")
        out.append(replace(s, sql=sql, hazards=[h for h in s.hazards if h is not hazard]))
    return out


def _identity_catch_up(col: DbObject, table: str) -> list[Step]:
    """An identity added to a column that has rows continues after the largest value (a serial converted to
    an identity, ids assigned by hand): starting again at START WITH would collide with existing keys."""
    spec = col.attrs.get("identity_seq")
    if not spec or int(spec.split("|")[2]) < 0:
        return []
    start = int(spec.split("|")[1])
    column = ident(col.name)
    return [step(col, "alter", f"SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence({literal(table)}, "
                 f"{literal(col.name)}), max({column})) FROM {table} HAVING max({column}) >= {start}")]


_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}


def column_setting_steps(col: DbObject, old: dict | None) -> list[Step]:
    """SET STATISTICS / SET STORAGE / SET COMPRESSION of a table column (see setting_steps)."""
    return setting_steps(col, _table_ref(col), col.name, old or {}, col.attrs)


def setting_steps(obj: DbObject, relation: str, column: str, o: dict, a: dict) -> list[Step]:
    """SET STATISTICS / SET STORAGE / SET COMPRESSION of a column of a table or materialized view, when
    they differ from the previous (or built-in) setting."""
    ref = f"ALTER TABLE {relation} ALTER COLUMN {ident(column)}"
    steps: list[Step] = []
    if o.get("stattarget") != a.get("stattarget"):
        steps.append(step(obj, "alter", f"{ref} SET STATISTICS {a.get('stattarget', -1)}"))
    storage = a.get("storage") or o.get("storage_default")
    if o.get("storage") != a.get("storage") and storage:
        steps.append(step(obj, "alter", f"{ref} SET STORAGE {_STORAGE[storage]}"))
    if o.get("compression") != a.get("compression"):  # metadata only: existing values keep their compression
        steps.append(step(obj, "alter", f"{ref} SET COMPRESSION {a.get('compression') or 'default'}"))
    return steps


class ColumnGenerator(Generator):
    kind = "column"

    def absorbed_by_parent(self, obj: DbObject, ctx: DiffContext, phase: str) -> bool:
        return True

    def create(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        ref = _table_ref(obj)
        steps: list[Step] = []
        if not obj.attrs.get("from_parent"):
            haz = []
            if obj.attrs.get("generated") or (obj.attrs.get("default") or "").find("(") >= 0:
                haz.append(hz(HazardType.TABLE_REWRITE, "volatile or generated column may rewrite the table"))
            steps.append(step(obj, "alter", f"ALTER TABLE {ref} ADD COLUMN {column_definition(obj)}", *haz))
        steps += column_setting_steps(obj, None)
        steps += comment_steps(obj, f"COLUMN {ref}.{ident(obj.name)}", None, obj.attrs.get("comment"))
        steps += acl_steps(obj, "COLUMN", ref, [], obj.attrs.get("acl"), column=obj.name)
        return steps

    def drop(self, obj: DbObject, ctx: DiffContext) -> list[Step]:
        if obj.attrs.get("from_parent") and not obj.attrs.get("generated"):
            return []
        return [step(obj, "alter", f"ALTER TABLE {_table_ref(obj)} DROP COLUMN IF EXISTS {ident(obj.name)}",
                     hz(HazardType.DELETES_DATA, f"drops column {obj.key}"))]

    def alter(self, old: DbObject, new: DbObject, ctx: DiffContext) -> list[Step] | None:
        o, a = old.attrs, new.attrs
        ref = _table_ref(new)
        col = f"ALTER TABLE {ref} ALTER COLUMN {ident(new.name)}"
        steps: list[Step] = []
        if o.get("inherited") and not a.get("from_parent"):
            return None  # an inherited column becomes a local one: re-add it once the parent's is gone
        if o.get("generated") != a.get("generated"):
            if o.get("generated") and not a.get("generated"):
                steps.append(step(new, "alter", f"{col} DROP EXPRESSION"))
                o = dict(o, generated=None, default=None)
            elif not new.attrs.get("from_parent"):
                return None
        type_changed = (o["type"], o.get("collation")) != (a["type"], a.get("collation"))
        type_changed = type_changed and not a.get("from_parent")  # inherited columns follow their parent
        # The old default goes first where it could stand in the way (of the new type, of an identity);
        # a changed default alone is replaced below.
        if (type_changed or (a.get("identity") and not o.get("identity"))) and o.get("default") is not None:
            steps.append(step(new, "alter", f"{col} DROP DEFAULT"))
            o = dict(o, default=None)
        if type_changed:
            hazards = type_change_hazards(new.key, o["type"], a["type"])
            hazards.append(hz(HazardType.ACQUIRES_ACCESS_EXCLUSIVE_LOCK, "ALTER COLUMN TYPE locks the table"))
            collate = f" COLLATE {a['collation']}" if a.get("collation") else ""
            via = "::text" if _is_user_type(o["type"], ctx, False) or _is_user_type(a["type"], ctx, True) else ""
            arr = "[]" if via and a["type"].endswith("[]") else ""
            using = ctx.conversions.get(new.key)
            if not has_cast(o["type"], a["type"], ctx) or using:
                if not using:
                    _refuse_key_column(new, a["type"] + collate, o["type"], ctx)
                steps.append(_no_cast_type_change(new, ref, a["type"] + collate, o["type"], hazards, using))
            else:
                steps.append(step(new, "alter", f"{col} TYPE {a['type']}{collate} USING {ident(new.name)}{via}{arr}::"
                                  f"{a['type']}", *hazards))
            ctx.invalidated.add(new.id)
        if a.get("identity") and not o.get("notnull"):
            steps.append(step(new, "alter", f"{col} SET NOT NULL"))
            o = dict(o, notnull=True)
        if o.get("identity") != a.get("identity"):
            if not a.get("identity"):
                steps.append(step(new, "alter", f"{col} DROP IDENTITY IF EXISTS"))
            elif not o.get("identity"):
                steps.append(step(new, "alter", f"{col} ADD {_identity(a)}"))
                steps += _identity_catch_up(new, ref)
            else:
                kind = "ALWAYS" if a["identity"] == "a" else "BY DEFAULT"
                steps.append(step(new, "alter", f"{col} SET GENERATED {kind}"))
        if a.get("identity") and o.get("identity") and o.get("identity_seq") != a.get("identity_seq"):
            _t, start, inc, mn, mx, cache, cycle = a["identity_seq"].split("|")
            old_start = int(o["identity_seq"].split("|")[1])
            cyc = "CYCLE" if cycle in ("t", "True", "true") else "NO CYCLE"
            restart = f" RESTART WITH {start}" if not int(mn) <= old_start <= int(mx) else ""
            steps.append(step(new, "alter", f"{col} SET START WITH {start} SET INCREMENT BY {inc} SET MINVALUE {mn} "
                              f"SET MAXVALUE {mx} SET CACHE {cache} SET {cyc}{restart}"))
        if a.get("identity") and o.get("identity") and o.get("identity_seq_name") != a.get("identity_seq_name") \
                and o.get("identity_seq_name") and a.get("identity_seq_name"):
            new_name = a["identity_seq_name"].rsplit(".", 1)[1]
            steps.append(step(new, "alter", f"ALTER SEQUENCE {o['identity_seq_name']} RENAME TO {new_name}"))
        if o.get("default") != a.get("default") and not a.get("generated"):
            if a.get("default") is None:
                steps.append(step(new, "alter", f"{col} DROP DEFAULT"))
            else:
                steps.append(step(new, "alter", f"{col} SET DEFAULT {a['default']}"))
        if o.get("notnull") != a.get("notnull"):
            if a.get("notnull"):
                steps.append(step(new, "alter", f"{col} SET NOT NULL",
                                  hz(HazardType.VALIDATES_CONSTRAINT, "SET NOT NULL scans the table")))
            elif not (a.get("identity") or (o.get("identity") and a.get("identity"))):
                steps.append(step(new, "alter", f"{col} DROP NOT NULL"))
        steps += column_setting_steps(new, o)
        steps += comment_steps(new, f"COLUMN {ref}.{ident(new.name)}", o.get("comment"), a.get("comment"))
        steps += acl_steps(new, "COLUMN", ref, o.get("acl"), a.get("acl"), column=new.name)
        return steps
