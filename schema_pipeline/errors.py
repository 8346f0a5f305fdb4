"""Errors a user can act on. Each one renders as a single clear message, never a traceback."""

from __future__ import annotations


class SchemaPipelineError(Exception):
    """Base class for every error that is the user's to fix (bad input, failed apply, config)."""


class StateError(SchemaPipelineError):
    """A problem in the desired-state files, located at file:line:column."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, column: int | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(self.location_prefix() + message)

    def location_prefix(self) -> str:
        if not self.file:
            return ""
        loc = self.file
        if self.line:
            loc += f":{self.line}"
            if self.column:
                loc += f":{self.column}"
        return loc + ": "


class StateErrors(SchemaPipelineError):
    """Several state problems found in one pass (all are reported, not just the first)."""

    def __init__(self, errors: list[StateError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ConfigError(SchemaPipelineError):
    """Invalid project configuration or command-line usage."""


class ConnectionFailed(SchemaPipelineError):
    """A database could not be reached; the message never contains the password."""


class PlanLoadError(SchemaPipelineError):
    """The desired state could not be loaded into the throw-away plan database."""


class ApplyError(SchemaPipelineError):
    """A step of a migration failed; the message names the step and PostgreSQL's error."""

    def __init__(self, message: str, step_index: int | None = None, sql: str | None = None):
        self.step_index = step_index
        self.sql = sql
        super().__init__(message)


class HazardsNotAllowed(SchemaPipelineError):
    """The plan has hazards that were not explicitly allowed."""


class UnplannableChange(SchemaPipelineError):
    """The desired state asks for a change the engine will not generate (it would have to invent data)."""
