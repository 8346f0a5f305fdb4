"""`BytebaseSettings`: everything the Bytebase backend needs, read from environment variables.

Variables (names follow the official bytebase-action and its tutorial):

- `BYTEBASE_URL`                      server URL, e.g. https://bytebase.example.com
- `BYTEBASE_SERVICE_ACCOUNT`          service account e-mail (with the secret below), or
- `BYTEBASE_SERVICE_ACCOUNT_SECRET`   its secret (never logged), or
- `BYTEBASE_ACCESS_TOKEN`             a ready access token (takes precedence, like the action)
- `BYTEBASE_PROJECT`                  `projects/hr` (a bare `hr` is accepted)
- `BYTEBASE_TARGETS`                  databases per environment, in promotion order:
                                      `test=instances/i1/databases/hr_test;prod=instances/i1/databases/hr_prod`
                                      (several databases for one environment: separate them with `,`)
- `BYTEBASE_ENVIRONMENTS`             optional: our environment -> Bytebase environment,
                                      `prod=environments/production` (default `environments/<name>`)
- `STATE_FILE_PATTERN`                glob of the state files (default `schemas/*.sql`; `FILE_PATTERN` also read)
- `BYTEBASE_PROTOCOL`                 `connect` (default, like the action) or `rest`
- `BYTEBASE_TIMEOUT`                  per-request timeout in seconds (default 120)
- `BYTEBASE_ROLLOUT_TIMEOUT`          give up waiting for a stage after this many seconds (default 3600)
- `BYTEBASE_POLL_INTERVAL`            first wait between rollout polls in seconds (default 2; grows x1.5 to 10)
- `BYTEBASE_CUSTOM_RULES_FILE`        optional natural-language standards file sent as `customRules`
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schema_pipeline.errors import ConfigError

_DATABASE = re.compile(r"^(projects/[^/\s]+/)?instances/[^/\s]+/databases/[^/\s]+$")
_ENV_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_BB_ENV = re.compile(r"^environments/[^/\s]+$")
DEFAULT_STATE_FILE_PATTERN = "schemas/*.sql"


class BytebaseConfigError(ConfigError):
    """The Bytebase backend is not configured correctly; the message lists what to fix."""


def parse_targets(text: str) -> dict[str, tuple[str, ...]]:
    """Parse `env=db[,db...];env=db` into an ordered mapping (promotion order = text order)."""
    result: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for raw_part in re.split(r"[;\n]", text):
        part = raw_part.strip()
        if not part:
            continue
        if "=" not in part:
            raise BytebaseConfigError(
                f"BYTEBASE_TARGETS: {part!r} has no environment; expected "
                "'test=instances/i1/databases/hr_test;prod=instances/i1/databases/hr_prod'"
            )
        env, _, dbs = part.partition("=")
        env = env.strip()
        if not _ENV_NAME.match(env):
            raise BytebaseConfigError(f"BYTEBASE_TARGETS: invalid environment name {env!r}")
        if env in result:
            raise BytebaseConfigError(f"BYTEBASE_TARGETS: environment {env!r} is listed twice")
        databases = tuple(d.strip() for d in dbs.split(",") if d.strip())
        if not databases:
            raise BytebaseConfigError(f"BYTEBASE_TARGETS: environment {env!r} has no databases")
        for db in databases:
            if not _DATABASE.match(db):
                raise BytebaseConfigError(
                    f"BYTEBASE_TARGETS: {db!r} (environment {env!r}) is not a database name "
                    "of the form instances/{instance}/databases/{database}"
                )
            if db in seen:
                raise BytebaseConfigError(
                    f"BYTEBASE_TARGETS: {db} is listed for both {seen[db]!r} and {env!r}; "
                    "each database belongs to exactly one environment"
                )
            seen[db] = env
        result[env] = databases
    if not result:
        raise BytebaseConfigError("BYTEBASE_TARGETS is empty")
    return result


def parse_environments(text: str) -> dict[str, str]:
    """Parse `env=environments/x;...` (our environment name -> Bytebase environment)."""
    result: dict[str, str] = {}
    for raw_part in re.split(r"[;,\n]", text):
        part = raw_part.strip()
        if not part:
            continue
        env, sep, bb_env = (s.strip() for s in part.partition("="))
        if not sep or not _BB_ENV.match(bb_env):
            raise BytebaseConfigError(
                f"BYTEBASE_ENVIRONMENTS: {part!r} must look like 'prod=environments/prod'"
            )
        result[env] = bb_env
    return result


@dataclass(frozen=True)
class BytebaseSettings:
    """Connection, project and target settings. Secrets are excluded from repr()."""

    url: str
    project: str
    targets: dict[str, tuple[str, ...]]
    service_account: str | None = None
    service_account_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    environments: dict[str, str] = field(default_factory=dict)
    state_file_pattern: str = DEFAULT_STATE_FILE_PATTERN
    protocol: str = "connect"
    timeout: float = 120.0
    rollout_timeout: float = 3600.0
    poll_interval: float = 2.0
    poll_max_interval: float = 10.0
    max_attempts: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    custom_rules_file: str | None = None

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^/\s]+", self.url):
            raise BytebaseConfigError(f"BYTEBASE_URL must be an absolute http(s) URL, got {self.url!r}")
        object.__setattr__(self, "url", self.url.rstrip("/"))
        project = self.project.strip()
        if not project.startswith("projects/"):
            project = f"projects/{project}"
        if not re.match(r"^projects/[^/\s]+$", project):
            raise BytebaseConfigError(f"BYTEBASE_PROJECT must look like 'projects/hr', got {self.project!r}")
        object.__setattr__(self, "project", project)
        if self.protocol not in ("connect", "rest"):
            raise BytebaseConfigError(f"BYTEBASE_PROTOCOL must be 'connect' or 'rest', got {self.protocol!r}")
        if self.poll_max_interval < self.poll_interval:
            object.__setattr__(self, "poll_max_interval", self.poll_interval)
        if not self.access_token and not (self.service_account and self.service_account_secret):
            raise BytebaseConfigError(
                "Bytebase credentials missing: set BYTEBASE_SERVICE_ACCOUNT and "
                "BYTEBASE_SERVICE_ACCOUNT_SECRET, or BYTEBASE_ACCESS_TOKEN"
            )
        unknown = sorted(set(self.environments) - set(self.targets))
        if unknown:
            raise BytebaseConfigError(
                f"BYTEBASE_ENVIRONMENTS names environments without targets: {', '.join(unknown)}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> BytebaseSettings:
        """Read the settings from environment variables; one error lists every missing variable."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        missing = [n for n in ("BYTEBASE_URL", "BYTEBASE_PROJECT", "BYTEBASE_TARGETS") if not get(n)]
        token = get("BYTEBASE_ACCESS_TOKEN")
        account, secret = get("BYTEBASE_SERVICE_ACCOUNT"), get("BYTEBASE_SERVICE_ACCOUNT_SECRET")
        if not token and not (account and secret):
            if account and not secret:
                missing.append("BYTEBASE_SERVICE_ACCOUNT_SECRET")
            elif secret and not account:
                missing.append("BYTEBASE_SERVICE_ACCOUNT")
            else:
                missing.append(
                    "BYTEBASE_SERVICE_ACCOUNT + BYTEBASE_SERVICE_ACCOUNT_SECRET (or BYTEBASE_ACCESS_TOKEN)"
                )
        if missing:
            raise BytebaseConfigError(
                "Bytebase backend: missing environment variables: " + ", ".join(missing)
            )

        def number(name: str, default: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise BytebaseConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
            if value <= 0:
                raise BytebaseConfigError(f"{name} must be positive, got {raw!r}")
            return value

        kwargs: dict[str, object] = dict(
            url=get("BYTEBASE_URL"),
            project=get("BYTEBASE_PROJECT"),
            targets=parse_targets(get("BYTEBASE_TARGETS") or ""),
            service_account=account,
            service_account_secret=secret,
            access_token=token,
            environments=parse_environments(get("BYTEBASE_ENVIRONMENTS") or ""),
            state_file_pattern=get("STATE_FILE_PATTERN") or get("FILE_PATTERN") or DEFAULT_STATE_FILE_PATTERN,
            protocol=(get("BYTEBASE_PROTOCOL") or "connect").lower(),
            timeout=number("BYTEBASE_TIMEOUT", 120.0),
            rollout_timeout=number("BYTEBASE_ROLLOUT_TIMEOUT", 3600.0),
            poll_interval=number("BYTEBASE_POLL_INTERVAL", 2.0),
            custom_rules_file=get("BYTEBASE_CUSTOM_RULES_FILE"),
        )
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def environment_names(self) -> list[str]:
        """Our environments that have Bytebase targets, in promotion order."""
        return list(self.targets)

    def targets_for(self, environment: str) -> tuple[str, ...]:
        """The databases of `environment`; a clear error when it has none."""
        try:
            return self.targets[environment]
        except KeyError:
            raise BytebaseConfigError(
                f"BYTEBASE_TARGETS has no databases for environment {environment!r} "
                f"(configured: {', '.join(self.targets)})"
            ) from None

    def bytebase_environment(self, environment: str) -> str:
        """The Bytebase environment (`environments/<id>`) whose stage releases `environment`."""
        return self.environments.get(environment, f"environments/{environment}")

    def custom_rules(self, root: str | Path | None = None) -> str | None:
        """Text of the custom rules file, if configured (relative paths resolve against `root`)."""
        if not self.custom_rules_file:
            return None
        path = Path(self.custom_rules_file)
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BytebaseConfigError(
                f"BYTEBASE_CUSTOM_RULES_FILE={self.custom_rules_file}: {exc.strerror}"
            ) from None

    def secrets(self) -> list[str]:
        """Values that must never appear in messages."""
        return [s for s in (self.service_account_secret, self.access_token) if s]
