"""GitHub reporting: one sticky pull-request comment (updated in place) and a commit status.

The comment is found by an HTML marker in its body through the issue-comments list
(all pages), then edited with PATCH, or created with POST when there is none. Errors
name the call and the HTTP status; the token never appears in them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from schema_pipeline.errors import SchemaPipelineError

MARKER = "<!-- schema-pipeline-review -->"
DEFAULT_API_URL = "https://api.github.com"
DEFAULT_CONTEXT = "schema-pipeline/review"
COMMIT_STATES = ("error", "failure", "pending", "success")
MAX_COMMENT_CHARS = 65536  # GitHub's issue-comment body limit
_COMMENT_BUDGET = 65000  # leave room for the marker and the truncation note
_MAX_DESCRIPTION = 140  # commit status description limit
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_PULL_REF_RE = re.compile(r"^refs/pull/(\d+)/(?:merge|head)$")


class GitHubError(SchemaPipelineError):
    """A GitHub API call failed; the message names the call and the HTTP status."""

    def __init__(self, message: str, status_code: int | None = None):
        self.status_code = status_code
        super().__init__(message)


@dataclass(frozen=True)
class CommentResult:
    """What `upsert_sticky_comment` did: "created" or "updated", and the comment."""

    action: str
    comment_id: int
    html_url: str


class GitHubReporter:
    """Posts review results to one repository ("owner/name") with a token."""

    def __init__(
        self,
        token: str,
        repo: str,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 15.0,
        max_retries: int = 2,
        backoff: float = 1.0,
        marker: str = MARKER,
    ):
        if not token:
            raise GitHubError("GitHub token is empty")
        if not _REPO_RE.match(repo or ""):
            raise GitHubError(f"GitHub repository must be 'owner/name', got {repo!r}")
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self.marker = marker
        self._token = token
        self._max_retries = max(0, max_retries)
        self._backoff = max(0.0, backoff)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "schema-pipeline",
            },
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHubReporter | None:
        """From GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_API_URL; None when token or repo is unset."""
        env = os.environ if env is None else env
        token, repo = env.get("GITHUB_TOKEN", ""), env.get("GITHUB_REPOSITORY", "")
        if not token or not repo:
            return None
        return cls(token, repo, env.get("GITHUB_API_URL") or DEFAULT_API_URL)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitHubReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public calls ----------------------------------------------------------------------

    def upsert_sticky_comment(self, pr_number: int, body: str) -> CommentResult:
        """Create or update (in place) our single review comment on pull request `pr_number`."""
        text = self._with_marker(body)
        existing = self._find_sticky_comment(pr_number)
        if existing is not None:
            path = f"/repos/{self.repo}/issues/comments/{existing}"
            try:
                data = self._request("PATCH", path, json={"body": text})
                return CommentResult("updated", int(data["id"]), str(data.get("html_url", "")))
            except GitHubError as e:
                if e.status_code != 404:  # deleted since we listed it: create a new one
                    raise
        data = self._request(
            "POST", f"/repos/{self.repo}/issues/{int(pr_number)}/comments", json={"body": text}
        )
        return CommentResult("created", int(data["id"]), str(data.get("html_url", "")))

    def open_pull_request_for(self, branch: str) -> int | None:
        """Number of the open pull request whose head is `branch` of this repository, if any.

        For callers that know a branch but not the PR (the Dagster sensor reviewing branch heads)."""
        owner = self.repo.split("/", 1)[0]
        query = urlencode({"head": f"{owner}:{branch}", "state": "open", "per_page": 1})
        data = self._request("GET", f"/repos/{self.repo}/pulls?{query}")
        if not isinstance(data, list):
            raise GitHubError(f"GitHub GET /repos/{self.repo}/pulls: unexpected response shape")
        return int(data[0]["number"]) if data and isinstance(data[0], dict) and "number" in data[0] else None

    def set_commit_status(
        self,
        sha: str,
        state: str,
        description: str,
        context: str = DEFAULT_CONTEXT,
        target_url: str | None = None,
    ) -> dict[str, Any]:
        """Post a commit status (state: error | failure | pending | success) for `sha`."""
        if state not in COMMIT_STATES:
            raise GitHubError(f"commit status state must be one of {', '.join(COMMIT_STATES)}, got {state!r}")
        if not re.fullmatch(r"[0-9a-fA-F]{4,64}", sha or ""):
            raise GitHubError(f"not a commit SHA: {sha!r}")
        payload: dict[str, Any] = {
            "state": state,
            "description": _clip(description, _MAX_DESCRIPTION),
            "context": context,
        }
        if target_url:
            payload["target_url"] = target_url
        return self._request("POST", f"/repos/{self.repo}/statuses/{sha}", json=payload)

    # -- helpers ---------------------------------------------------------------------------

    def _with_marker(self, body: str) -> str:
        if len(body) > _COMMENT_BUDGET:
            body = body[:_COMMENT_BUDGET].rsplit("\n", 1)[0] + (
                "\n\n_… truncated: the full report is in the job summary / SARIF upload._"
            )
        body = body.replace(self.marker, "").lstrip("\n") if self.marker in body else body
        return f"{self.marker}\n{body}"  # at the very start: a reply quoting it is not ours

    def _find_sticky_comment(self, pr_number: int) -> int | None:
        """Id of the first comment that starts with our marker, looking through every page."""
        url: str | None = f"{self.api_url}/repos/{self.repo}/issues/{int(pr_number)}/comments?per_page=100"
        pages = 0
        while url and pages < 100:
            pages += 1
            response = self._send("GET", url, None)
            data = _json(response, "GET issue comments")
            if not isinstance(data, list):
                raise GitHubError(f"GitHub GET issue comments of #{pr_number}: unexpected response shape")
            for comment in data:
                if isinstance(comment, dict) and (comment.get("body") or "").lstrip().startswith(self.marker):
                    return int(comment["id"])
            url = _next_link(response.headers.get("Link", ""))
        return None

    def _request(self, method: str, path: str, json: Any = None) -> Any:
        response = self._send(method, self.api_url + path, json)
        return _json(response, f"{method} {path.split('?', 1)[0]}")

    def _send(self, method: str, url: str, payload: Any) -> httpx.Response:
        """One call with bounded retries on 5xx, 429 and transport errors."""
        call = f"{method} {_path_of(url, self.api_url)}"
        for attempt in range(self._max_retries + 1):
            last = attempt == self._max_retries
            try:
                response = self._client.request(method, url, json=payload)
            except httpx.TransportError as e:
                if last:
                    raise GitHubError(
                        self._redact(f"GitHub {call} failed: {type(e).__name__}: {e}")
                    ) from None
                self._sleep(attempt, None)
                continue
            if response.status_code < 400:
                return response
            if (response.status_code >= 500 or response.status_code == 429) and not last:
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            raise GitHubError(
                self._redact(f"GitHub {call} failed: HTTP {response.status_code}{_gh_message(response)}"),
                response.status_code,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self._backoff * (2**attempt)
        if retry_after and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        time.sleep(min(delay, 30.0))

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def pr_number_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """The pull-request number in GitHub Actions: from the event payload, else `refs/pull/N/merge`."""
    env = os.environ if env is None else env
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and os.path.isfile(event_path):
        try:
            with open(event_path, encoding="utf-8") as fh:
                event = json.load(fh)
            number = (event.get("pull_request") or {}).get("number") or event.get("number")
            if isinstance(number, int):
                return number
        except (OSError, ValueError, AttributeError):
            pass
    m = _PULL_REF_RE.match(env.get("GITHUB_REF", ""))
    return int(m.group(1)) if m else None


def head_sha_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The commit to put a status on: the PR head (not the merge commit), else GITHUB_SHA."""
    env = os.environ if env is None else env
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and os.path.isfile(event_path):
        try:
            with open(event_path, encoding="utf-8") as fh:
                sha = ((json.load(fh).get("pull_request") or {}).get("head") or {}).get("sha")
            if isinstance(sha, str) and sha:
                return sha
        except (OSError, ValueError, AttributeError):
            pass
    return env.get("GITHUB_SHA") or None


def commit_status_for(errors: int, warnings: int, infos: int = 0) -> tuple[str, str]:
    """(state, description) for a review: failure when there are blocking (ERROR) findings."""
    parts = [
        f"{errors} error{'s' if errors != 1 else ''}",
        f"{warnings} warning{'s' if warnings != 1 else ''}",
    ]
    if infos:
        parts.append(f"{infos} info")
    return ("failure" if errors else "success"), "Schema review: " + ", ".join(parts)


def state_for_exit_code(code: int) -> str:
    """Commit-status state for a `schema-pipeline review` exit code (0 ok, 2 ERROR findings, else error)."""
    return {0: "success", 2: "failure"}.get(code, "error")


def main(argv: list[str] | None = None) -> int:
    """`python -m schema_pipeline.review.github comment FILE | status ...` for CI steps.

    Reads GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL and the event payload like Actions provides.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m schema_pipeline.review.github", description="Post the schema review to GitHub."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("comment", help="create or update the sticky review comment on a pull request")
    p.add_argument(
        "file", help="Markdown body (e.g. from `schema-pipeline review --format markdown`); - for stdin"
    )
    p.add_argument("--pr", type=int, help="pull-request number (default: from the Actions event)")
    p = sub.add_parser("status", help="set the commit status")
    p.add_argument("--sha", help="commit (default: the pull request's head, else GITHUB_SHA)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--state", choices=COMMIT_STATES)
    group.add_argument(
        "--exit-code", type=int, help="derive the state from `schema-pipeline review`'s exit code"
    )
    p.add_argument("--description", default="", help="short text (≤ 140 characters)")
    p.add_argument("--context", default=DEFAULT_CONTEXT)
    p.add_argument("--target-url")
    args = parser.parse_args(argv)
    try:
        reporter = GitHubReporter.from_env()
        if reporter is None:
            raise GitHubError("GITHUB_TOKEN and GITHUB_REPOSITORY must be set")
        with reporter:
            if args.command == "comment":
                number = args.pr or pr_number_from_env()
                if number is None:
                    raise GitHubError("no pull request: pass --pr or run on a pull_request event")
                body = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
                result = reporter.upsert_sticky_comment(number, body)
                print(f"{result.action} comment {result.html_url or result.comment_id}")
            else:
                sha = args.sha or head_sha_from_env()
                if not sha:
                    raise GitHubError("no commit: pass --sha or set GITHUB_SHA")
                state = args.state or state_for_exit_code(args.exit_code)
                description = (
                    args.description
                    or {
                        "success": "Schema review passed",
                        "failure": "Schema review found ERROR findings",
                        "pending": "Schema review running",
                        "error": "Schema review could not run",
                    }[state]
                )
                reporter.set_commit_status(sha, state, description, args.context, args.target_url)
                print(f"status {state} on {sha[:12]}")
    except (GitHubError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _json(response: httpx.Response, call: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GitHubError(f"GitHub {call}: response is not JSON (HTTP {response.status_code})") from None


def _gh_message(response: httpx.Response) -> str:
    """GitHub's error message (and validation details), short."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    msg = str(data.get("message") or "").strip()
    details = [
        str(e.get("message") or e.get("code") or "") for e in data.get("errors") or [] if isinstance(e, dict)
    ]
    details = [d for d in details if d]
    if details:
        msg = f"{msg} ({'; '.join(details)})"
    return f": {_clip(msg, 300)}" if msg else ""


def _next_link(link_header: str) -> str | None:
    """The rel="next" URL of a GitHub Link header."""
    for part in link_header.split(","):
        m = re.match(r"\s*<([^>]+)>\s*;(.*)", part)
        if m and re.search(r'rel="?next"?', m.group(2)):
            return m.group(1)
    return None


def _path_of(url: str, api_url: str) -> str:
    path = url[len(api_url) :] if url.startswith(api_url) else httpx.URL(url).path
    return path.split("?", 1)[0]


def _clip(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    raise SystemExit(main())
