"""Assemble every definition of the code location from a ProjectConfig."""

from __future__ import annotations

import dagster as dg

from schema_pipeline.config import ProjectConfig, load_config
from schema_pipeline.defs.automation import build_first_release_job, build_schema_commit_sensor
from schema_pipeline.defs.branches import build_branch_review_sensor, build_review_job
from schema_pipeline.defs.correction import build_correction_jobs
from schema_pipeline.defs.drift import build_drift_automation, build_drift_check
from schema_pipeline.defs.release import build_release_asset, build_release_jobs
from schema_pipeline.defs.resources import build_resources
from schema_pipeline.defs.review import build_review_asset
from schema_pipeline.defs.state import build_state_asset


def build_pipeline_defs(cfg: ProjectConfig) -> dg.Definitions:
    """Assets, checks, jobs, sensor and schedules (no resources)."""
    releases = [build_release_asset(cfg, env) for env in cfg.environments]
    drift_checks = {env.name: build_drift_check(cfg, env) for env in cfg.environments}
    first_job = build_first_release_job(cfg, list(drift_checks.values()))
    drift_jobs, drift_schedules = build_drift_automation(cfg, drift_checks)
    review_job = build_review_job(cfg)
    return dg.Definitions(
        assets=[build_state_asset(cfg), build_review_asset(cfg), *releases],
        asset_checks=list(drift_checks.values()),
        jobs=[
            first_job,
            *build_release_jobs(cfg, list(drift_checks.values())),
            review_job,
            *drift_jobs,
            *build_correction_jobs(cfg),
        ],
        sensors=[build_schema_commit_sensor(cfg, first_job), build_branch_review_sensor(cfg, review_job)],
        schedules=drift_schedules,
    )


def build_definitions(cfg: ProjectConfig | None = None) -> dg.Definitions:
    """The complete code location: pipeline definitions plus resources."""
    cfg = cfg or load_config()
    return dg.Definitions.merge(build_pipeline_defs(cfg), dg.Definitions(resources=build_resources(cfg)))
