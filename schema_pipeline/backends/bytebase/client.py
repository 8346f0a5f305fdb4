"""`BytebaseClient`: a small synchronous client for the Bytebase v1 API (httpx).

It speaks either Connect-JSON (`POST /bytebase.v1.<Service>/<Method>`, what the official
bytebase-action uses) or the REST gateway (`/v1/...`); both carry the same protojson
messages. It handles login and token reuse, one re-login on 401, retries with exponential
backoff on transient failures, and turns every failure into a `BytebaseError` that names
the call, the HTTP status and Bytebase's message, with secrets scrubbed.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from schema_pipeline.backends.bytebase.settings import BytebaseSettings
from schema_pipeline.errors import SchemaPipelineError

log = logging.getLogger(__name__)

MIN_VERSION = (3, 14)
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Connect code names and their gRPC numbers (REST bodies) that the action retries.
RETRY_CODES = frozenset({"unavailable", "deadline_exceeded", "resource_exhausted", "14", "4", "8"})
_UNKNOWN_CODES = frozenset({"unknown", "2"})
_UNKNOWN_TRANSIENT = re.compile(r"connection refused|connection reset|timeout", re.I)
_TRANSIENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError)
_REDACTED = "***"


class BytebaseError(SchemaPipelineError):
    """A Bytebase call failed. The message names the call, the status and Bytebase's message."""

    def __init__(
        self,
        message: str,
        *,
        call: str | None = None,
        status: int | None = None,
        code: str | None = None,
        server_message: str | None = None,
    ):
        self.call = call
        self.status = status
        self.code = code
        self.server_message = server_message
        super().__init__(message)


class BytebaseAuthError(BytebaseError):
    """Login failed or the credential was rejected."""


class BytebaseVersionError(BytebaseError):
    """The server's version is not supported by this backend."""


class BytebaseTaskFailed(BytebaseError):
    """A rollout task ended FAILED or CANCELED; `tasks` lists (task, status, detail)."""

    def __init__(self, message: str, tasks: list[tuple[str, str, str]]):
        self.tasks = tasks
        super().__init__(message)


def _transient_body(response: httpx.Response) -> bool:
    """An error body whose code is retryable (the action's rule), whatever the HTTP status."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    code = str(body.get("code", "")).lower()
    if code in RETRY_CODES:
        return True
    return code in _UNKNOWN_CODES and bool(_UNKNOWN_TRANSIENT.search(str(body.get("message") or "")))


def parse_version(version: str) -> tuple[int, int] | None:
    """`3.21.0` -> (3, 21); `cloud-...` and unknown formats -> None."""
    m = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def encode_bytes(text: str) -> str:
    """protojson `bytes`: base64 of the UTF-8 text."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class _Call:
    """One RPC in both spellings: Connect procedure + full message, REST method + path + body."""

    procedure: str
    message: dict[str, Any]
    rest_method: str
    rest_path: str
    rest_body: dict[str, Any] | None = None
    rest_params: dict[str, str] | None = None


class BytebaseClient:
    """Authenticated access to one Bytebase server. Thread-safe for token refresh."""

    def __init__(
        self,
        settings: BytebaseSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.base_url = settings.url
        self._http = http or httpx.Client(timeout=httpx.Timeout(settings.timeout), follow_redirects=False)
        self._owns_http = http is None
        self._sleep = sleep
        self._token: str | None = settings.access_token
        self._lock = threading.Lock()
        self._version: str | None = None
        self.login_count = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BytebaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- secrets -----------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Replace every secret (service-account secret, current and configured token) by ***."""
        for secret in [*self.settings.secrets(), self._token or ""]:
            if secret and len(secret) >= 4:
                text = text.replace(secret, _REDACTED)
        return re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+", r"\1" + _REDACTED, text)

    def _error(self, cls: type[BytebaseError], message: str, **kw: Any) -> BytebaseError:
        return cls(
            self.scrub(message), **{k: self.scrub(v) if isinstance(v, str) else v for k, v in kw.items()}
        )

    # -- auth --------------------------------------------------------------------------------

    def login(self) -> str:
        """Log in with the service account and remember the token."""
        s = self.settings
        if not (s.service_account and s.service_account_secret):
            raise BytebaseAuthError(
                "Bytebase rejected the access token (HTTP 401) and no service account is configured "
                "to log in again; set BYTEBASE_SERVICE_ACCOUNT/BYTEBASE_SERVICE_ACCOUNT_SECRET or a fresh "
                "BYTEBASE_ACCESS_TOKEN"
            )
        body = {"email": s.service_account, "password": s.service_account_secret}
        call = _Call("AuthService/Login", body, "POST", "/v1/auth/login", body)
        data = self._send(call, authenticated=False)
        token = data.get("token")
        if not token:
            hint = (
                " (the account requires MFA or a password reset)"
                if (data.get("mfaTempToken") or data.get("requireResetPassword"))
                else ""
            )
            raise self._error(
                BytebaseAuthError, f"Bytebase login as {s.service_account} returned no token{hint}"
            )
        self._token = token
        self.login_count += 1
        return token

    def _ensure_token(self) -> str:
        with self._lock:
            if self._token is None:
                self.login()
            assert self._token is not None
            return self._token

    def _relogin(self, stale: str | None) -> None:
        with self._lock:
            if self._token == stale:  # another thread may have refreshed already
                self._token = None
                self.login()

    # -- transport ---------------------------------------------------------------------------

    def _request(self, call: _Call, token: str | None) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.settings.protocol == "connect":
            headers["Content-Type"] = "application/json"
            headers["Connect-Protocol-Version"] = "1"
            return self._http.request(
                "POST", f"{self.base_url}/bytebase.v1.{call.procedure}", json=call.message, headers=headers
            )
        kwargs: dict[str, Any] = {"headers": headers, "params": call.rest_params or None}
        if call.rest_method != "GET":
            kwargs["json"] = call.rest_body if call.rest_body is not None else {}
        return self._http.request(call.rest_method, f"{self.base_url}{call.rest_path}", **kwargs)

    def _describe(self, call: _Call) -> str:
        if self.settings.protocol == "connect":
            return f"POST /bytebase.v1.{call.procedure}"
        return f"{call.rest_method} {call.rest_path}"

    def _send(self, call: _Call, *, authenticated: bool = True) -> dict[str, Any]:
        """Send `call` with retries and one re-login on 401; return the decoded JSON object."""
        name = self._describe(call)
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            token = self._ensure_token() if authenticated else None
            try:
                response = self._request(call, token)
            except _TRANSIENT as exc:
                if attempt < self.settings.max_attempts:
                    self._backoff(name, attempt, type(exc).__name__)
                    continue
                raise self._error(
                    BytebaseError,
                    f"Bytebase {name} failed after {attempt} attempts: {type(exc).__name__}: {exc} "
                    f"(server {self.base_url})",
                    call=name,
                ) from None
            except httpx.TimeoutException as exc:
                raise self._error(
                    BytebaseError,
                    f"Bytebase {name} timed out after {self.settings.timeout:g}s ({type(exc).__name__})",
                    call=name,
                ) from None
            except httpx.HTTPError as exc:
                raise self._error(
                    BytebaseError, f"Bytebase {name} failed: {type(exc).__name__}: {exc}", call=name
                ) from None

            status = response.status_code
            can_login = bool(self.settings.service_account and self.settings.service_account_secret)
            if status == 401 and authenticated and not relogged and can_login:
                relogged = True
                log.info("Bytebase %s: token rejected (401), logging in again", name)
                self._relogin(token)
                attempt -= 1  # the auth retry does not consume an attempt
                continue
            if (
                status in RETRY_STATUSES or (status >= 400 and _transient_body(response))
            ) and attempt < self.settings.max_attempts:
                self._backoff(name, attempt, f"HTTP {status}")
                continue
            if status >= 400:
                raise self._http_error(name, response, authenticated=authenticated)
            return self._decode(name, response)

    def _backoff(self, name: str, attempt: int, reason: str) -> None:
        delay = min(self.settings.backoff_base * (2 ** (attempt - 1)), self.settings.backoff_max)
        log.warning(
            "Bytebase %s: %s, retrying in %.1fs (attempt %d/%d)",
            name,
            reason,
            delay,
            attempt + 1,
            self.settings.max_attempts,
        )
        self._sleep(delay)

    def _decode(self, name: str, response: httpx.Response) -> dict[str, Any]:
        text = response.text
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            snippet = text[:120].replace("\n", " ")
            raise self._error(
                BytebaseError,
                f"Bytebase {name} returned HTTP {response.status_code} with a body that is not JSON: {snippet!r}",
                call=name,
                status=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise self._error(
                BytebaseError,
                f"Bytebase {name} returned HTTP {response.status_code} with JSON that is not an object",
                call=name,
                status=response.status_code,
            )
        return data

    def _http_error(self, name: str, response: httpx.Response, *, authenticated: bool) -> BytebaseError:
        status = response.status_code
        code: str | None = None
        message = ""
        try:
            body = response.json()
            if isinstance(body, dict):
                code = str(body["code"]) if "code" in body else None
                message = str(body.get("message") or body.get("error") or "")
        except ValueError:
            message = response.text[:200].strip()
        detail = f" ({code})" if code else ""
        text = f"Bytebase {name} failed: HTTP {status}{detail}: {message or response.reason_phrase}"
        cls: type[BytebaseError] = BytebaseError
        if status == 401 or (not authenticated and status in (400, 403)):
            cls = BytebaseAuthError
            if not authenticated:
                text += f" (login as {self.settings.service_account} was refused; check the service account and its secret)"
            elif not (self.settings.service_account and self.settings.service_account_secret):
                text += " (the access token was rejected)"
        elif status in (404, 405, 501) and self.settings.protocol == "connect" and not message:
            text += " (the server may be too old for the Connect API; see the version check)"
        return self._error(cls, text, call=name, status=status, code=code, server_message=message)

    # -- version -----------------------------------------------------------------------------

    def server_version(self) -> str:
        """`GET /v1/actuator/info` -> `version` (cached)."""
        if self._version is None:
            data = self._send(_Call("ActuatorService/GetActuatorInfo", {}, "GET", "/v1/actuator/info"))
            self._version = str(data.get("version") or "")
        return self._version

    def check_version(self) -> str:
        """Refuse servers older than 3.14 (the nested plan/rollout API this backend uses)."""
        try:
            version = self.server_version()
        except BytebaseError as exc:
            if exc.status in (404, 405, 501):
                raise self._error(
                    BytebaseVersionError,
                    f"{self.base_url} does not answer {exc.call} (HTTP {exc.status}); it is not a Bytebase "
                    f"server or it is older than {MIN_VERSION[0]}.{MIN_VERSION[1]}, which this backend needs",
                    call=exc.call,
                    status=exc.status,
                ) from None
            raise
        parsed = parse_version(version)
        if version.startswith("cloud-") or not version:
            return version
        if parsed is None:
            log.warning("Bytebase reports an unrecognised version %r; continuing", version)
            return version
        if parsed < MIN_VERSION or parsed[0] != MIN_VERSION[0]:
            raise BytebaseVersionError(
                f"Bytebase at {self.base_url} reports version {version}, which this backend does not support: "
                f"it needs Bytebase {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer within major version "
                f"{MIN_VERSION[0]} (declarative releases with the nested plans/{{id}}/rollout API). "
                "Upgrade Bytebase or use the native backend for this environment."
            )
        return version

    # -- API operations ----------------------------------------------------------------------

    def check_release(
        self,
        project: str,
        files: Iterable[dict[str, Any]],
        targets: list[str],
        custom_rules: str | None = None,
    ) -> dict[str, Any]:
        """`ReleaseService/CheckRelease` for a DECLARATIVE release."""
        release = {"type": "DECLARATIVE", "files": list(files)}
        body: dict[str, Any] = {"release": release, "targets": targets}
        if custom_rules:
            body["customRules"] = custom_rules
        return self._send(
            _Call(
                "ReleaseService/CheckRelease",
                {"parent": project, **body},
                "POST",
                f"/v1/{project}/releases:check",
                body,
            )
        )

    def create_release(
        self,
        project: str,
        files: list[dict[str, Any]],
        *,
        vcs_url: str | None = None,
        id_template: str = "release_{date}-RC{iteration}",
        timezone: str = "UTC",
    ) -> dict[str, Any]:
        """`ReleaseService/CreateRelease` (type DECLARATIVE)."""
        release: dict[str, Any] = {"files": files, "type": "DECLARATIVE"}
        if vcs_url:
            release["vcsSource"] = {"vcsType": "GITHUB", "url": vcs_url}
        params = {"releaseIdTemplate": id_template, "releaseIdTimezone": timezone}
        return self._send(
            _Call(
                "ReleaseService/CreateRelease",
                {"parent": project, "release": release, **params},
                "POST",
                f"/v1/{project}/releases",
                release,
                params,
            )
        )

    def create_plan(self, project: str, plan: dict[str, Any]) -> dict[str, Any]:
        """`PlanService/CreatePlan`."""
        return self._send(
            _Call(
                "PlanService/CreatePlan",
                {"parent": project, "plan": plan},
                "POST",
                f"/v1/{project}/plans",
                plan,
            )
        )

    def get_plan(self, plan: str) -> dict[str, Any]:
        """`PlanService/GetPlan`."""
        return self._send(_Call("PlanService/GetPlan", {"name": plan}, "GET", f"/v1/{plan}"))

    def create_rollout(self, plan: str, target: str | None) -> dict[str, Any]:
        """`RolloutService/CreateRollout`. `target=None` creates every stage; pass an environment."""
        body: dict[str, Any] = {} if target is None else {"target": target}
        return self._send(
            _Call(
                "RolloutService/CreateRollout", {"parent": plan, **body}, "POST", f"/v1/{plan}/rollout", body
            )
        )

    def get_rollout(self, rollout: str) -> dict[str, Any]:
        """`RolloutService/GetRollout` (`rollout` = `<plan>/rollout`)."""
        return self._send(_Call("RolloutService/GetRollout", {"name": rollout}, "GET", f"/v1/{rollout}"))

    def batch_run_tasks(self, stage: str, tasks: list[str]) -> dict[str, Any]:
        """`RolloutService/BatchRunTasks` for tasks of one stage."""
        body = {"tasks": tasks}
        return self._send(
            _Call(
                "RolloutService/BatchRunTasks",
                {"parent": stage, **body},
                "POST",
                f"/v1/{stage}/tasks:batchRun",
                body,
            )
        )

    def list_task_runs(self, parent: str) -> list[dict[str, Any]]:
        """`RolloutService/ListTaskRuns` (`parent` may use `-` wildcards)."""
        data = self._send(
            _Call("RolloutService/ListTaskRuns", {"parent": parent}, "GET", f"/v1/{parent}/taskRuns")
        )
        return list(data.get("taskRuns") or [])

    def batch_cancel_task_runs(self, stage: str, task_runs: list[str]) -> dict[str, Any]:
        """`RolloutService/BatchCancelTaskRuns` for runs of one stage."""
        parent = f"{stage}/tasks/-"
        body = {"taskRuns": task_runs}
        return self._send(
            _Call(
                "RolloutService/BatchCancelTaskRuns",
                {"parent": parent, **body},
                "POST",
                f"/v1/{parent}/taskRuns:batchCancel",
                body,
            )
        )

    def sync_database(self, database: str) -> dict[str, Any]:
        """`DatabaseService/SyncDatabase`: refresh Bytebase's copy of the live schema."""
        return self._send(
            _Call("DatabaseService/SyncDatabase", {"name": database}, "POST", f"/v1/{database}:sync", {})
        )

    def diff_schema(self, database: str, schema: str) -> str:
        """`DatabaseService/DiffSchema`: the DDL that turns the live schema into `schema`."""
        body = {"schema": schema}
        data = self._send(
            _Call(
                "DatabaseService/DiffSchema",
                {"name": database, **body},
                "POST",
                f"/v1/{database}:diffSchema",
                body,
            )
        )
        return str(data.get("diff") or "")

    def get_database(self, database: str) -> dict[str, Any]:
        """`DatabaseService/GetDatabase`."""
        return self._send(_Call("DatabaseService/GetDatabase", {"name": database}, "GET", f"/v1/{database}"))

    def link(self, resource: str) -> str:
        """The Bytebase UI address of a resource name (what the action prints)."""
        return f"{self.base_url}/{resource}"
