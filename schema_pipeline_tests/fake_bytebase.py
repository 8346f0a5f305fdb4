"""A small local implementation of the parts of Bytebase's v1 API the bytebase backend uses.

It follows the documented wire format (see ../shared/reference/bytebase-api.md): both the
REST gateway paths (`/v1/...`, strict about unknown body fields) and the Connect-JSON
procedures (`POST /bytebase.v1.<Service>/<Method>`), protojson camelCase messages, enum
names, base64 `bytes`, Connect and REST error bodies. It keeps releases, plans, rollouts,
stages, tasks and task runs with the server's state machine, and a live/synced schema per
database for sync + diffSchema.

Failure modes are plain attributes (set them between calls):

- `expire_token_once`   the next authenticated call gets 401 and every token is revoked
- `fail_next`           list of HTTP statuses, or (status, code, message) triples, returned (in
                        order) before normal handling
- `malformed_next`      number of upcoming responses replaced by a non-JSON body
- `delay_next`          list of seconds: the next requests are answered that much later (a hung server)
- `unimplemented`       procedures answered `unimplemented` (an older or foreign server)
- `skip_dbs`            databases whose tasks are SKIPPED when created (skipped in the UI)
- `task_outcome`        final status of task runs: DONE, FAILED or CANCELED (per database:
                        `task_outcome_by_db`)
- `polls_per_task`      GetRollout polls a run stays RUNNING before it finishes (slow tasks)
- `version`             what /v1/actuator/info reports (e.g. "3.13.0" = unsupported)
- `auto_run_envs`       environments with an *automatic* rollout policy: their tasks start as
                        soon as their stage is created (the approval risk)
- `leak_secret_in_errors` the login error message echoes the submitted password

This is a test double, not Bytebase: it checks what a client sends and answers like the
documented server; it does not compute real migrations.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CONNECT_STATUS = {
    "invalid_argument": 400,
    "failed_precondition": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "unimplemented": 404,
    "internal": 500,
    "unavailable": 503,
    "deadline_exceeded": 504,
    "resource_exhausted": 429,
    "unknown": 500,
}
GRPC_CODE = {
    "unknown": 2,
    "invalid_argument": 3,
    "deadline_exceeded": 4,
    "not_found": 5,
    "permission_denied": 7,
    "resource_exhausted": 8,
    "failed_precondition": 9,
    "unimplemented": 12,
    "internal": 13,
    "unavailable": 14,
    "unauthenticated": 16,
}
STATUS_CODE_NAME = {
    400: "invalid_argument",
    401: "unauthenticated",
    429: "resource_exhausted",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}

_P = r"projects/[^/]+"
_PLAN = rf"{_P}/plans/[^/]+"
_ROLLOUT = rf"{_PLAN}/rollout"
_STAGE = rf"{_ROLLOUT}/stages/[^/]+"
_DB = r"instances/[^/]+/databases/[^/:]+"

# (HTTP method, path regex with one group = the resource, procedure, resource field, body field or "*")
REST_ROUTES: list[tuple[str, re.Pattern[str], str, str | None, str | None]] = [
    ("POST", re.compile(r"/v1/auth/login"), "AuthService/Login", None, "*"),
    ("GET", re.compile(r"/v1/actuator/info"), "ActuatorService/GetActuatorInfo", None, None),
    ("POST", re.compile(rf"/v1/({_P})/releases:check"), "ReleaseService/CheckRelease", "parent", "*"),
    ("POST", re.compile(rf"/v1/({_P})/releases"), "ReleaseService/CreateRelease", "parent", "release"),
    ("POST", re.compile(rf"/v1/({_P})/plans"), "PlanService/CreatePlan", "parent", "plan"),
    ("GET", re.compile(rf"/v1/({_PLAN})"), "PlanService/GetPlan", "name", None),
    ("POST", re.compile(rf"/v1/({_PLAN})/rollout"), "RolloutService/CreateRollout", "parent", "*"),
    ("GET", re.compile(rf"/v1/({_ROLLOUT})"), "RolloutService/GetRollout", "name", None),
    ("POST", re.compile(rf"/v1/({_STAGE})/tasks:batchRun"), "RolloutService/BatchRunTasks", "parent", "*"),
    (
        "GET",
        re.compile(rf"/v1/({_STAGE}/tasks/[^/]+)/taskRuns"),
        "RolloutService/ListTaskRuns",
        "parent",
        None,
    ),
    (
        "POST",
        re.compile(rf"/v1/({_STAGE}/tasks/[^/]+)/taskRuns:batchCancel"),
        "RolloutService/BatchCancelTaskRuns",
        "parent",
        "*",
    ),
    ("POST", re.compile(rf"/v1/({_DB}):sync"), "DatabaseService/SyncDatabase", "name", "*"),
    ("POST", re.compile(rf"/v1/({_DB}):diffSchema"), "DatabaseService/DiffSchema", "name", "*"),
    ("GET", re.compile(rf"/v1/({_DB})"), "DatabaseService/GetDatabase", "name", None),
]
# Fields a REST body may carry (protojson rejects unknown fields on the gateway).
REST_BODY_FIELDS: dict[str, set[str]] = {
    "AuthService/Login": {
        "email",
        "password",
        "web",
        "mfaTempToken",
        "otpCode",
        "recoveryCode",
        "idpName",
        "idpContext",
    },
    "ReleaseService/CheckRelease": {"release", "targets", "customRules", "vcsUser"},
    "ReleaseService/CreateRelease": {"name", "title", "files", "vcsSource", "type", "category"},
    "PlanService/CreatePlan": {"title", "description", "specs"},
    "RolloutService/CreateRollout": {"target"},
    "RolloutService/BatchRunTasks": {"tasks", "runTime", "skipPriorBackup"},
    "RolloutService/BatchCancelTaskRuns": {"taskRuns", "reason"},
    "DatabaseService/SyncDatabase": set(),
    "DatabaseService/DiffSchema": {"schema", "changelog", "sdlFormat"},
}
AUTO_RUN_FINAL = {"DONE", "FAILED", "CANCELED"}


class RpcError(Exception):
    """An error the fake answers with (Connect code name + message)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass
class Recorded:
    method: str
    path: str
    procedure: str | None
    protocol: str  # "connect" or "rest"
    authorization: str | None
    body: Any = None


@dataclass
class TaskRun:
    name: str
    task: str
    status: str = "PENDING"
    detail: str = ""
    polls: int = 0
    create_time: str = ""
    start_time: str = ""
    update_time: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "creator": "users/api@service.bytebase.com",
            "createTime": self.create_time,
            "updateTime": self.update_time,
        }
        if self.detail:
            out["detail"] = self.detail
        if self.start_time:
            out["startTime"] = self.start_time
        return out


@dataclass
class Task:
    name: str
    target: str
    spec_id: str
    release: str
    status: str = "NOT_STARTED"
    skipped_reason: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "specId": self.spec_id,
            "status": self.status,
            "type": "DATABASE_MIGRATE",
            "target": self.target,
            "databaseUpdate": {"release": self.release},
        }
        if self.skipped_reason:
            out["skippedReason"] = self.skipped_reason
        return out


@dataclass
class Stage:
    name: str
    environment: str
    tasks: list[Task] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        env_id = self.environment.rsplit("/", 1)[-1]
        return {
            "name": self.name,
            "id": env_id,
            "environment": self.environment,
            "tasks": [t.as_json() for t in self.tasks],
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _statements(sql: str) -> list[str]:
    return [" ".join(s.split()) for s in sql.split(";") if s.strip()]


class FakeBytebase:
    """The server state, the failure modes and the HTTP server (127.0.0.1, ephemeral port)."""

    def __init__(
        self,
        *,
        account: str = "api@service.bytebase.com",
        secret: str = "bb-secret-DO-NOT-LEAK-42",
        project: str = "projects/hr",
        databases: dict[str, str] | None = None,
        version: str = "3.21.0",
    ):
        self.account = account
        self.secret = secret
        self.project = project
        # database -> Bytebase environment id; order of environments = first appearance here
        self.databases = databases or {
            "instances/test-sample-instance/databases/hr_test": "test",
            "instances/prod-sample-instance/databases/hr_prod": "prod",
        }
        self.env_order = list(dict.fromkeys(self.databases.values()))
        self.version = version
        self.lock = threading.RLock()
        self.tokens: set[str] = set()
        self.logins = 0
        self.requests: list[Recorded] = []
        # failure modes
        self.expire_token_once = False
        self.fail_next: list[int | tuple[int, str, str]] = []
        self.malformed_next = 0
        self.delay_next: list[float] = []
        self.unimplemented: set[str] = set()
        self.skip_dbs: set[str] = set()
        self.task_outcome = "DONE"
        self.task_outcome_by_db: dict[str, str] = {}
        self.polls_per_task = 0
        self.auto_run_envs: set[str] = set()
        self.leak_secret_in_errors = False
        # state
        self.releases: dict[str, dict[str, Any]] = {}
        self.release_statements: dict[str, str] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.rollouts: dict[str, list[Stage]] = {}
        self.task_runs: dict[str, TaskRun] = {}
        self.started_tasks: list[str] = []
        self.live: dict[str, str] = dict.fromkeys(self.databases, "")
        self.synced: dict[str, str] = dict.fromkeys(self.databases, "")
        self.db_release: dict[str, str] = {}
        self._counter = 100
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- server lifecycle --------------------------------------------------------------------

    def start(self) -> FakeBytebase:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # one write per response (avoids Nagle + delayed-ACK stalls)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, ctype, payload = fake.dispatch(
                    self.command, self.path, dict(self.headers.items()), raw
                )
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-bytebase",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBytebase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- helpers for tests -------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """Environment variables that point BytebaseSettings.from_env at this server."""
        by_env: dict[str, list[str]] = {}
        for db, env in self.databases.items():
            by_env.setdefault(env, []).append(db)
        targets = ";".join(f"{env}={','.join(dbs)}" for env, dbs in by_env.items())
        return {
            "BYTEBASE_URL": self.url,
            "BYTEBASE_SERVICE_ACCOUNT": self.account,
            "BYTEBASE_SERVICE_ACCOUNT_SECRET": self.secret,
            "BYTEBASE_PROJECT": self.project,
            "BYTEBASE_TARGETS": targets,
            **extra,
        }

    def set_live_schema(self, database: str, sql: str) -> None:
        """Simulate a change made directly on the database (out of band)."""
        with self.lock:
            self.live[database] = sql

    def tasks(self) -> list[Task]:
        with self.lock:
            return [t for stages in self.rollouts.values() for s in stages for t in s.tasks]

    def stage_environments(self) -> list[str]:
        with self.lock:
            return [s.environment for stages in self.rollouts.values() for s in stages]

    def procedures(self) -> list[str | None]:
        return [r.procedure for r in self.requests]

    # -- HTTP dispatch -----------------------------------------------------------------------

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        connect = path.startswith("/bytebase.v1.")
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        with self.lock:
            delay = self.delay_next.pop(0) if self.delay_next else 0.0
        if delay:
            time.sleep(delay)  # outside the lock: other requests are still answered
        with self.lock:
            rec = Recorded(method, path, None, "connect" if connect else "rest", auth)
            self.requests.append(rec)
            try:
                if self.fail_next:
                    failure = self.fail_next.pop(0)
                    if isinstance(failure, tuple):
                        status, code, text = failure
                    else:
                        status = failure
                        code, text = (
                            STATUS_CODE_NAME.get(status, "unavailable"),
                            f"upstream returned {status}",
                        )
                    return self._error(connect, RpcError(code, text), status)
                procedure, message = self._route(method, path, query, raw, connect)
                rec.procedure, rec.body = procedure, message
                if procedure != "AuthService/Login":
                    self._authenticate(auth)
                result = self._call(procedure, message)
            except RpcError as exc:
                return self._error(connect, exc)
            if self.malformed_next > 0 and rec.procedure != "AuthService/Login":
                self.malformed_next -= 1
                return 200, "application/json", b"<html><body>502 Bad Gateway</body></html>"
            return 200, "application/json", json.dumps(result).encode()

    def _error(self, connect: bool, exc: RpcError, status: int | None = None) -> tuple[int, str, bytes]:
        if connect:
            body: dict[str, Any] = {"code": exc.code, "message": exc.message}
            http_status = status or CONNECT_STATUS.get(exc.code, 500)
        else:
            body = {"code": GRPC_CODE.get(exc.code, 2), "message": exc.message, "details": []}
            http_status = status or {"unimplemented": 501}.get(exc.code, CONNECT_STATUS.get(exc.code, 500))
        return http_status, "application/json", json.dumps(body).encode()

    def _route(
        self, method: str, path: str, query: dict[str, str], raw: bytes, connect: bool
    ) -> tuple[str, dict[str, Any]]:
        body: Any = {}
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise RpcError("invalid_argument", "request body is not valid JSON") from None
        if connect:
            if method != "POST":
                raise RpcError("unimplemented", f"{method} is not allowed for Connect procedures")
            procedure = path[len("/bytebase.v1.") :]
            if not isinstance(body, dict):
                raise RpcError("invalid_argument", "request must be a JSON object")
            return procedure, body
        for route_method, pattern, procedure, resource_field, body_field in REST_ROUTES:
            m = pattern.fullmatch(path)
            if not m or route_method != method:
                continue
            allowed = REST_BODY_FIELDS.get(procedure)
            if allowed is not None and isinstance(body, dict):
                unknown = sorted(set(body) - allowed)
                if unknown:
                    raise RpcError("invalid_argument", f'proto: unknown field "{unknown[0]}"')
            message: dict[str, Any] = {}
            if resource_field:
                message[resource_field] = m.group(1)
            if body_field == "*":
                message.update(body)
            elif body_field:
                message[body_field] = body
            message.update(query)
            return procedure, message
        raise RpcError("unimplemented", f"no route for {method} {path}")

    def _authenticate(self, auth: str | None) -> None:
        token = auth[7:] if auth and auth.startswith("Bearer ") else None
        if not token or token not in self.tokens:
            raise RpcError("unauthenticated", "access token not found or expired")
        if self.expire_token_once:
            self.expire_token_once = False
            self.tokens.clear()
            raise RpcError("unauthenticated", "access token expired")

    def _call(self, procedure: str, message: dict[str, Any]) -> dict[str, Any]:
        if procedure in self.unimplemented:
            raise RpcError("unimplemented", f"unknown procedure bytebase.v1.{procedure}")
        handler = getattr(self, "rpc_" + procedure.replace("/", "_"), None)
        if handler is None:
            raise RpcError("unimplemented", f"procedure {procedure} is not implemented")
        return handler(message)

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    # -- services ----------------------------------------------------------------------------

    def rpc_AuthService_Login(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        if m.get("web"):
            raise RpcError("permission_denied", "only users can use web login")
        if m.get("email") != self.account or m.get("password") != self.secret:
            extra = f" (password {m.get('password')!r} rejected)" if self.leak_secret_in_errors else ""
            raise RpcError("unauthenticated", f"the email or password is not valid{extra}")
        token = "tok-" + uuid.uuid4().hex
        self.tokens.add(token)
        self.logins += 1
        return {
            "token": token,
            "user": {"name": f"users/{self.account}", "email": self.account, "userType": "SERVICE_ACCOUNT"},
        }

    def rpc_ActuatorService_GetActuatorInfo(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return {
            "version": self.version,
            "gitCommit": "0123456789abcdef",
            "workspace": "workspaces/fake",
            "externalUrl": "",
        }

    def _project(self, name: str) -> None:
        if name != self.project:
            raise RpcError("not_found", f'project "{name}" not found')

    def _database(self, name: str) -> str:
        db = re.sub(r"^projects/[^/]+/", "", name)
        if db not in self.databases:
            raise RpcError("not_found", f'database "{name}" not found')
        return db

    def _files(self, release: dict[str, Any]) -> list[tuple[str, str, str]]:
        out = []
        for f in release.get("files") or []:
            version = str(f.get("version") or "")
            if not re.fullmatch(r"\d+(\.\d+)*", version):
                raise RpcError("invalid_argument", f'invalid version "{version}" for file "{f.get("path")}"')
            try:
                statement = base64.b64decode(f.get("statement") or "", validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise RpcError("invalid_argument", "statement must be base64-encoded bytes") from None
            out.append((str(f.get("path") or ""), version, statement))
        return out

    def rpc_ReleaseService_CheckRelease(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        self._project(m.get("parent", ""))
        release = m.get("release") or {}
        if release.get("type") not in ("VERSIONED", "DECLARATIVE"):
            raise RpcError("invalid_argument", "release type must be VERSIONED or DECLARATIVE")
        targets = m.get("targets") or []
        if not targets:
            raise RpcError("invalid_argument", "targets cannot be empty")
        for t in targets:
            self._database(t)
        files = self._files(release)
        rules = str(m.get("customRules") or "")
        results = []
        for target in targets:
            for path, _version, statement in files:
                advices = self._advise(statement, rules)
                if advices:
                    results.append({"file": path, "target": target, "advices": advices})
        return {"results": results}

    def _advise(self, statement: str, rules: str) -> list[dict[str, Any]]:
        """A few of the server's SDL checks, line-based, enough to exercise the mapping."""
        advices = []
        for lineno, line in enumerate(statement.splitlines(), start=1):
            upper = line.strip().upper()
            col = len(line) - len(line.lstrip()) + 1
            if upper.startswith(("DROP ", "INSERT ", "UPDATE ", "DELETE ")):
                advices.append(
                    {
                        "status": "ERROR",
                        "code": 239,
                        "title": "Disallowed statement in SDL file",
                        "content": f"Statement type '{upper.split()[0]}' is not allowed in SDL files",
                        "startPosition": {"line": lineno, "column": col},
                        "ruleType": "PARSER_BASED",
                    }
                )
            m = re.match(r"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w\"]+)\s*\(", line, re.I)
            if m:
                advices.append(
                    {
                        "status": "ERROR",
                        "code": 242,
                        "title": "sdl.require-schema-name",
                        "content": f"Table {m.group(1)} must be schema-qualified",
                        "startPosition": {"line": lineno, "column": col},
                        "ruleType": "PARSER_BASED",
                    }
                )
            if upper.startswith("CREATE OR REPLACE"):
                advices.append(
                    {
                        "status": "WARNING",
                        "code": 256,
                        "title": "CREATE OR REPLACE operation detected",
                        "content": "CREATE OR REPLACE may change an existing object",
                        "startPosition": {"line": lineno},
                        "ruleType": "PARSER_BASED",
                    }
                )
            if rules and "VARCHAR" in upper:
                advices.append(
                    {
                        "status": "ERROR",
                        "code": 0,
                        "title": "prefer-text",
                        "content": "Use text instead of varchar",
                        "ruleType": "AI_POWERED",
                        "startPosition": {"line": lineno, "column": line.upper().index("VARCHAR") + 1},
                    }
                )
        return advices

    def rpc_ReleaseService_CreateRelease(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        self._project(m.get("parent", ""))
        release = dict(m.get("release") or {})
        if release.get("type") != "DECLARATIVE":
            raise RpcError("invalid_argument", "this fake only supports DECLARATIVE releases")
        files = self._files(release)
        if not files:
            raise RpcError("invalid_argument", "release must have files")
        template = str(m.get("releaseIdTemplate") or "release_{date}-RC{iteration}")
        date = datetime.now(UTC).strftime("%Y%m%d")
        iteration = sum(1 for r in self.releases if date in r)
        rid = template.replace("{date}", date).replace("{iteration}", f"{iteration:02d}")
        rid = rid.replace("{time}", datetime.now(UTC).strftime("%H%M%S")).replace(
            "{timestamp}", str(self._next_id())
        )
        name = f"{self.project}/releases/{rid}"
        out_files = []
        for path, version, statement in files:
            sha = uuid.uuid5(uuid.NAMESPACE_URL, statement).hex
            out_files.append(
                {
                    "path": path,
                    "version": version,
                    "sheet": f"{self.project}/sheets/{sha}",
                    "sheetSha256": sha,
                }
            )
        stored = {
            "name": name,
            "files": out_files,
            "type": "DECLARATIVE",
            "state": "ACTIVE",
            "createTime": _now(),
            "creator": f"users/{self.account}",
        }
        if release.get("vcsSource"):
            stored["vcsSource"] = release["vcsSource"]
        self.releases[name] = stored
        self.release_statements[name] = files[0][2]
        return stored

    def rpc_PlanService_CreatePlan(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        self._project(m.get("parent", ""))
        plan = dict(m.get("plan") or {})
        if len(str(plan.get("title") or "")) > 200:
            raise RpcError("invalid_argument", "title is too long (max 200)")
        specs = plan.get("specs") or []
        if not specs:
            raise RpcError("invalid_argument", "plan must have specs")
        for spec in specs:
            cfg = spec.get("changeDatabaseConfig") or {}
            if cfg.get("release") and cfg["release"] not in self.releases:
                raise RpcError("not_found", f'release "{cfg["release"]}" not found')
            for t in cfg.get("targets") or []:
                self._database(t)
        name = f"{self.project}/plans/{self._next_id()}"
        stored = {
            "name": name,
            "title": plan.get("title", ""),
            "description": plan.get("description", ""),
            "specs": specs,
            "creator": f"users/{self.account}",
            "createTime": _now(),
            "hasRollout": False,
        }
        self.plans[name] = stored
        return stored

    def rpc_PlanService_GetPlan(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = m.get("name", "")
        if name not in self.plans:
            raise RpcError("not_found", f'plan "{name}" not found')
        return self.plans[name]

    def rpc_RolloutService_CreateRollout(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        plan_name = m.get("parent", "")
        plan = self.plans.get(plan_name)
        if plan is None:
            raise RpcError("not_found", f'plan "{plan_name}" not found')
        target = m.get("target")  # None = all stages, "" = none, "environments/x" = that stage
        rollout = f"{plan_name}/rollout"
        stages = self.rollouts.setdefault(rollout, [])
        plan["hasRollout"] = True
        wanted: list[tuple[str, str, str, str]] = []  # (env, db, spec id, release)
        for spec in plan["specs"]:
            cfg = spec.get("changeDatabaseConfig") or {}
            for t in cfg.get("targets") or []:
                db = self._database(t)
                wanted.append((self.databases[db], db, spec.get("id", ""), cfg.get("release", "")))
        new_envs: set[str] = set()
        for env in self.env_order:
            if target is not None and target != f"environments/{env}":
                continue
            dbs = [w for w in wanted if w[0] == env]
            if not dbs:
                continue
            stage = next((s for s in stages if s.environment == f"environments/{env}"), None)
            if stage is None:
                stage = Stage(name=f"{rollout}/stages/{env}", environment=f"environments/{env}")
                stages.append(stage)
                stages.sort(key=lambda s: self.env_order.index(s.environment.rsplit("/", 1)[-1]))
            for _env, db, spec_id, release in dbs:
                if not any(t.target == db for t in stage.tasks):
                    task = Task(f"{stage.name}/tasks/{self._next_id()}", db, spec_id, release)
                    if db in self.skip_dbs:
                        task.status, task.skipped_reason = "SKIPPED", "skipped by a user in the Bytebase UI"
                    stage.tasks.append(task)
                    new_envs.add(env)
        for env in new_envs & self.auto_run_envs:  # automatic rollout policy: runs immediately
            stage = next(s for s in stages if s.environment == f"environments/{env}")
            self._run_tasks(stage, [t.name for t in stage.tasks if t.status == "NOT_STARTED"])
        return self._rollout_json(rollout)

    def _rollout_json(self, rollout: str) -> dict[str, Any]:
        plan = self.plans[rollout.rsplit("/rollout", 1)[0]]
        return {
            "name": rollout,
            "title": plan.get("title", ""),
            "stages": [s.as_json() for s in self.rollouts[rollout]],
            "createTime": plan["createTime"],
        }

    def _tick(self, rollout: str) -> None:
        """One poll: advance every active run of the rollout."""
        for stage in self.rollouts[rollout]:
            for task in stage.tasks:
                runs = [r for r in self.task_runs.values() if r.task == task.name]
                for run in runs:
                    if run.status not in ("PENDING", "RUNNING"):
                        continue
                    run.polls += 1
                    run.update_time = _now()
                    if run.status == "PENDING":
                        run.status = task.status = "RUNNING"
                        run.start_time = _now()
                    if run.polls > self.polls_per_task:
                        self._finish(run, task)

    def _finish(self, run: TaskRun, task: Task) -> None:
        outcome = self.task_outcome_by_db.get(task.target, self.task_outcome)
        run.status = task.status = outcome
        run.update_time = _now()
        if outcome == "DONE":
            statement = self.release_statements.get(task.release, "")
            self.live[task.target] = self.synced[task.target] = statement
            self.db_release[task.target] = task.release
            run.detail = f"Applied release {task.release.rsplit('/', 1)[-1]}"
        elif outcome == "FAILED":
            run.detail = (
                'failed to execute statement: ERROR: relation "employee" already exists (SQLSTATE 42P07)'
            )
        else:
            run.detail = "task run was canceled"

    def rpc_RolloutService_GetRollout(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = m.get("name", "")
        if name not in self.rollouts:
            raise RpcError("not_found", f'rollout "{name}" not found')
        self._tick(name)
        return self._rollout_json(name)

    def _stage(self, name: str) -> Stage:
        rollout = name.split("/stages/", 1)[0]
        for stage in self.rollouts.get(rollout, []):
            if stage.name == name:
                return stage
        raise RpcError("not_found", f'stage "{name}" not found')

    def _run_tasks(self, stage: Stage, names: list[str]) -> None:
        for name in names:
            task = next((t for t in stage.tasks if t.name == name), None)
            if task is None:
                raise RpcError("invalid_argument", f'task "{name}" is not in stage "{stage.name}"')
            if task.status == "SKIPPED":
                raise RpcError("failed_precondition", f'task "{name}" is skipped')
            if any(
                r.task == name and r.status in ("PENDING", "AVAILABLE", "RUNNING", "DONE")
                for r in self.task_runs.values()
            ):
                continue  # idempotent since 3.13
            run = TaskRun(
                name=f"{name}/taskRuns/{self._next_id()}", task=name, create_time=_now(), update_time=_now()
            )
            self.task_runs[run.name] = run
            task.status = "PENDING"
            self.started_tasks.append(name)

    def rpc_RolloutService_BatchRunTasks(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        stage = self._stage(m.get("parent", ""))
        tasks = m.get("tasks") or []
        if not tasks:
            raise RpcError("invalid_argument", "tasks cannot be empty")
        self._run_tasks(stage, list(tasks))
        return {}

    def rpc_RolloutService_ListTaskRuns(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        parent = m.get("parent", "")
        pattern = re.escape(parent).replace(r"/\-", "/[^/]+") + "/taskRuns/"
        runs = [r.as_json() for r in self.task_runs.values() if re.match(pattern, r.name)]
        return {"taskRuns": runs}

    def rpc_RolloutService_BatchCancelTaskRuns(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        parent = m.get("parent", "")
        stage = self._stage(parent.rsplit("/tasks/", 1)[0])
        for name in m.get("taskRuns") or []:
            run = self.task_runs.get(name)
            if run is None or not name.startswith(stage.name + "/"):
                raise RpcError("not_found", f'task run "{name}" not found')
            if run.status in ("PENDING", "AVAILABLE", "RUNNING"):
                run.status = "CANCELED"
                run.detail = "canceled by user"
                run.update_time = _now()
                for task in stage.tasks:
                    if task.name == run.task:
                        task.status = "CANCELED"
        return {}

    def rpc_DatabaseService_SyncDatabase(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db = self._database(m.get("name", ""))
        self.synced[db] = self.live[db]
        return {}

    def rpc_DatabaseService_DiffSchema(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db = self._database(m.get("name", ""))
        if "schema" not in m:
            raise RpcError("invalid_argument", "schema is required")
        desired, current = _statements(m["schema"]), _statements(self.synced[db])
        lines = [f"{s};" for s in desired if s not in current]
        lines += [f"-- not in the desired state, would be dropped: {s};" for s in current if s not in desired]
        return {"diff": "\n".join(lines) + ("\n" if lines else "")} if lines else {}

    def rpc_DatabaseService_GetDatabase(self, m: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db = self._database(m.get("name", ""))
        out = {
            "name": db,
            "project": self.project,
            "effectiveEnvironment": f"environments/{self.databases[db]}",
            "syncStatus": "OK",
            "state": "ACTIVE",
        }
        if db in self.db_release:
            out["release"] = self.db_release[db]
        return out
