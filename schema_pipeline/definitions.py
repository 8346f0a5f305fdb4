"""Dagster entry point of the `schema-pipeline` code location.

`dagster dev` (pyproject `[tool.dagster]`) or `workspace.yaml` load `defs`. The configuration
comes from `schema_pipeline.yaml` (or `$SCHEMA_PIPELINE_CONFIG`); see docs/configuration.md.

Cross-cutting UI polish is applied here, over whatever `defs/` builds:

- code references on every asset (the UI's "Open source code" link): local file paths by
  default; links into the git host when `SCHEMA_PIPELINE_SOURCE_URL` is set (for example
  `https://github.com/acme/schema-pipeline`, branch `SCHEMA_PIPELINE_SOURCE_BRANCH`, default
  `main`) — see docs/deployment.md;
- the `postgres` and `sql` kinds and the configured owners on any asset that lacks them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg

from schema_pipeline.config import load_config
from schema_pipeline.defs import resources as resources_module
from schema_pipeline.defs.pipeline import build_pipeline_defs

SOURCE_URL_ENV = "SCHEMA_PIPELINE_SOURCE_URL"
SOURCE_BRANCH_ENV = "SCHEMA_PIPELINE_SOURCE_BRANCH"
DEFAULT_KINDS = frozenset({"postgres", "sql"})


@dg.definitions
def defs() -> dg.Definitions:
    """Assets, checks, jobs, sensor and schedules for the current configuration, plus resources."""
    cfg = load_config()
    built = dg.Definitions.merge(build_pipeline_defs(cfg), resources_module.resources())
    return polish(built, owners=list(cfg.owners))


def polish(built: dg.Definitions, owners: list[str]) -> dg.Definitions:
    """Code references, default kinds and owners on every asset; everything else unchanged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        assets = list(dg.with_source_code_references(list(built.assets or [])))
        source_url = os.environ.get(SOURCE_URL_ENV, "").strip()
        if source_url:
            assets = list(
                dg.link_code_references_to_git(
                    assets,
                    git_url=source_url.removesuffix(".git").rstrip("/"),
                    git_branch=os.environ.get(SOURCE_BRANCH_ENV, "").strip() or "main",
                    file_path_mapping=dg.AnchorBasedFilePathMapping(
                        local_file_anchor=Path(__file__),
                        file_anchor_path_in_repository="schema_pipeline/definitions.py",
                    ),
                )
            )
    with_refs = dg.Definitions(
        assets=assets,
        asset_checks=built.asset_checks,
        jobs=built.jobs,
        schedules=built.schedules,
        sensors=built.sensors,
        resources=built.resources,
        executor=built.executor,
        loggers=built.loggers,
        metadata=built.metadata,
    )

    def defaults(spec: dg.AssetSpec) -> dg.AssetSpec:
        kinds = set(spec.kinds) or set(DEFAULT_KINDS)
        return spec.replace_attributes(kinds=kinds, owners=list(spec.owners) or owners)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        return with_refs.map_resolved_asset_specs(func=defaults)
