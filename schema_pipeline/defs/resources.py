"""Resources: the git repository, PostgreSQL targets per environment, Bytebase and GitHub.

Database URLs, tokens and secrets are bound with `dg.EnvVar`, so the UI and run storage only
ever show the variable's name. An environment whose variable is not set at load time gets no
URL; the assets then say which variable to set instead of failing at resource initialisation.
An environment of several databases gets one resource per variable (`db_<env>`, `db_<env>_2`, ...).
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
    multi: bool = Field(
        default=False, description="The variable holds several URLs separated by whitespace/newlines."
    )

    @property
    def configured(self) -> bool:
        return bool(self.database_url and self.database_url.strip())

    def urls(self) -> list[str]:
        """Every database URL of this resource (one, or several for a `database_urls_env`)."""
        first = self.url()
        return (self.database_url or "").split() if self.multi else [first]

    def url(self) -> str:
        """The database URL, or a clear error naming the variable to set."""
        if not self.database_url:
            raise dg.Failure(
                f"environment {self.environment!r} has no database: set the environment variable "
                f"{self.database_url_env} where the code location runs, then reload it"
            )
        return self.database_url.split()[0] if self.multi else self.database_url

    def display(self) -> str:
        """host/database for metadata and logs (never the password)."""
        if not self.database_url:
            return f"(unset: {self.database_url_env})"
        return ", ".join(describe_url(u) for u in self.urls())


def resource_key(env: EnvironmentConfig | str) -> str:
    """The key of the environment's (first) database resource."""
    name = env if isinstance(env, str) else env.name
    return f"db_{name}"


def resource_keys(env: EnvironmentConfig) -> list[str]:
    """Keys of every database resource of the environment, in configuration order."""
    first = resource_key(env)
    return [first if i == 0 else f"{first}_{i + 1}" for i in range(len(env.url_sources()))]


class BytebaseResource(dg.ConfigurableResource):
    """Bytebase connection for environments with `backend: bytebase`; every value comes from dg.EnvVar."""

    url: str | None = Field(default=None, description="BYTEBASE_URL.")
    project: str | None = Field(default=None, description="BYTEBASE_PROJECT (projects/<id>).")
    targets: str | None = Field(default=None, description="BYTEBASE_TARGETS: databases per environment.")
    service_account: str | None = Field(default=None, description="BYTEBASE_SERVICE_ACCOUNT (e-mail).")
    service_account_secret: str | None = Field(
        default=None, description="BYTEBASE_SERVICE_ACCOUNT_SECRET (secret; dg.EnvVar only)."
    )
    access_token: str | None = Field(
        default=None, description="BYTEBASE_ACCESS_TOKEN (secret; dg.EnvVar only)."
    )
    environments: str | None = Field(default=None, description="BYTEBASE_ENVIRONMENTS mapping.")
    protocol: str | None = Field(default=None, description="BYTEBASE_PROTOCOL: connect or rest.")
    timeout: str | None = Field(default=None, description="BYTEBASE_TIMEOUT per request, seconds.")
    rollout_timeout: str | None = Field(default=None, description="BYTEBASE_ROLLOUT_TIMEOUT, seconds.")
    poll_interval: str | None = Field(default=None, description="BYTEBASE_POLL_INTERVAL, seconds.")
    custom_rules_file: str | None = Field(
        default=None, description="BYTEBASE_CUSTOM_RULES_FILE: standards file sent to releases:check."
    )
    state_file_pattern: str | None = Field(
        default=None,
        description="STATE_FILE_PATTERN: when set, must select the same files as `state` in schema_pipeline.yaml.",
    )

    def environ(self) -> dict[str, str]:
        """The resolved values under their BYTEBASE_* variable names (for BytebaseSettings.from_env)."""
        return {var: value for field, var in BYTEBASE_VARS.items() if (value := getattr(self, field))}


BYTEBASE_VARS = {
    "url": "BYTEBASE_URL",
    "project": "BYTEBASE_PROJECT",
    "targets": "BYTEBASE_TARGETS",
    "service_account": "BYTEBASE_SERVICE_ACCOUNT",
    "service_account_secret": "BYTEBASE_SERVICE_ACCOUNT_SECRET",
    "access_token": "BYTEBASE_ACCESS_TOKEN",
    "environments": "BYTEBASE_ENVIRONMENTS",
    "protocol": "BYTEBASE_PROTOCOL",
    "timeout": "BYTEBASE_TIMEOUT",
    "rollout_timeout": "BYTEBASE_ROLLOUT_TIMEOUT",
    "poll_interval": "BYTEBASE_POLL_INTERVAL",
    "custom_rules_file": "BYTEBASE_CUSTOM_RULES_FILE",
    "state_file_pattern": "STATE_FILE_PATTERN",
}


class GitHubResource(dg.ConfigurableResource):
    """GitHub reporting for reviews (sticky PR comment + commit status); the token is a dg.EnvVar."""

    token_env: str = Field(description="Name of the variable holding the token.")
    token: str | None = Field(default=None, description="The token (dg.EnvVar; never a literal).")
    repo: str | None = Field(default=None, description="owner/name (default: $GITHUB_REPOSITORY).")
    api_url: str | None = Field(
        default=None, description="API root (default: $GITHUB_API_URL or api.github.com)."
    )
    context: str = Field(default="schema-pipeline/review", description="Commit status context.")

    @property
    def configured(self) -> bool:
        return bool(self.token and self.repo)


def _env_var(name: str | None) -> dg.EnvVar | None:
    # Only the presence is checked here; the value is resolved by Dagster at execution time.
    return dg.EnvVar(name) if name and name in os.environ else None


def build_resources(cfg: ProjectConfig) -> dict[str, dg.ConfigurableResource]:
    """`git` plus `db_<env>` for every configured environment."""
    resources: dict[str, dg.ConfigurableResource] = {
        "git": GitRepoResource(repo=cfg.git.repo, branch=cfg.git.branch, state_path=cfg.state)
    }
    for env in cfg.environments:
        for key, (var, multi) in zip(resource_keys(env), env.url_sources(), strict=True):
            resources[key] = PostgresTarget(
                environment=env.name,
                database_url_env=var,
                database_url=_env_var(var),
                plan_database_url=_env_var(env.plan_database_url_env),
                multi=multi,
            )
    if cfg.backend_envs("bytebase"):
        resources["bytebase"] = BytebaseResource(
            **{field: _env_var(var) for field, var in BYTEBASE_VARS.items()}
        )
    if cfg.github is not None:
        gh = cfg.github
        resources["github"] = GitHubResource(
            token_env=gh.token_env,
            token=_env_var(gh.token_env),
            repo=gh.repo or _env_var("GITHUB_REPOSITORY"),
            api_url=gh.api_url or _env_var("GITHUB_API_URL"),
            context=gh.context,
        )
    return resources


@dg.definitions
def resources() -> dg.Definitions:
    """Resources for the configuration found by `load_config()`."""
    return dg.Definitions(resources=build_resources(load_config()))
