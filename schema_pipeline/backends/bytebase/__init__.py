"""Bytebase backend: drive a Bytebase server's declarative (SDL) GitOps API from the pipeline.

Public API::

    from schema_pipeline.backends.bytebase import BytebaseBackend, BytebaseSettings
    backend = BytebaseBackend(BytebaseSettings.from_env(), root=repo_checkout)
    findings = backend.review(state)
    outcome = backend.release("test", state, commit_sha, progress=log.info, cancel_event=event)
    drift = backend.drift("prod", state)
"""

from schema_pipeline.backends.bytebase.backend import BytebaseBackend, advice_to_finding
from schema_pipeline.backends.bytebase.client import (
    BytebaseAuthError,
    BytebaseClient,
    BytebaseError,
    BytebaseTaskFailed,
    BytebaseVersionError,
)
from schema_pipeline.backends.bytebase.settings import BytebaseConfigError, BytebaseSettings, parse_targets

__all__ = [
    "BytebaseAuthError",
    "BytebaseBackend",
    "BytebaseClient",
    "BytebaseConfigError",
    "BytebaseError",
    "BytebaseSettings",
    "BytebaseTaskFailed",
    "BytebaseVersionError",
    "advice_to_finding",
    "parse_targets",
]
