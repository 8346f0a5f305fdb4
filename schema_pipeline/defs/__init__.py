"""The Dagster layer: resources, assets, checks, jobs, sensor and schedules.

Nothing below this package imports Dagster; everything here is a thin wrapper around the
plain-Python engine, review and git client. `pipeline.build_definitions(config)` assembles it.
"""
