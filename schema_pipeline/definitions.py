"""Dagster entry point of the `schema-pipeline` code location.

`dagster dev` (pyproject `[tool.dagster]`) or `workspace.yaml` load `defs`. The configuration
comes from `schema_pipeline.yaml` (or `$SCHEMA_PIPELINE_CONFIG`); see docs/configuration.md.
"""

from __future__ import annotations

import dagster as dg

from schema_pipeline.config import load_config
from schema_pipeline.defs import resources as resources_module
from schema_pipeline.defs.pipeline import build_pipeline_defs


@dg.definitions
def defs() -> dg.Definitions:
    """Assets, checks, jobs, sensor and schedules for the current configuration, plus resources."""
    return dg.Definitions.merge(build_pipeline_defs(load_config()), resources_module.resources())
