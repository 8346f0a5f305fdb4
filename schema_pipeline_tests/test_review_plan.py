"""Migration review rules over plan steps (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schema_pipeline.plan.model import Hazard, HazardType, Step
from schema_pipeline.review import RULES, ReviewConfig, Severity, has_blocking, review_plan
from schema_pipeline.state import load_state


def _step(sql: str, kind: str = "table", name: str = "public.users", action: str = "alter", **kw) -> Step:
    return Step(sql=sql, object_kind=kind, object_name=name, action=action, **kw)


# rule id -> (failing step, passing step)
CASES: dict[str, tuple[Step, Step]] = {
    "migration.drop-table": (
        _step("DROP TABLE public.users;", action="drop"),
        _step("CREATE TABLE public.users (id bigint);", action="create"),
    ),
    "migration.drop-column": (
        _step("ALTER TABLE public.users DROP COLUMN email;"),
        _step("ALTER TABLE public.users DROP CONSTRAINT users_email_key;"),
    ),
    "migration.index-not-concurrent": (
        _step(
            "CREATE INDEX users_email_idx ON public.users (email);",
            "index",
            "public.users_email_idx",
            "create",
        ),
        _step(
            "CREATE INDEX CONCURRENTLY users_email_idx ON public.users (email);",
            "index",
            "public.users_email_idx",
            "create",
        ),
    ),
    "migration.drop-index-not-concurrent": (
        _step("DROP INDEX public.users_email_idx;", "index", "public.users_email_idx", "drop"),
        _step("DROP INDEX CONCURRENTLY public.users_email_idx;", "index", "public.users_email_idx", "drop"),
    ),
    "migration.add-constraint-validates": (
        _step(
            "ALTER TABLE public.orders ADD CONSTRAINT o_fk FOREIGN KEY (user_id) REFERENCES public.users (id);"
        ),
        _step(
            "ALTER TABLE public.orders ADD CONSTRAINT o_fk FOREIGN KEY (user_id) REFERENCES public.users (id) NOT VALID;"
        ),
    ),
    "migration.add-unique-constraint": (
        _step("ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE (email);"),
        _step("ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;"),
    ),
    "migration.set-not-null": (
        _step("ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;"),
        _step("ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL;"),
    ),
    "migration.column-type-rewrite": (
        _step("ALTER TABLE public.users ALTER COLUMN id TYPE bigint;"),
        _step("ALTER TABLE public.users ALTER COLUMN id SET DEFAULT 0;"),
    ),
    "migration.add-column-required-no-default": (
        _step("ALTER TABLE public.users ADD COLUMN tenant_id bigint NOT NULL;"),
        _step("ALTER TABLE public.users ADD COLUMN tenant_id bigint NOT NULL DEFAULT 0;"),
    ),
    "migration.rename": (
        _step("ALTER TABLE public.users RENAME COLUMN mail TO email;"),
        _step("ALTER TABLE public.users ALTER COLUMN email SET DEFAULT '';"),
    ),
    "migration.add-column-volatile-default": (
        _step("ALTER TABLE public.users ADD COLUMN token uuid DEFAULT gen_random_uuid();"),
        _step("ALTER TABLE public.users ADD COLUMN created_at timestamptz DEFAULT now();"),
    ),
    "migration.drop-cascade": (
        _step("DROP VIEW public.v CASCADE;", "view", "public.v", "drop"),
        _step("DROP VIEW public.v;", "view", "public.v", "drop"),
    ),
    "migration.deletes-data": (
        _step(
            "ALTER TABLE public.users ALTER COLUMN tags SET DEFAULT '{}';",
            hazards=[Hazard(HazardType.DELETES_DATA, "drops the sequence and its values")],
        ),
        _step("ALTER TABLE public.users ALTER COLUMN tags SET DEFAULT '{}';"),
    ),
}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_bad_step(rule_id: str) -> None:
    bad, _ = CASES[rule_id]
    findings = review_plan([bad], "prod")
    assert [f.rule_id for f in findings] == [rule_id]
    f = findings[0]
    assert f.environment == "prod" and f.step_index == 0 and f.source == "rule"
    assert f.severity == RULES[rule_id].severity
    assert "step 1" in f.message


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_passes_on_good_step(rule_id: str) -> None:
    _, good = CASES[rule_id]
    assert rule_id not in [f.rule_id for f in review_plan([good], "test")]


def test_required_column_without_default_blocks() -> None:
    findings = review_plan([CASES["migration.add-column-required-no-default"][0]], "prod")
    assert findings[0].severity == Severity.ERROR and has_blocking(findings)


def test_identity_column_counts_as_default() -> None:
    step = _step("ALTER TABLE public.users ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY;")
    assert review_plan([step], "prod") == []


def test_new_tables_are_not_lock_hazards() -> None:
    steps = [
        _step("CREATE TABLE public.fresh (id bigint, ref bigint);", "table", "public.fresh", "create"),
        _step("CREATE INDEX fresh_ref_idx ON public.fresh (ref);", "index", "public.fresh_ref_idx", "create"),
        _step("ALTER TABLE public.fresh ADD CONSTRAINT f_fk FOREIGN KEY (ref) REFERENCES public.users (id);"),
        _step("ALTER TABLE public.fresh ADD COLUMN x int NOT NULL;"),
    ]
    assert review_plan(steps, "prod") == []


def test_multiple_actions_in_one_alter() -> None:
    step = _step(
        "ALTER TABLE ONLY public.users DROP COLUMN a, ALTER COLUMN b SET NOT NULL, ADD COLUMN c int NOT NULL;"
    )
    ids = sorted(f.rule_id for f in review_plan([step], "prod"))
    assert ids == [
        "migration.add-column-required-no-default",
        "migration.drop-column",
        "migration.set-not-null",
    ]


def test_findings_point_at_state_declarations(tmp_path: Path) -> None:
    (tmp_path / "users.sql").write_text(
        "-- users\nCREATE TABLE public.users (\n  id bigint PRIMARY KEY,\n  email text\n);\n"
    )
    state = load_state(str(tmp_path))
    steps = [
        _step("ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;", name="public.users.email"),
        _step("DROP TABLE public.gone;", name="public.gone", action="drop"),
    ]
    findings = review_plan(steps, "prod", state=state)
    assert [(f.rule_id, f.file, f.line, f.step_index) for f in findings] == [
        ("migration.set-not-null", "users.sql", 2, 0),
        ("migration.drop-table", None, None, 1),
    ]


def test_rule_levels_apply_to_migrations() -> None:
    cfg = ReviewConfig(levels={"migration.drop-table": "error", "migration.rename": "off"})
    steps = [
        _step("DROP TABLE public.users;", action="drop"),
        _step("ALTER TABLE public.a RENAME TO b;"),
    ]
    findings = review_plan(steps, "prod", config=cfg)
    assert [(f.rule_id, f.severity) for f in findings] == [("migration.drop-table", Severity.ERROR)]
