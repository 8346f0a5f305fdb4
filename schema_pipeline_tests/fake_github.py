"""A local HTTP server speaking the GitHub REST endpoints the reporter uses.

Endpoints (JSON shapes as documented for REST API version 2022-11-28):

- ``GET  /repos/{owner}/{repo}/issues/{number}/comments`` (``per_page`` ≤ 100, ``page``;
  ``Link`` header with ``rel="next"``/``rel="last"``);
- ``POST /repos/{owner}/{repo}/issues/{number}/comments`` → 201;
- ``PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`` → 200;
- ``POST /repos/{owner}/{repo}/statuses/{sha}`` → 201;
- ``GET  /repos/{owner}/{repo}/pulls?head=owner:branch&state=open`` (pulls seeded with `add_pull`).

Every request needs ``Authorization: Bearer <token>`` (or ``token <token>``), else 401
``Bad credentials``. Unknown repositories give 404, invalid input 422 ``Validation Failed``.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DOCS = "https://docs.github.com/rest"
BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
HUMAN = {"login": "octocat", "id": 583231, "type": "User"}
STATES = {"error", "failure", "pending", "success"}
MAX_BODY = 65536


class FakeGitHub:
    """Context manager running the fake API for one repository; `api_url` is its root."""

    def __init__(self, token: str = "ghs_fake_token_0123456789", repo: str = "acme/schemas"):
        self.token = token
        self.repo = repo
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.fail_next: list[int] = []  # HTTP statuses to answer the next requests with
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def add_comment(self, number: int, body: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
        """Seed a comment on issue/PR `number` (as another user by default)."""
        with self._lock:
            return self._create_comment(number, body, user or HUMAN)

    def add_pull(self, number: int, branch: str, sha: str, state: str = "open") -> None:
        """Seed a pull request from `branch` (of this repository) at head `sha`."""
        owner = self.repo.split("/")[0]
        self.pulls.append(
            {
                "url": f"{self.api_url}/repos/{self.repo}/pulls/{number}",
                "id": 90000 + number,
                "number": number,
                "state": state,
                "title": f"Change {branch}",
                "user": dict(HUMAN),
                "head": {"label": f"{owner}:{branch}", "ref": branch, "sha": sha},
                "base": {"label": f"{owner}:main", "ref": "main", "sha": "0" * 40},
                "html_url": f"https://github.com/{self.repo}/pull/{number}",
            }
        )

    def _create_comment(self, number: int, body: str, user: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        cid = self._next_id
        now = _now()
        base = f"{self.api_url}/repos/{self.repo}"
        comment = {
            "id": cid,
            "node_id": f"IC_kw{cid}",
            "url": f"{base}/issues/comments/{cid}",
            "html_url": f"https://github.com/{self.repo}/pull/{number}#issuecomment-{cid}",
            "body": body,
            "user": dict(user),
            "created_at": now,
            "updated_at": now,
            "issue_url": f"{base}/issues/{number}",
            "author_association": "NONE",
        }
        self.comments.setdefault(number, []).append(comment)
        return comment

    def find_comment(self, cid: int) -> dict[str, Any] | None:
        for comments in self.comments.values():
            for c in comments:
                if c["id"] == cid:
                    return c
        return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    repo_re = re.escape(fake.repo)
    list_re = re.compile(rf"^/repos/{repo_re}/issues/(\d+)/comments$")
    edit_re = re.compile(rf"^/repos/{repo_re}/issues/comments/(\d+)$")
    pulls_re = re.compile(rf"^/repos/{repo_re}/pulls$")
    status_re = re.compile(rf"^/repos/{repo_re}/statuses/([0-9a-fA-F]{{4,40}})$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
            payload: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
            if errors:
                payload["errors"] = errors
            self._send(status, payload)

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() not in ("bearer", "token") or token != fake.token:
                self._error(401, "Bad credentials")
                return False
            return True

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                return None

        def _start(self, method: str) -> tuple[str, dict[str, list[str]]] | None:
            parts = urlsplit(self.path)
            with fake._lock:
                fake.requests.append((method, self.path))
                forced = fake.fail_next.pop(0) if fake.fail_next else None
            if forced is not None:
                if method != "GET":
                    self._body()
                self._error(forced, "Server Error" if forced >= 500 else "Forced failure")
                return None
            if not self._authorized():
                return None
            return parts.path, parse_qs(parts.query)

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            started = self._start("GET")
            if started is None:
                return
            path, query = started
            if pulls_re.match(path):
                head = (query.get("head") or [""])[0]
                state = (query.get("state") or ["open"])[0]
                with fake._lock:
                    found = [
                        p
                        for p in fake.pulls
                        if (not head or p["head"]["label"] == head) and state in ("all", p["state"])
                    ]
                self._send(200, found)
                return
            m = list_re.match(path)
            if not m:
                self._error(404, "Not Found")
                return
            number = int(m.group(1))
            per_page = max(1, min(100, int((query.get("per_page") or ["30"])[0])))
            page = max(1, int((query.get("page") or ["1"])[0]))
            with fake._lock:
                comments = list(fake.comments.get(number, []))
            last = max(1, -(-len(comments) // per_page))
            chunk = comments[(page - 1) * per_page : page * per_page]
            links = []
            url = f"{fake.api_url}{path}?per_page={per_page}&page="
            if page < last:
                links.append(f'<{url}{page + 1}>; rel="next"')
                links.append(f'<{url}{last}>; rel="last"')
            if page > 1:
                links.append(f'<{url}1>; rel="first"')
                links.append(f'<{url}{page - 1}>; rel="prev"')
            self._send(200, chunk, {"Link": ", ".join(links)} if links else None)

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            started = self._start("POST")
            if started is None:
                return
            path, _ = started
            body = self._body()
            if (m := list_re.match(path)) is not None:
                text = body.get("body") if isinstance(body, dict) else None
                if not self._valid_body(text):
                    return
                with fake._lock:
                    comment = fake._create_comment(int(m.group(1)), text, BOT)
                self._send(201, comment, {"Location": comment["url"]})
            elif (m := status_re.match(path)) is not None:
                self._status(m.group(1), body)
            else:
                self._error(404, "Not Found")

        def do_PATCH(self) -> None:  # noqa: N802 - stdlib naming
            started = self._start("PATCH")
            if started is None:
                return
            path, _ = started
            body = self._body()
            m = edit_re.match(path)
            if not m:
                self._error(404, "Not Found")
                return
            text = body.get("body") if isinstance(body, dict) else None
            if not self._valid_body(text):
                return
            with fake._lock:
                comment = fake.find_comment(int(m.group(1)))
                if comment is not None:
                    comment["body"] = text
                    comment["updated_at"] = _now()
            if comment is None:
                self._error(404, "Not Found")
            else:
                self._send(200, comment)

        def _valid_body(self, text: Any) -> bool:
            if not isinstance(text, str):
                self._error(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
                return False
            if len(text) > MAX_BODY:
                self._error(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "IssueComment",
                            "code": "custom",
                            "field": "body",
                            "message": f"body is too long (maximum is {MAX_BODY} characters)",
                        }
                    ],
                )
                return False
            return True

        def _status(self, sha: str, body: Any) -> None:
            if not isinstance(body, dict) or body.get("state") not in STATES:
                self._error(
                    422, "Validation Failed", [{"resource": "Status", "field": "state", "code": "invalid"}]
                )
                return
            description = body.get("description")
            if description is not None and len(description) > 140:
                self._error(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "Status",
                            "field": "description",
                            "code": "custom",
                            "message": "description is too long",
                        }
                    ],
                )
                return
            with fake._lock:
                fake._next_id += 1
                now = _now()
                status = {
                    "url": f"{fake.api_url}/repos/{fake.repo}/statuses/{sha}",
                    "id": fake._next_id,
                    "node_id": f"SC_kw{fake._next_id}",
                    "state": body["state"],
                    "description": description,
                    "target_url": body.get("target_url"),
                    "context": body.get("context") or "default",
                    "created_at": now,
                    "updated_at": now,
                    "creator": dict(BOT),
                }
                fake.statuses.setdefault(sha, []).append(status)
            self._send(201, status)

    return Handler
