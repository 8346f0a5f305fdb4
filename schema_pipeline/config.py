"""Project configuration: one YAML file (`schema_pipeline.yaml`) plus environment variables.

The file says *where* things are (state files, git repository, environments in promotion
order); secrets never live in it. Each environment names the environment variable(s) that
hold its database URL(s) (`database_url_env`, `database_urls_env`) or uses `backend: bytebase`. Zero configuration works: the defaults are
the `schemas/` directory of this checkout and the environments `test` and `prod`.
See docs/configuration.md for every key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from schema_pipeline.errors import ConfigError
from schema_pipeline.git import is_remote_repo
from schema_pipeline.plan.model import HazardType

CONFIG_ENV_VAR = "SCHEMA_PIPELINE_CONFIG"
CONFIG_FILE_NAME = "schema_pipeline.yaml"
DEFAULT_DRIFT_CRON = "0 * * * *"
BACKENDS = ("native", "bytebase")
HAZARD_NAMES = tuple(h.value for h in HazardType)  # every hazard a plan can carry
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOP_KEYS = {"state", "git", "environments", "owners", "review"}
_GIT_KEYS = {"repo", "branch", "review_branches", "poll_interval_seconds"}
DEFAULT_POLL_INTERVAL_S = 30
_GITHUB_KEYS = {"token_env", "repo", "api_url", "context"}
DEFAULT_MAX_PARALLEL = 4
_ENV_KEYS = {
    "database_url_env",
    "database_urls_env",
    "max_parallel",
    "plan_database_url_env",
    "backend",
    "drift_cron",
    "allow_hazards",
    "include_schemas",
    "exclude_schemas",
    "ownership",
}
OWNERSHIP_MODES = ("all", "declared")


@dataclass(frozen=True)
class GitConfig:
    """Where the desired state is committed: a local path or a remote URL, and a branch."""

    repo: str
    branch: str = "main"
    # Globs of other branches whose new heads get a review-only run (the main branch never does).
    review_branches: tuple[str, ...] = ("*",)
    # Minimum seconds between two ticks of the git sensors (Dagster's minimum_interval_seconds).
    poll_interval_seconds: int = DEFAULT_POLL_INTERVAL_S


@dataclass(frozen=True)
class GitHubConfig:
    """Where branch reviews are reported: sticky PR comment + commit status (`review.github`)."""

    token_env: str = "GITHUB_TOKEN"
    repo: str | None = None  # owner/name; default $GITHUB_REPOSITORY
    api_url: str | None = None  # default $GITHUB_API_URL or https://api.github.com
    context: str = "schema-pipeline/review"


@dataclass(frozen=True)
class EnvironmentConfig:
    """One target environment. `database_url_env` is the NAME of the variable holding the URL.

    An environment of several databases lists more names (`database_url_envs`, the first one is
    `database_url_env`) or names one variable holding several URLs (`database_urls_env`).
    """

    name: str
    database_url_env: str
    plan_database_url_env: str | None = None
    database_url_envs: tuple[str, ...] = ()
    database_urls_env: str | None = None
    max_parallel: int = DEFAULT_MAX_PARALLEL
    backend: str = "native"
    drift_cron: str = DEFAULT_DRIFT_CRON
    allow_hazards: tuple[str, ...] = ()
    include_schemas: tuple[str, ...] | None = None
    exclude_schemas: tuple[str, ...] | None = None
    ownership: str = "all"

    def url_sources(self) -> list[tuple[str, bool]]:
        """(variable name, holds several URLs) for every variable naming this environment's databases."""
        if self.database_urls_env:
            return [(self.database_urls_env, True)]
        return [(name, False) for name in (self.database_url_envs or (self.database_url_env,))]

    @property
    def multi_target(self) -> bool:
        """True when the environment may hold more than one database."""
        return len(self.url_sources()) > 1 or bool(self.database_urls_env)

    @property
    def allows_all_hazards(self) -> bool:
        return "all" in self.allow_hazards

    def hazards_allowed(self, extra: tuple[str, ...] | list[str] = ()) -> set[str] | str:
        """The `allow_hazards` argument for the engine: "all" or a set of hazard names."""
        names = set(self.allow_hazards) | set(extra)
        return "all" if "all" in names else names

    def scope(self):
        """The engine Scope for this environment (None = every non-system schema)."""
        from schema_pipeline.engine import Scope

        if self.include_schemas is None and self.exclude_schemas is None and self.ownership == "all":
            return None
        return Scope(
            include_schemas=list(self.include_schemas) if self.include_schemas is not None else None,
            exclude_schemas=list(self.exclude_schemas) if self.exclude_schemas is not None else None,
            ownership=self.ownership,
        )


@dataclass(frozen=True)
class ProjectConfig:
    """The whole project configuration, validated."""

    root: Path
    source: Path | None
    state: str = "schemas"
    git: GitConfig = field(default_factory=lambda: GitConfig(repo="."))
    environments: tuple[EnvironmentConfig, ...] = ()
    owners: tuple[str, ...] = ("team:data-platform",)
    # The `review` section: rule levels / naming (ReviewConfig.from_dict) and `ai` (AIReviewConfig).
    review: dict[str, Any] = field(default_factory=dict)
    ai: dict[str, Any] | None = None
    github: GitHubConfig | None = None

    def backend_envs(self, backend: str) -> list[EnvironmentConfig]:
        """The environments released through `backend` (native or bytebase)."""
        return [e for e in self.environments if e.backend == backend]

    def review_config(self):
        """The rule engine's ReviewConfig."""
        from schema_pipeline.review import ReviewConfig

        return ReviewConfig.from_dict(self.review)

    def ai_config(self):
        """The AI reviewer's config: `review.ai` from the file, else SCHEMA_PIPELINE_AI_* variables."""
        from schema_pipeline.review.ai import AIReviewConfig

        return AIReviewConfig.from_dict(self.ai) if self.ai is not None else AIReviewConfig.from_env()

    def environment(self, name: str) -> EnvironmentConfig:
        for env in self.environments:
            if env.name == name:
                return env
        raise ConfigError(f"unknown environment {name!r}; configured: {', '.join(self.env_names)}")

    @property
    def env_names(self) -> list[str]:
        return [e.name for e in self.environments]

    def previous(self, env: EnvironmentConfig) -> EnvironmentConfig | None:
        """The environment a release must pass through before `env` (None for the first)."""
        idx = self.env_names.index(env.name)
        return self.environments[idx - 1] if idx > 0 else None


def default_environments() -> tuple[EnvironmentConfig, ...]:
    """`test` (released automatically, any hazard allowed) then `prod` (approval, no hazards)."""
    return (
        EnvironmentConfig(name="test", database_url_env="SCHEMA_PIPELINE_TEST_URL", allow_hazards=("all",)),
        EnvironmentConfig(name="prod", database_url_env="SCHEMA_PIPELINE_PROD_URL"),
    )


def project_root() -> Path:
    """The checkout this package lives in (parent of the `schema_pipeline` package)."""
    return Path(__file__).resolve().parent.parent


def find_config_file() -> Path | None:
    """`$SCHEMA_PIPELINE_CONFIG`, else ./schema_pipeline.yaml, else the one in the project checkout."""
    explicit = os.environ.get(CONFIG_ENV_VAR)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV_VAR}={explicit}: file not found")
        return path.resolve()
    for candidate in (Path.cwd() / CONFIG_FILE_NAME, project_root() / CONFIG_FILE_NAME):
        if candidate.is_file():
            return candidate.resolve()
    return None


def load_config(path: str | os.PathLike[str] | None = None) -> ProjectConfig:
    """Read and validate the configuration (defaults when there is no file)."""
    file = Path(path).resolve() if path is not None else find_config_file()
    if file is None:
        root = project_root() if (project_root() / ".git").exists() else Path.cwd()
        return ProjectConfig(
            root=root, source=None, git=GitConfig(repo=str(root)), environments=default_environments()
        )
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(raw, file=file)


def parse_config(raw: Any, *, file: Path) -> ProjectConfig:
    """Validate a parsed YAML document; errors name the file and the key."""
    where = _Where(file)
    if not isinstance(raw, dict):
        raise where.error("", "the file must contain a mapping of keys")
    _no_unknown(raw, _TOP_KEYS, where, "")
    root = file.parent

    state = raw.get("state", "schemas")
    if not isinstance(state, str) or not state.strip():
        raise where.error("state", "must be a non-empty path or glob relative to the repository")
    if Path(state).is_absolute() or ".." in Path(state).parts:
        raise where.error("state", "must be relative to the repository root and stay inside it")

    git_raw = raw.get("git") or {}
    if not isinstance(git_raw, dict):
        raise where.error("git", "must be a mapping with `repo` and `branch`")
    _no_unknown(git_raw, _GIT_KEYS, where, "git")
    repo = _string(git_raw.get("repo", "."), where, "git.repo")
    if not is_remote_repo(repo):
        repo = str((root / Path(repo).expanduser()).resolve())
    branch = _string(git_raw.get("branch", "main"), where, "git.branch")
    review_branches = tuple(_string_list(git_raw.get("review_branches", ["*"]), where, "git.review_branches"))
    poll = git_raw.get("poll_interval_seconds", DEFAULT_POLL_INTERVAL_S)
    if isinstance(poll, bool) or not isinstance(poll, int) or not 5 <= poll <= 86400:
        raise where.error("git.poll_interval_seconds", "must be an integer number of seconds from 5 to 86400")

    envs_raw = raw.get("environments")
    environments = default_environments() if envs_raw is None else _parse_environments(envs_raw, where)

    owners_raw = raw.get("owners", ["team:data-platform"])
    owners = tuple(_string_list(owners_raw, where, "owners"))
    review, ai, github = _parse_review(raw.get("review"), where)
    return ProjectConfig(
        root=root,
        source=file,
        state=state.strip(),
        git=GitConfig(
            repo=repo, branch=branch, review_branches=review_branches, poll_interval_seconds=poll
        ),
        github=github,
        environments=environments,
        owners=owners,
        review=review,
        ai=ai,
    )


def _parse_review(
    value: Any, where: _Where
) -> tuple[dict[str, Any], dict[str, Any] | None, GitHubConfig | None]:
    """Validate the `review` section with the review package's own parsers."""
    from schema_pipeline.review import ReviewConfig
    from schema_pipeline.review.ai import AIReviewConfig

    if value is None:
        return {}, None, None
    if not isinstance(value, dict):
        raise where.error("review", "must be a mapping (rules, naming, max_identifier_bytes, ai, github)")
    github = _parse_github(value.get("github"), where)
    review = {k: v for k, v in value.items() if k not in ("ai", "github")}
    for levels_key in ("rules", "levels"):
        if isinstance(review.get(levels_key), dict):  # YAML 1.1 reads a bare `off` as False
            review[levels_key] = {k: ("off" if v is False else v) for k, v in review[levels_key].items()}
    _no_unknown(review, {"rules", "levels", "naming", "max_identifier_bytes"}, where, "review")
    ai = value.get("ai")
    try:
        ReviewConfig.from_dict(review)
    except (ConfigError, TypeError, ValueError) as exc:
        raise where.error("review", str(exc)) from None
    if ai is not None:
        if not isinstance(ai, dict):
            raise where.error("review.ai", "must be a mapping (provider, model, api_key_env, ...)")
        try:
            AIReviewConfig.from_dict(ai)
        except (ConfigError, TypeError, ValueError) as exc:
            raise where.error("review.ai", str(exc)) from None
    return review, ai, github


def _parse_github(value: Any, where: _Where) -> GitHubConfig | None:
    """`review.github`: the token's variable NAME, the repository, the API URL, the status context."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.error("review.github", "must be a mapping (token_env, repo, api_url, context)")
    _no_unknown(value, _GITHUB_KEYS, where, "review.github")
    token_env = _string(value.get("token_env", "GITHUB_TOKEN"), where, "review.github.token_env")
    if not _ENV_VAR_NAME.match(token_env):
        raise where.error(
            "review.github.token_env", "must be the NAME of an environment variable (never the token)"
        )
    repo = value.get("repo")
    if repo is not None and not re.match(
        r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", _string(repo, where, "review.github.repo")
    ):
        raise where.error("review.github.repo", "must be 'owner/name'")
    api_url = value.get("api_url")
    if api_url is not None and not re.match(r"^https?://", _string(api_url, where, "review.github.api_url")):
        raise where.error("review.github.api_url", "must be an http(s) URL")
    context = _string(value.get("context", "schema-pipeline/review"), where, "review.github.context")
    return GitHubConfig(
        token_env=token_env,
        repo=repo.strip() if repo else None,
        api_url=api_url.strip() if api_url else None,
        context=context,
    )


def _parse_environments(envs_raw: Any, where: _Where) -> tuple[EnvironmentConfig, ...]:
    items: list[tuple[str, Any]]
    if isinstance(envs_raw, dict):
        items = list(envs_raw.items())
    elif isinstance(envs_raw, list):
        items = []
        for i, entry in enumerate(envs_raw):
            if not isinstance(entry, dict) or "name" not in entry:
                raise where.error(f"environments[{i}]", "each list entry needs a `name`")
            body = {k: v for k, v in entry.items() if k != "name"}
            items.append((entry["name"], body))
    else:
        raise where.error("environments", "must be a mapping (in promotion order) of name -> settings")
    if not items:
        raise where.error("environments", "at least one environment is required")
    envs: list[EnvironmentConfig] = []
    for name, body in items:
        key = f"environments.{name}"
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise where.error(key, "environment names are lower-case letters, digits and `_`")
        if any(e.name == name for e in envs):
            raise where.error(key, "duplicate environment")
        envs.append(_parse_environment(name, body or {}, where, key))
    return tuple(envs)


def _parse_environment(name: str, body: Any, where: _Where, key: str) -> EnvironmentConfig:
    if not isinstance(body, dict):
        raise where.error(key, "must be a mapping of settings")
    _no_unknown(body, _ENV_KEYS, where, key)
    url_envs, urls_env = _parse_url_vars(name, body, where, key)
    url_env = url_envs[0] if url_envs else urls_env
    max_parallel = body.get("max_parallel", DEFAULT_MAX_PARALLEL)
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or not 1 <= max_parallel <= 64:
        raise where.error(f"{key}.max_parallel", "must be an integer from 1 to 64")
    plan_env = body.get("plan_database_url_env")
    if plan_env is not None:
        plan_env = _string(plan_env, where, f"{key}.plan_database_url_env")
        if not _ENV_VAR_NAME.match(plan_env):
            raise where.error(f"{key}.plan_database_url_env", "must be the NAME of an environment variable")
    backend = _string(body.get("backend", "native"), where, f"{key}.backend")
    if backend not in BACKENDS:
        raise where.error(f"{key}.backend", f"must be one of {', '.join(BACKENDS)}")
    if backend == "bytebase" and (urls_env or len(url_envs) > 1):
        raise where.error(
            f"{key}.backend", "a bytebase environment lists its databases in BYTEBASE_TARGETS, not here"
        )
    cron = _string(body.get("drift_cron", DEFAULT_DRIFT_CRON), where, f"{key}.drift_cron")
    if not _valid_cron(cron):
        raise where.error(f"{key}.drift_cron", f"{cron!r} is not a 5-field cron expression")
    default_hazards = ["all"] if name == "test" else []
    hazards = _string_list(body.get("allow_hazards", default_hazards), where, f"{key}.allow_hazards")
    hazards = [h if h == "all" else h.upper() for h in hazards]
    bad = [h for h in hazards if h != "all" and h not in HAZARD_NAMES]
    if bad:
        raise where.error(
            f"{key}.allow_hazards", f"unknown hazard {bad[0]!r}; known: all, {', '.join(HAZARD_NAMES)}"
        )
    include = body.get("include_schemas")
    exclude = body.get("exclude_schemas")
    ownership = _string(body.get("ownership", "all"), where, f"{key}.ownership")
    if ownership not in OWNERSHIP_MODES:
        raise where.error(f"{key}.ownership", f"must be one of {', '.join(OWNERSHIP_MODES)}")
    return EnvironmentConfig(
        name=name,
        database_url_env=url_env,
        plan_database_url_env=plan_env,
        database_url_envs=tuple(url_envs) if len(url_envs) > 1 else (),
        database_urls_env=urls_env,
        max_parallel=max_parallel,
        backend=backend,
        drift_cron=cron,
        allow_hazards=tuple(hazards),
        include_schemas=tuple(_string_list(include, where, f"{key}.include_schemas"))
        if include is not None
        else None,
        exclude_schemas=tuple(_string_list(exclude, where, f"{key}.exclude_schemas"))
        if exclude is not None
        else None,
        ownership=ownership,
    )


def _parse_url_vars(name: str, body: dict, where: _Where, key: str) -> tuple[list[str], str | None]:
    """`database_url_env` (a name or a list of names) or `database_urls_env` (one name, many URLs)."""
    if "database_urls_env" in body:
        if "database_url_env" in body:
            raise where.error(f"{key}.database_urls_env", "use either database_url_env or database_urls_env")
        urls_env = _string(body["database_urls_env"], where, f"{key}.database_urls_env")
        if not _ENV_VAR_NAME.match(urls_env):
            raise where.error(
                f"{key}.database_urls_env",
                "must be the NAME of an environment variable (the URLs themselves never go in this file)",
            )
        return [], urls_env
    raw = body.get("database_url_env", f"SCHEMA_PIPELINE_{name.upper()}_URL")
    names = _string_list(raw, where, f"{key}.database_url_env")
    if not names:
        raise where.error(f"{key}.database_url_env", "must name at least one environment variable")
    for var in names:
        if not _ENV_VAR_NAME.match(var):
            raise where.error(
                f"{key}.database_url_env",
                "must be the NAME of an environment variable (the URL itself never goes in this file)",
            )
    if len(set(names)) != len(names):
        raise where.error(f"{key}.database_url_env", "lists a variable twice")
    return names, None


@dataclass(frozen=True)
class _Where:
    file: Path

    def error(self, key: str, message: str) -> ConfigError:
        at = f" (key `{key}`)" if key else ""
        return ConfigError(f"{self.file}{at}: {message}")


def _no_unknown(mapping: dict, allowed: set[str], where: _Where, prefix: str) -> None:
    for k in mapping:
        if k not in allowed:
            key = f"{prefix}.{k}" if prefix else str(k)
            raise where.error(key, f"unknown key; allowed here: {', '.join(sorted(allowed))}")


def _string(value: Any, where: _Where, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, "must be a non-empty string")
    return value.strip()


def _string_list(value: Any, where: _Where, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise where.error(key, "must be a list of strings")
    return [v.strip() for v in value]


def _valid_cron(expr: str) -> bool:
    fields = expr.split()
    return len(fields) == 5 and all(re.match(r"^[\d*/,\-A-Za-z?]+$", f) for f in fields)
