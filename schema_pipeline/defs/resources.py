"""Resources: the git repository and one PostgreSQL target per environment.

Database URLs are bound with `dg.EnvVar`, so the UI and run storage only ever show the
variable's name. An environment whose variable is not set at load time gets no URL; the
assets then say which variable to set instead of failing at resource initialisation.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from schema_pipeline.config import EnvironmentConfig, ProjectConfig, load_config
from schema_pipeline.defs.common import describe_url
from schema_pipeline.git import GitError, GitRepo


class GitRepoResource(dg.ConfigurableResource):
    """The git repository and branch that hold the desired state."""

    repo: str = Field(description="Local path of a checkout, or a remote URL (read through a local mirror).")
    branch: str = Field(default="main", description="Branch whose head is released.")
    state_path: str = Field(
        default="schemas", description="State directory or glob, relative to the repository."
    )
    timeout_s: float = Field(default=30.0, description="Timeout of one git command, in seconds.")

    def get_client(self) -> GitRepo:
        """The git client; a missing local repository becomes a clear `dg.Failure`."""
        try:
            return GitRepo(self.repo, branch=self.branch, timeout_s=self.timeout_s)
        except GitError as exc:
            raise dg.Failure(str(exc)) from None


class PostgresTarget(dg.ConfigurableResource):
    """One environment's database. `database_url` is bound to `dg.EnvVar(<database_url_env>)`."""

    environment: str = Field(description="Environment name (test, prod, ...).")
    database_url_env: str = Field(description="Name of the environment variable holding the database URL.")
    database_url: str | None = Field(
        default=None, description="The URL, bound with dg.EnvVar; never a literal."
    )
    plan_database_url: str | None = Field(
        default=None,
        description="Optional throw-away plan database URL (dg.EnvVar); default: the target's server.",
    )

    @property
    def configured(self) -> bool:
        return bool(self.database_url)

    def url(self) -> str:
        """The database URL, or a clear error naming the variable to set."""
        if not self.database_url:
            raise dg.Failure(
                f"environment {self.environment!r} has no database: set the environment variable "
                f"{self.database_url_env} where the code location runs, then reload it"
            )
        return self.database_url

    def display(self) -> str:
        """host/database for metadata and logs (never the password)."""
        return describe_url(self.database_url) if self.database_url else f"(unset: {self.database_url_env})"


def resource_key(env: EnvironmentConfig | str) -> str:
    name = env if isinstance(env, str) else env.name
    return f"db_{name}"


def _env_var(name: str | None) -> dg.EnvVar | None:
    # Only the presence is checked here; the value is resolved by Dagster at execution time.
    return dg.EnvVar(name) if name and name in os.environ else None


def build_resources(cfg: ProjectConfig) -> dict[str, dg.ConfigurableResource]:
    """`git` plus `db_<env>` for every configured environment."""
    resources: dict[str, dg.ConfigurableResource] = {
        "git": GitRepoResource(repo=cfg.git.repo, branch=cfg.git.branch, state_path=cfg.state)
    }
    for env in cfg.environments:
        resources[resource_key(env)] = PostgresTarget(
            environment=env.name,
            database_url_env=env.database_url_env,
            database_url=_env_var(env.database_url_env),
            plan_database_url=_env_var(env.plan_database_url_env),
        )
    return resources


@dg.definitions
def resources() -> dg.Definitions:
    """Resources for the configuration found by `load_config()`."""
    return dg.Definitions(resources=build_resources(load_config()))
