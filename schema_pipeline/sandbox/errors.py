"""Errors of the plan sandbox (each one a single clear message for the user)."""

from __future__ import annotations

from schema_pipeline.errors import SchemaPipelineError


class SandboxError(SchemaPipelineError):
    """The plan sandbox could not be prepared, started or used."""
