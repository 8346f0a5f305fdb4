"""What each UI screen shows, against real databases: the approver's view of the prod plan on
`schema/review`, the approval metadata of `release/prod`, the `release_prod` job's run tag, the
Columns panel, the drift check naming what drifted, the approved `correct_drift_<env>` job, the
configurable sensor interval and the folded change table."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from schema_pipeline.config import parse_config
from schema_pipeline.defs.common import change_rows, column_schema
from schema_pipeline.defs.pipeline import build_definitions
from schema_pipeline.errors import ConfigError
from schema_pipeline.plan.model import Hazard, HazardType, Plan, Step
from schema_pipeline_tests.test_apply_support import columns
from schema_pipeline_tests.test_defs_pipeline import (  # noqa: F401  (fixtures)
    PROD,
    REVIEW,
    STATE,
    TEST,
    Pipeline,
    failure_text,
    pipeline,
    tables,
)
from schema_pipeline_tests.test_git import temp_repo  # noqa: F401  (fixture)


def _mats(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, dg.AssetMaterialization]:
    return {m.asset_key: m.materialization for m in result.get_asset_materialization_events()}


def _correct(p: Pipeline, env: str, **approval: object) -> dg.ExecuteInProcessResult:
    return p.defs.resolve_job_def(f"correct_drift_{env}").execute_in_process(
        run_config={"ops": {f"restore_{env}": {"config": approval}}},
        instance=p.instance,
        raise_on_error=False,
    )


def test_approver_screens_release_job_and_drift_correction(pipeline: Pipeline) -> None:  # noqa: F811
    p = pipeline
    sha = p.repo.commit_sample()
    first = p.to_test()
    assert first.success, failure_text(first)
    mats = _mats(first)

    # schema/review: severity x count table, AI status, and the migration prod would get now
    review_md = mats[REVIEW].metadata
    summary = review_md["summary"].value
    assert [(r.data["severity"], r.data["count"]) for r in summary.records][0][0] == "ERROR"
    assert {c.name for c in summary.schema.columns} == {"severity", "count"}
    assert review_md["ai_status"].value.startswith("not configured")
    assert "```sql" in review_md["prod_plan_sql"].value
    assert "CREATE TABLE" in review_md["prod_plan_sql"].value
    prod_rows = review_md["prod_changes"].value.records
    assert any(r.data["object"] == "public.employee" and r.data["action"].startswith("create") for r in prod_rows)
    # the table's COMMENT step is folded into its create row (presentation only)
    assert not [r for r in prod_rows if r.data["object"] == "public.employee" and r.data["action"] == "comment"]
    assert "+ comment" in next(r.data["action"] for r in prod_rows if r.data["object"] == "public.employee")
    assert "prod_hazards" in review_md and "test_plan_sql" not in review_md

    # schema/state's Columns panel: per-column constraints, no long table-level chips
    cols = {c.name: c for c in mats[STATE].metadata["dagster/column_schema"].schema.columns}
    emp_no = cols["public.employee.emp_no"].constraints
    assert not emp_no.nullable and emp_no.other == ["primary key"]  # no redundant "unique" chip
    dm = cols["public.dept_manager.dept_no"].constraints.other or []
    assert "part of primary key" in dm and "FK public.department" in dm
    assert not mats[STATE].metadata["dagster/column_schema"].schema.constraints.other
    assert all(len(chip) <= 24 for c in cols.values() for chip in (c.constraints.other or []))

    # release/prod description says where the commit comes from and what MISSING / STALE mean
    spec = next(s for s in p.defs.resolve_all_asset_specs() if s.key == PROD)
    assert "release/test" in spec.description and "`commit`" in spec.description
    assert "MISSING" in spec.description and "STALE" in spec.description

    # the release_prod job carries the run tag the run queue limits, and releases with approval
    job = p.defs.resolve_job_def("release_prod")
    assert job.tags["schema/env"] == "prod"
    approval = {"approved_by": "alice", "expected_commit_sha": sha, "reason": "CHG-7"}
    released = job.execute_in_process(
        run_config={"ops": {"release__prod": {"config": approval}}}, instance=p.instance, raise_on_error=False
    )
    assert released.success, failure_text(released)
    assert p.instance.get_run_by_id(released.run_id).tags["schema/env"] == "prod"
    prod_md = _mats(released)[PROD].metadata
    assert list(prod_md)[:4] == ["approved_by", "approval_reason", "approved_commit", "previous_release_run"]
    link = prod_md["previous_release_run"]
    assert isinstance(link, dg.DagsterRunMetadataValue) and link.run_id == first.run_id
    assert tables(p.prod_url) == tables(p.test_url)

    # drift: the check names the drifted objects in its description and metadata
    with psycopg.connect(p.prod_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.employee ADD COLUMN nickname text")
    ev = p.drift()["prod"]
    assert not ev.passed
    assert "column public.employee.nickname" in ev.description
    assert "column public.employee.nickname" in ev.metadata["drifted"].value
    fingerprint = ev.metadata["drift_fingerprint"].value
    assert "correct_drift_prod" in ev.metadata["correct_with"].value

    # correction: required approval, bound to the fingerprint, hazards must be accepted
    with pytest.raises(dg.DagsterInvalidConfigError, match="restore_prod"):
        p.defs.resolve_job_def("correct_drift_prod").execute_in_process(instance=p.instance)
    wrong = _correct(p, "prod", approved_by="bob", reason="INC-1", expected_drift="0123456789abcdef")
    assert not wrong.success
    assert f"approve {fingerprint}" in failure_text(wrong) and "Nothing was changed" in failure_text(wrong)
    risky = _correct(p, "prod", approved_by="bob", reason="INC-1", expected_drift=fingerprint)
    assert not risky.success and "DELETES_DATA" in failure_text(risky)
    assert "nickname" in columns(p.prod_url, "employee")
    fixed = _correct(
        p, "prod", approved_by="bob", reason="INC-1", expected_drift=fingerprint, allow_hazards=["DELETES_DATA"]
    )
    assert fixed.success, failure_text(fixed)
    assert "nickname" not in columns(p.prod_url, "employee")
    (obs,) = [
        e.asset_observation_data.asset_observation
        for e in fixed.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]
    assert obs.asset_key == PROD and obs.metadata["approved_by"].value == "bob"
    assert obs.metadata["restored_commit"].value == sha
    record = p.instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(PROD, "no_drift"))
    assert record.run_id == fixed.run_id and record.event.asset_check_evaluation.passed
    assert p.drift()["prod"].passed

    # by commit: the released commit approves whatever differs now (here: nothing)
    again = _correct(p, "prod", approved_by="bob", reason="INC-2", expected_drift=sha[:10])
    assert again.success, failure_text(again)


def test_poll_interval_is_configurable(tmp_path: Path) -> None:
    raw = {"git": {"repo": str(tmp_path), "poll_interval_seconds": 120}}
    defs = build_definitions(parse_config(raw, file=tmp_path / "schema_pipeline.yaml"))
    assert defs.resolve_sensor_def("schema_commit_sensor").minimum_interval_seconds == 120
    assert defs.resolve_sensor_def("schema_branch_review_sensor").minimum_interval_seconds == 120
    default = build_definitions(parse_config({"git": {"repo": str(tmp_path)}}, file=tmp_path / "x.yaml"))
    assert default.resolve_sensor_def("schema_commit_sensor").minimum_interval_seconds == 30
    for bad in (0, "30", True, 10**6):
        with pytest.raises(ConfigError, match="git.poll_interval_seconds"):
            parse_config({"git": {"repo": str(tmp_path), "poll_interval_seconds": bad}}, file=tmp_path / "y.yaml")


def test_change_rows_fold_comments_and_owners_of_created_objects() -> None:
    def step(kind: str, name: str, action: str, hazards: list | None = None) -> Step:
        return Step(sql="--", object_kind=kind, object_name=name, action=action, hazards=hazards or [])

    big = Hazard(HazardType.TABLE_REWRITE, "rewrites public.old", relation="public.old", rows=41_000_000)
    plan = Plan(
        steps=[
            step("table", "public.t", "create"),
            step("table", "public.t", "owner"),
            step("table", "public.t", "comment"),
            step("column", "public.t.name", "comment"),
            step("table", "public.old", "comment"),  # not created here: stays
            step("column", "public.old.x", "alter", [big]),
        ]
    )
    rows = change_rows(plan)
    assert [(r["object"], r["action"]) for r in rows] == [
        ("public.t", "create + owner + comment"),
        ("public.old", "comment"),
        ("public.old.x", "alter"),
    ]
    assert rows[2]["hazards"] == "TABLE_REWRITE: public.old (41 M rows)"
    assert len(plan.steps) == 6  # the plan itself is unchanged


def test_column_schema_without_a_catalog_is_none() -> None:
    assert column_schema(None) is None


def test_the_run_queue_limit_applies_to_the_prod_jobs(tmp_path: Path, monkeypatch) -> None:
    """dagster.yaml's tag limit (schema/env: prod, 1) matches the run tags of release_prod and
    correct_drift_prod; the Materialize button's asset job relies on the op pool instead."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text((Path(__file__).resolve().parent.parent / "dagster.yaml").read_text())
    defs = build_definitions(parse_config({"git": {"repo": str(tmp_path)}}, file=tmp_path / "x.yaml"))
    with dg.DagsterInstance.get() as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    for name in ("release_prod", "correct_drift_prod"):
        tags = defs.resolve_job_def(name).tags
        assert any(tags.get(lim["key"]) == lim.get("value") and lim["limit"] == 1 for lim in limits), name
    assert not any(n == "release_test" for n in (j.name for j in defs.jobs))  # test: schema_to_test
    prod = next(a for a in defs.assets if PROD in a.keys)
    assert prod.op.pool == "schema_release_prod"
