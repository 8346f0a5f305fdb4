"""A local HTTP server speaking the OpenAI chat-completions and Anthropic Messages wire formats.

It answers `POST /v1/chat/completions` (OpenAI-compatible: OpenAI, Azure, Ollama, vLLM) and
`POST /v1/messages` (Anthropic) on 127.0.0.1 with an ephemeral port. Modes:

- ``good``: the configured `findings` as structured output (OpenAI `message.content` JSON,
  Anthropic forced `tool_use` block);
- ``malformed``: prose that is not JSON (and, for Anthropic, no tool call);
- ``hallucinated``: the configured findings plus one whose evidence is in no file;
- ``fenced``: the findings as a ```json fence inside prose (no structured output; Anthropic: a
  text block instead of the tool call), as weaker models answer;
- ``slow``: sleeps `delay` seconds before answering (client timeouts);
- ``error_then_good``: HTTP 500 for the first `failures` requests, then ``good``;
- ``always_500``: HTTP 500 on every request (`fail_from=N`: from the N-th request on, any mode);
- ``unauthorized``: HTTP 401 whose message echoes the key it received (as some servers do).

Requests are checked like the real APIs would: the key header, and the structured-output
request fields (`response_format` json_schema strict / forced `tool_choice`). Every request
is recorded in `requests` as (path, headers, parsed JSON body).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HALLUCINATED = {
    "rule": "",
    "severity": "error",
    "file": "",
    "line": 1,
    "evidence": "CREATE TABLE customers_that_do_not_exist (id serial)",
    "message": "Made up by the model.",
}


class FakeLLM:
    """Context manager running the fake provider; `base_url` is the OpenAI-style `/v1` root."""

    def __init__(self, api_key: str = "sk-test-secret-key-123456", mode: str = "good"):
        self.api_key = api_key
        self.mode = mode
        self.findings: list[dict[str, Any]] = []
        self.delay = 2.0
        self.failures = 1
        self.fail_from: int | None = None  # every request from this one on (1-based) gets HTTP 500
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- answers -------------------------------------------------------------------------

    def answer_findings(self) -> list[dict[str, Any]]:
        found = [dict(f) if isinstance(f, dict) else f for f in self.findings]
        if self.mode == "hallucinated":
            fake = dict(HALLUCINATED)
            if found:
                fake["rule"] = found[0]["rule"]
                fake["file"] = found[0]["file"]
            found.append(fake)
        return found


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            path = self.path.split("?", 1)[0]
            with fake._lock:
                fake.requests.append((self.path, dict(self.headers.items()), body))
                count = len(fake.requests)
            if path.endswith("/chat/completions"):
                self._openai(body, count)
            elif path.endswith("/messages"):
                self._anthropic(body, count)
            else:
                self._send(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

        # -- common behaviour ------------------------------------------------------------

        def _misbehave(self, count: int, error_body: dict[str, Any]) -> bool:
            """Apply the transport modes; True when a response has already been sent."""
            mode = fake.mode
            if mode == "slow":
                time.sleep(fake.delay)
            late = fake.fail_from is not None and count >= fake.fail_from
            if late or mode == "always_500" or (mode == "error_then_good" and count <= fake.failures):
                self._send(500, error_body)
                return True
            return False

        # -- OpenAI ----------------------------------------------------------------------

        def _openai(self, body: Any, count: int) -> None:
            auth = self.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ").strip() if auth else (self.headers.get("api-key") or "")
            if fake.mode == "unauthorized" or key != fake.api_key:
                self._send(
                    401,
                    {
                        "error": {
                            "message": f"Incorrect API key provided: {key}.",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                )
                return
            if self._misbehave(
                count, {"error": {"message": "The server had an error", "type": "server_error"}}
            ):
                return
            fmt = (body or {}).get("response_format") or {}
            schema = fmt.get("json_schema") or {}
            if fmt.get("type") != "json_schema" or schema.get("strict") is not True or "schema" not in schema:
                self._send(
                    400,
                    {
                        "error": {
                            "message": "response_format json_schema (strict) required",
                            "type": "invalid_request_error",
                        }
                    },
                )
                return
            if fake.mode == "malformed":
                content = 'Sure! Here are the findings:\n```json\n{"findings": [ {"rule": oops\n```'
            elif fake.mode == "fenced":
                content = (
                    "Here you go:\n```json\n" + json.dumps({"findings": fake.answer_findings()}) + "\n```\n"
                )
            else:
                content = json.dumps({"findings": fake.answer_findings()})
            self._send(
                200,
                {
                    "id": f"chatcmpl-{count}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", ""),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                },
            )

        # -- Anthropic -------------------------------------------------------------------

        def _anthropic(self, body: Any, count: int) -> None:
            key = self.headers.get("x-api-key", "")
            if fake.mode == "unauthorized" or key != fake.api_key:
                self._send(
                    401,
                    {
                        "type": "error",
                        "error": {"type": "authentication_error", "message": f"invalid x-api-key {key}"},
                    },
                )
                return
            if not self.headers.get("anthropic-version"):
                self._send(
                    400,
                    {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": "anthropic-version header is required",
                        },
                    },
                )
                return
            if self._misbehave(
                count, {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
            ):
                return
            body = body or {}
            choice = body.get("tool_choice") or {}
            tools = {t.get("name"): t for t in body.get("tools") or []}
            if choice.get("type") != "tool" or choice.get("name") not in tools or "max_tokens" not in body:
                self._send(
                    400,
                    {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": "forced tool_choice and max_tokens required",
                        },
                    },
                )
                return
            if fake.mode == "malformed":
                content = [
                    {"type": "text", "text": "I reviewed the files and they look mostly fine, except {oops"}
                ]
                stop = "end_turn"
            elif fake.mode == "fenced":
                text = "Findings:\n```json\n" + json.dumps(fake.answer_findings()) + "\n```"
                content = [{"type": "text", "text": text}]
                stop = "end_turn"
            else:
                content = [
                    {
                        "type": "tool_use",
                        "id": f"toolu_{count:04d}",
                        "name": choice["name"],
                        "input": {"findings": fake.answer_findings()},
                    }
                ]
                stop = "tool_use"
            self._send(
                200,
                {
                    "id": f"msg_{count:04d}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", ""),
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 100, "output_tokens": 20},
                },
            )

    return Handler
