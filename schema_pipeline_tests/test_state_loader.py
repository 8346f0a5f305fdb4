"""load_state: directory and glob reading, pg_dump compatibility, renames, directives, inventory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from schema_pipeline.errors import StateErrors
from schema_pipeline.state import count_by_kind, load_state, object_inventory
from schema_pipeline.state.resolve import default_schemas

# Output of `pg_dump --schema-only` (PostgreSQL 15.20) of a scratch database, plus the
# `SET transaction_timeout` line newer pg_dump versions write.
PG_DUMP = r"""--
-- PostgreSQL database dump
--

\restrict GXaLSKisjhnBq4dohmJtZEuPl3iuIPAYKrHDy3azanqig0z9GJEMgj9GI5fZVBv

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET transaction_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: app; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA app;


ALTER SCHEMA app OWNER TO postgres;

--
-- Name: mood; Type: TYPE; Schema: app; Owner: postgres
--

CREATE TYPE app.mood AS ENUM (
    'sad',
    'ok',
    'happy'
);


ALTER TYPE app.mood OWNER TO postgres;

--
-- Name: f(integer); Type: FUNCTION; Schema: app; Owner: postgres
--

CREATE FUNCTION app.f(a integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$ BEGIN RETURN a + 1; END $$;


ALTER FUNCTION app.f(a integer) OWNER TO postgres;

--
-- Name: g(integer); Type: FUNCTION; Schema: app; Owner: postgres
--

CREATE FUNCTION app.g(a integer) RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT (a + 1);
END;


ALTER FUNCTION app.g(a integer) OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: orders; Type: TABLE; Schema: app; Owner: postgres
--

CREATE TABLE app.orders (
    id bigint NOT NULL,
    user_id bigint,
    note character varying(20),
    CONSTRAINT orders_note_check CHECK (((note)::text <> ''::text))
);


ALTER TABLE app.orders OWNER TO postgres;

--
-- Name: orders_id_seq; Type: SEQUENCE; Schema: app; Owner: postgres
--

CREATE SEQUENCE app.orders_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE app.orders_id_seq OWNER TO postgres;

--
-- Name: orders_id_seq; Type: SEQUENCE OWNED BY; Schema: app; Owner: postgres
--

ALTER SEQUENCE app.orders_id_seq OWNED BY app.orders.id;


--
-- Name: users; Type: TABLE; Schema: app; Owner: postgres
--

CREATE TABLE app.users (
    id bigint NOT NULL,
    email text NOT NULL,
    mood app.mood,
    created_at timestamp with time zone DEFAULT now()
);


ALTER TABLE app.users OWNER TO postgres;

--
-- Name: TABLE users; Type: COMMENT; Schema: app; Owner: postgres
--

COMMENT ON TABLE app.users IS 'User''s table; yes';


--
-- Name: users_id_seq; Type: SEQUENCE; Schema: app; Owner: postgres
--

ALTER TABLE app.users ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME app.users_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: v; Type: VIEW; Schema: app; Owner: postgres
--

CREATE VIEW app.v AS
 SELECT users.id,
    users.email
   FROM app.users;


ALTER TABLE app.v OWNER TO postgres;

--
-- Name: orders id; Type: DEFAULT; Schema: app; Owner: postgres
--

ALTER TABLE ONLY app.orders ALTER COLUMN id SET DEFAULT nextval('app.orders_id_seq'::regclass);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: app; Owner: postgres
--

ALTER TABLE ONLY app.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: users users_email_key; Type: CONSTRAINT; Schema: app; Owner: postgres
--

ALTER TABLE ONLY app.users
    ADD CONSTRAINT users_email_key UNIQUE (email);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: app; Owner: postgres
--

ALTER TABLE ONLY app.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: orders_user_idx; Type: INDEX; Schema: app; Owner: postgres
--

CREATE INDEX orders_user_idx ON app.orders USING btree (user_id);


--
-- Name: orders orders_user_id_fkey; Type: FK CONSTRAINT; Schema: app; Owner: postgres
--

ALTER TABLE ONLY app.orders
    ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES app.users(id);


--
-- PostgreSQL database dump complete
--

\unrestrict GXaLSKisjhnBq4dohmJtZEuPl3iuIPAYKrHDy3azanqig0z9GJEMgj9GI5fZVBv

"""


def _write(d: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_pg_dump_output_is_valid_state(tmp_path: Path) -> None:
    _write(tmp_path, {"dump.sql": PG_DUMP})
    state = load_state(str(tmp_path))
    session = [s for s in state.statements if s.session_only]
    kinds = [s.kind for s in session]
    assert kinds[0] == "\\restrict" and kinds[-1] == "\\unrestrict"
    assert kinds.count("SET") == 12 and kinds.count("SELECT") == 1
    set_config = next(s for s in session if s.kind == "SELECT")
    assert set_config.sql == "SELECT pg_catalog.set_config('search_path', '', false);"
    assert set_config.line == 16 and set_config.column == 1
    atomic = next(s for s in state.statements if s.sql.startswith("CREATE FUNCTION app.g"))
    assert atomic.sql.endswith("END;") and atomic.line == 59
    objects = {(o.kind, o.name) for o in object_inventory(state)}
    assert {
        ("schema", "app"),
        ("type", "app.mood"),
        ("function", "app.f(a integer)"),
        ("function", "app.g(a integer)"),
        ("table", "app.orders"),
        ("table", "app.users"),
        ("sequence", "app.orders_id_seq"),
        ("view", "app.v"),
        ("index", "app.orders_user_idx"),
    } == objects
    assert count_by_kind(object_inventory(state))["table"] == 2
    assert all(not s.session_only for s in state.statements if s.kind.startswith(("CREATE", "ALTER")))


def test_directory_is_read_recursively_in_relative_path_order(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "b.sql": "CREATE TABLE b ();",
            "a/z.sql": "CREATE TABLE az ();",
            "a.sql": "CREATE TABLE a ();",
            "a/b/c.sql": "CREATE TABLE abc ();",
            "notes.txt": "not sql",
        },
    )
    state = load_state(str(tmp_path))
    assert state.files == ["a.sql", "a/b/c.sql", "a/z.sql", "b.sql"]
    assert [s.file for s in state.statements] == state.files
    assert state.root == str(tmp_path)


def test_glob_pattern(tmp_path: Path) -> None:
    _write(tmp_path, {"s/02_b.sql": "CREATE TABLE b ();", "s/01_a.sql": "CREATE TABLE a ();", "s/x.txt": ""})
    state = load_state(str(tmp_path / "s" / "*.sql"))
    assert state.files == ["01_a.sql", "02_b.sql"]
    rec = load_state(str(tmp_path / "**" / "*.sql"))
    assert rec.files == ["s/01_a.sql", "s/02_b.sql"]


def test_single_file_path(tmp_path: Path) -> None:
    _write(tmp_path, {"one.sql": "CREATE TABLE a ();"})
    assert load_state(str(tmp_path / "one.sql")).files == ["one.sql"]


def test_fingerprint_covers_paths_and_bytes(tmp_path: Path) -> None:
    _write(tmp_path, {"a.sql": "CREATE TABLE a ();"})
    first = load_state(str(tmp_path)).fingerprint
    assert first == load_state(str(tmp_path)).fingerprint
    (tmp_path / "a.sql").write_text("CREATE TABLE a (x int);")
    second = load_state(str(tmp_path)).fingerprint
    (tmp_path / "a.sql").rename(tmp_path / "b.sql")
    third = load_state(str(tmp_path)).fingerprint
    assert len({first, second, third}) == 3
    assert len(first) == len(hashlib.sha256().hexdigest())


def test_statement_locations_and_kinds(tmp_path: Path) -> None:
    _write(tmp_path, {"a.sql": "-- header\n\nCREATE TABLE t (\n  id int\n);  COMMENT ON TABLE t IS 'x';\n"})
    s1, s2 = load_state(str(tmp_path)).statements
    assert (s1.file, s1.line, s1.column, s1.kind) == ("a.sql", 3, 1, "CREATE TABLE")
    assert (s2.line, s2.column, s2.kind) == (5, 5, "COMMENT")
    assert s1.sql == "CREATE TABLE t (\n  id int\n);"


def test_allowed_schema_statements(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "ok.sql": """
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS plpgsql WITH SCHEMA pg_catalog;
COMMENT ON EXTENSION pgcrypto IS 'crypto';
CREATE PUBLICATION pub FOR TABLE t;
CREATE SCHEMA app AUTHORIZATION app_owner;
GRANT USAGE ON SCHEMA app TO reader;
REVOKE ALL ON TABLE app.t FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app GRANT SELECT ON TABLES TO reader;
ALTER TABLE app.t OWNER TO app_owner;
CREATE TRIGGER trg BEFORE INSERT ON app.t FOR EACH ROW EXECUTE FUNCTION app.f();
CREATE POLICY p ON app.t USING (true);
SET search_path = app, public;
SET SESSION lock_timeout TO '5s';
DROP TABLE IF EXISTS old_thing;
""",
        },
    )
    state = load_state(str(tmp_path))
    assert len(state.statements) == 14


def test_search_path_changes_default_schema_for_names(tmp_path: Path) -> None:
    _write(tmp_path, {"a.sql": "CREATE TABLE t ();\nSET search_path = app, public;\nCREATE TABLE t ();\n"})
    state = load_state(str(tmp_path))
    assert [o.name for o in object_inventory(state)] == ["public.t", "app.t"]
    assert default_schemas(state.statements) == ["public", "public", "app"]


def test_search_path_does_not_leak_into_the_next_file(tmp_path: Path) -> None:
    _write(tmp_path, {"a.sql": "SET search_path = app;\nCREATE TABLE t ();", "b.sql": "CREATE TABLE t ();"})
    assert [o.name for o in object_inventory(load_state(str(tmp_path)))] == ["app.t", "public.t"]


def test_declared_renames(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "a.sql": """-- users of the system
-- schema-pipeline: renamed from people
CREATE TABLE users (
    id bigint PRIMARY KEY,
    -- schema-pipeline: renamed from mail
    email text NOT NULL,
    full_name text, -- schema-pipeline: renamed from "Name"
    CONSTRAINT users_email_key UNIQUE (email) -- schema-pipeline: renamed from people_email_key
);
-- schema-pipeline: renamed from people_email_idx
CREATE INDEX users_email_idx ON users (email);
-- schema-pipeline: renamed from not_this_one

CREATE TABLE untouched ();
SET search_path = app;
-- schema-pipeline: renamed from feeling
CREATE TYPE mood AS ENUM ('a');
-- schema-pipeline: renamed from orders_user_fk
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);
""",
        },
    )
    assert load_state(str(tmp_path)).renames == {
        ("table", "public.users"): "people",
        ("column", "public.users.email"): "mail",
        ("column", "public.users.full_name"): "Name",
        ("constraint", "public.users.users_email_key"): "people_email_key",
        ("index", "public.users_email_idx"): "people_email_idx",
        ("type", "app.mood"): "feeling",
        ("constraint", "public.orders.orders_user_id_fkey"): "orders_user_fk",
    }


def test_directives_attach_to_their_statement(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "a.sql": """CREATE TABLE Foo (); -- schema-pipeline: ignore naming.table
CREATE TABLE bar ();
/* schema-pipeline: ignore a.b */
-- schema-pipeline: ignore table.require-pk
CREATE TABLE baz (
  a int -- schema-pipeline: ignore c.d
);
""",
        },
    )
    st = load_state(str(tmp_path)).statements
    assert st[0].directives == ("ignore naming.table",)
    assert st[1].directives == ()
    assert set(st[2].directives) == {"ignore a.b", "ignore table.require-pk", "ignore c.d"}


def test_statement_keeps_its_original_fields(tmp_path: Path) -> None:
    _write(tmp_path, {"a.sql": "CREATE TABLE a ();"})
    stmt = load_state(str(tmp_path)).statements[0]
    assert stmt == type(stmt)(sql="CREATE TABLE a ();", file="a.sql", line=1, column=1, kind="CREATE TABLE")


def test_errors_render_as_file_line_column(tmp_path: Path) -> None:
    _write(tmp_path, {"x.sql": "CREATE TABLE t ();\n  ALTER SYSTEM SET fsync = off;\n"})
    with pytest.raises(StateErrors) as exc:
        load_state(str(tmp_path))
    assert str(exc.value).startswith("x.sql:2:3: ALTER SYSTEM")


def test_five_thousand_tables_load(tmp_path: Path) -> None:
    """Size only: how fast they load is measured by bench/run.py (plan cold), not here."""
    body = "".join(
        f"CREATE TABLE public.t{i} (\n  id bigint PRIMARY KEY,\n  name text NOT NULL,\n"
        f"  note varchar(20) DEFAULT 'a;b',\n  created_at timestamptz DEFAULT now()\n);\n"
        for i in range(5000)
    )
    _write(tmp_path, {"big.sql": body})
    state = load_state(str(tmp_path))
    assert len(state.statements) == 5000
    assert state.statements[-1].line == 5000 * 6 - 5


EDGE_CASES_SQL = r"""
SET check_function_bodies = false;
CREATE SCHEMA "we;ird";
CREATE TABLE "we;ird"."semi;colon" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    note text DEFAULT 'a;b''c' /* nested /* comment; */ still */,
    esc text DEFAULT E'back\\slash\'; quote'
);
CREATE FUNCTION "we;ird".f(a integer) RETURNS integer
    LANGUAGE plpgsql
    AS $fn$
BEGIN
    RETURN a + length($$;$$);  -- ; inside
END
$fn$;
CREATE FUNCTION "we;ird".g(a integer) RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;
 SELECT (a + 1);
END;
COMMENT ON TABLE "we;ird"."semi;colon" IS 'it''s; fine';
"""


def test_split_statements_execute_on_postgresql(tmp_path: Path, fresh_db: str) -> None:
    """The splitter's statements are exactly what PostgreSQL accepts, one at a time."""
    import psycopg

    _write(
        tmp_path,
        {"a_dump.sql": PG_DUMP.replace("SET transaction_timeout = 0;\n", ""), "b_edge.sql": EDGE_CASES_SQL},
    )
    state = load_state(str(tmp_path))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for stmt in state.statements:
            if stmt.kind.startswith("\\"):
                continue  # psql meta-commands (\restrict) are not SQL
            conn.execute(stmt.sql)  # PG 17+ would also accept SET transaction_timeout
        n = conn.execute("SELECT count(*) FROM pg_proc WHERE proname IN ('f', 'g')").fetchone()
    assert n == (4,)


def test_inventory_of_hand_built_statements() -> None:
    from schema_pipeline.state import DesiredState, Statement

    state = DesiredState(
        root="/x",
        files=["a.sql"],
        statements=[
            Statement("CREATE TABLE app.t (id int);", "a.sql", 1),
            Statement("CREATE UNIQUE INDEX t_idx ON app.t (id);", "a.sql", 2),
            Statement("GRANT SELECT ON app.t TO r;", "a.sql", 3),
        ],
        fingerprint="",
    )
    assert [(o.kind, o.name, o.line) for o in object_inventory(state)] == [
        ("table", "app.t", 1),
        ("index", "app.t_idx", 2),
    ]


def test_reset_of_a_session_setting_is_a_session_statement(tmp_path: Path) -> None:
    _write(tmp_path, {"a.sql": "SET client_min_messages TO ERROR;\nCREATE TABLE t (a int);\nRESET client_min_messages;\n"})
    state = load_state(str(tmp_path))
    assert [(s.kind, s.session_only) for s in state.statements] == [
        ("SET", True), ("CREATE TABLE", False), ("RESET", True)]


def test_standard_conforming_strings_off_is_accepted_while_no_literal_depends_on_it(tmp_path: Path) -> None:
    """pg_dump before 9.1 wrote `SET standard_conforming_strings = off`: such files load while no '...' literal
    holds a backslash (it would be an escape there); E'...' is the same either way; `= on` and RESET end it."""
    old_dump = ("SET standard_conforming_strings = off;\nSET escape_string_warning = off;\n"
                "CREATE TABLE t (a text DEFAULT 'x', b text DEFAULT E'y\\\\z');\n"
                "SET standard_conforming_strings = on;\nCOMMENT ON TABLE t IS 'C:\\dir';\n"
                "SET standard_conforming_strings = off;\nRESET standard_conforming_strings;\n"
                "COMMENT ON COLUMN t.a IS 'D:\\dir';\n")
    _write(tmp_path, {"a.sql": old_dump})
    assert [s.kind for s in load_state(str(tmp_path)).statements].count("COMMENT") == 2
    _write(tmp_path, {"a.sql": "SET standard_conforming_strings = off;\nCREATE TABLE t ();\n"
                               "COMMENT ON TABLE t IS 'C:\\dir';\n"})
    with pytest.raises(StateErrors) as exc:
        load_state(str(tmp_path))
    assert str(exc.value).startswith("a.sql:3:23: standard_conforming_strings is off here (SET at line 1)")


def test_an_unchanged_state_is_parsed_once(tmp_path: Path, monkeypatch) -> None:
    from schema_pipeline.state import loader

    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    _write(tmp_path / "s", {"a.sql": "CREATE TABLE t (id int);\n-- schema-pipeline: renamed from old_v\nCREATE VIEW v AS SELECT id FROM t;\n"})
    first = load_state(str(tmp_path / "s"))

    def parser_called(*args, **kwargs):
        raise AssertionError("an unchanged state must not be parsed again")

    monkeypatch.setattr(loader, "parse_file", parser_called)
    second = load_state(str(tmp_path / "s"))
    assert second.statements == first.statements and second.renames == first.renames == {("view", "public.v"): "old_v"}
    assert [s.directives for s in second.statements] == [s.directives for s in first.statements]
    (tmp_path / "s" / "a.sql").write_text("CREATE TABLE t (id int, b int);\n")  # changed: parsed again
    with pytest.raises(AssertionError, match="parsed again"):
        load_state(str(tmp_path / "s"))
