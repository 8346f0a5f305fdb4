"""Property-based convergence: for random schema pairs (A, B), apply(plan(A -> B)) gives B and the re-plan
is empty. Schemas are drawn from the supported kinds: tables (columns, types, defaults, NOT NULL,
primary key, unique, check, foreign keys), indexes (partial too), views, sequences, enums, comments."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schema_pipeline_tests.conftest import create_database, drop_database
from schema_pipeline_tests.engine_harness import assert_converges

# Mutually castable types (ALTER COLUMN TYPE ... USING col::type exists between any two of them).
TYPES = ("integer", "bigint", "text", "varchar(20)", "numeric(10,2)")
NUMERIC = {"integer", "bigint", "numeric(10,2)"}
DEFAULTS = {"integer": ("0", "7"), "bigint": ("0", "42"), "numeric(10,2)": ("1.5",), "text": ("'x'", "''"),
            "varchar(20)": ("'y'",)}
LABELS = ("red", "green", "blue", "cyan")
WORDS = ("alpha", "beta", "it's", "gamma")


@dataclass
class Column:
    name: str
    type: str
    notnull: bool
    default: str | None
    comment: str | None


@dataclass
class Table:
    name: str
    columns: list[Column]
    pk: bool
    unique: str | None
    check: str | None
    index: tuple[str, bool] | None  # (column, partial)
    comment: str | None
    fk: tuple[str, str] | None = None  # (local column, referenced table)


@dataclass
class Schema:
    enums: dict[str, list[str]]
    sequences: dict[str, tuple[int, int]]
    tables: list[Table]
    views: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def sql(self) -> str:
        out: list[str] = []
        for name, labels in self.enums.items():
            out.append(f"CREATE TYPE {name} AS ENUM ({', '.join(repr(x) for x in labels)});")
        for name, (start, inc) in self.sequences.items():
            out.append(f"CREATE SEQUENCE {name} START {start} INCREMENT {inc};")
        for t in self.tables:
            cols = []
            for i, c in enumerate(t.columns):
                spec = f"{c.name} {c.type}"
                if c.default is not None:
                    spec += f" DEFAULT {c.default}"
                if c.notnull or (t.pk and i == 0):
                    spec += " NOT NULL"
                cols.append(spec)
            if t.pk:
                cols.append(f"CONSTRAINT {t.name}_pkey PRIMARY KEY ({t.columns[0].name})")
            if t.unique:
                cols.append(f"CONSTRAINT {t.name}_{t.unique}_key UNIQUE ({t.unique})")
            if t.check:
                cols.append(f"CONSTRAINT {t.name}_{t.check}_check CHECK ({t.check} > 0)")
            out.append(f"CREATE TABLE {t.name} ({', '.join(cols)});")
            if t.index:
                col, partial = t.index
                where = f" WHERE {col} IS NOT NULL" if partial else ""
                out.append(f"CREATE INDEX {t.name}_{col}_idx ON {t.name} ({col}){where};")
            if t.comment:
                out.append(f"COMMENT ON TABLE {t.name} IS '{t.comment.replace(chr(39), chr(39) * 2)}';")
            for c in t.columns:
                if c.comment:
                    out.append(f"COMMENT ON COLUMN {t.name}.{c.name} IS '{c.comment.replace(chr(39), chr(39) * 2)}';")
        for t in self.tables:
            if t.fk:
                col, ref = t.fk
                out.append(f"ALTER TABLE {t.name} ADD CONSTRAINT {t.name}_{col}_fkey FOREIGN KEY ({col}) "
                           f"REFERENCES {ref};")
        for name, (table, cols) in self.views.items():
            out.append(f"CREATE VIEW {name} AS SELECT {', '.join(cols)} FROM {table};")
        return "\n".join(out)


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    enums = {}
    for name in draw(st.lists(st.sampled_from(("e0", "e1")), unique=True, max_size=2)):
        enums[name] = draw(st.lists(st.sampled_from(LABELS), unique=True, min_size=1, max_size=4))
    sequences = {name: (draw(st.integers(1, 100)), draw(st.sampled_from((1, 2, 10))))
                 for name in draw(st.lists(st.sampled_from(("s0", "s1")), unique=True, max_size=2))}
    types = TYPES + tuple(enums)
    tables: list[Table] = []
    for tname in ("t0", "t1", "t2")[: draw(st.integers(1, 3))]:
        names = draw(st.lists(st.sampled_from(("c0", "c1", "c2", "c3")), unique=True, min_size=1, max_size=4))
        cols = []
        for n in names:
            typ = draw(st.sampled_from(types))
            options = DEFAULTS.get(typ) or tuple(f"'{x}'" for x in enums.get(typ, ()))
            default = draw(st.none() | st.sampled_from(options)) if options else None
            if typ in NUMERIC and sequences and draw(st.booleans()):
                default = f"nextval('{draw(st.sampled_from(sorted(sequences)))}')"
            cols.append(Column(n, typ, draw(st.booleans()), default, draw(st.none() | st.sampled_from(WORDS))))
        col_names = [c.name for c in cols]
        numeric = [c.name for c in cols if c.type in NUMERIC]
        simple = [c.name for c in cols if c.type not in enums]
        tables.append(Table(
            name=tname, columns=cols, pk=draw(st.booleans()),
            unique=draw(st.none() | st.sampled_from(simple)) if simple else None,
            check=draw(st.none() | st.sampled_from(numeric)) if numeric else None,
            index=(draw(st.sampled_from(col_names)), draw(st.booleans())) if draw(st.booleans()) else None,
            comment=draw(st.none() | st.sampled_from(WORDS)),
        ))
    for i, t in enumerate(tables):  # a foreign key towards an earlier table's primary key, same type
        targets = [r for r in tables[:i] if r.pk]
        if targets and draw(st.booleans()):
            ref = draw(st.sampled_from(targets))
            same = [c.name for c in t.columns if c.type == ref.columns[0].type]
            if same:
                t.fk = (draw(st.sampled_from(same)), ref.name)
    views = {}
    for vname in draw(st.lists(st.sampled_from(("v0", "v1")), unique=True, max_size=2)):
        t = draw(st.sampled_from(tables))
        views[vname] = (t.name, draw(st.lists(st.sampled_from([c.name for c in t.columns]), unique=True,
                                              min_size=1)))
    return Schema(enums, sequences, tables, views)


def _make_db(urls: list[str]):
    def make(sql_text: str | None) -> str:
        url = create_database(sql_text=sql_text)
        urls.append(url)
        return url
    return make


# No shrinking phase: each example builds two databases, and shrinking one takes many minutes; the
# failing pair is printed as generated.
@settings(max_examples=25, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(a=schemas(), b=schemas())
def test_random_schema_pairs_converge(a: Schema, b: Schema) -> None:
    urls: list[str] = []
    try:
        assert_converges(_make_db(urls), a.sql(), b.sql())
    finally:
        for url in urls:
            drop_database(url)
