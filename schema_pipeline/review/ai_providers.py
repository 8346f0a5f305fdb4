"""Transport for the AI review: one structured-output request to an OpenAI-compatible
chat-completions endpoint or Anthropic's Messages API, with bounded retries, and defensive
parsing of the answer into a list of raw findings."""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from schema_pipeline.review.ai import AIReviewConfig

ANTHROPIC_VERSION = "2023-06-01"
TOOL_NAME = "report_findings"
_MAX_RETRY_SLEEP = 30.0


class AIFailure(Exception):
    """A reason the AI review could not produce a result (becomes status "failed: ...")."""


def request_findings(
    config: AIReviewConfig, secret: str, system: str, prompt: str, schema: dict[str, Any]
) -> list[Any]:
    """POST the request (structured output) with bounded retries; the raw list of findings."""
    if config.provider == "anthropic":
        headers = {"anthropic-version": config.api_version or ANTHROPIC_VERSION}
        if secret:
            headers["x-api-key"] = secret
        body: dict[str, Any] = {
            "model": config.model,
            "max_tokens": config.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
            "tools": [
                {
                    "name": TOOL_NAME,
                    "description": "Report the standards violations found (may be empty).",
                    "input_schema": schema,
                }
            ],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }
    else:
        headers = {}
        if secret:
            if _is_azure(config):
                headers["api-key"] = secret
            else:
                headers["Authorization"] = f"Bearer {secret}"
        body = {
            "model": config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "sql_review_findings", "strict": True, "schema": schema},
            },
        }
    if config.temperature is not None:
        body["temperature"] = config.temperature
    data = _post(config, headers, body, secret)
    return _parse_anthropic(data) if config.provider == "anthropic" else _parse_openai(data)


def _is_azure(config: AIReviewConfig) -> bool:
    host = httpx.URL(config.endpoint).host or ""
    return host.endswith(".azure.com") or host.endswith(".azure-api.net")


def _post(config: AIReviewConfig, headers: dict[str, str], body: dict[str, Any], secret: str) -> Any:
    attempts = config.max_retries + 1
    last_problem = ""
    with httpx.Client(timeout=httpx.Timeout(config.timeout), follow_redirects=False) as client:
        for attempt in range(attempts):
            retry_after: str | None = None
            try:
                response = client.post(
                    config.endpoint, json=body, headers={"Content-Type": "application/json", **headers}
                )
            except httpx.TimeoutException:
                last_problem = f"timed out after {config.timeout:g}s"
            except httpx.TransportError as e:
                last_problem = f"connection error ({type(e).__name__})"
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise AIFailure(
                            f"malformed response: HTTP {response.status_code} body is not JSON"
                        ) from None
                detail = _provider_message(response, secret)
                if response.status_code != 429 and response.status_code < 500:
                    raise AIFailure(f"HTTP {response.status_code} from {config.provider}{detail}")
                last_problem = f"HTTP {response.status_code}{detail}"
                retry_after = response.headers.get("retry-after")
            if attempt + 1 < attempts:
                time.sleep(_delay(config.backoff, attempt, retry_after))
    raise AIFailure(f"{last_problem} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})")


def _delay(backoff: float, attempt: int, retry_after: str | None) -> float:
    delay = backoff * (2**attempt)
    if retry_after:
        with contextlib.suppress(ValueError):
            delay = max(delay, float(retry_after))
    return min(max(delay, 0.0), _MAX_RETRY_SLEEP)


def _provider_message(response: httpx.Response, secret: str) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    err = data.get("error") if isinstance(data, dict) else None
    msg = err.get("message") if isinstance(err, dict) else (err if isinstance(err, str) else None)
    return f": {clip(redact(str(msg), secret), 200)}" if msg else ""


def _parse_openai(data: Any) -> list[Any]:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise AIFailure("malformed response: no choices[0].message") from None
    if isinstance(message, dict) and message.get("refusal"):
        raise AIFailure(f"model refused: {clip(str(message['refusal']), 200)}")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        if choice.get("finish_reason") == "length":
            raise AIFailure("response truncated (max tokens reached)")
        raise AIFailure("malformed response: empty message content")
    try:
        return _findings_of(_loads(content))
    except AIFailure:
        if choice.get("finish_reason") == "length":
            raise AIFailure("response truncated (max tokens reached)") from None
        raise


def _parse_anthropic(data: Any) -> list[Any]:
    blocks = data.get("content") if isinstance(data, dict) else None
    if not isinstance(blocks, list):
        raise AIFailure("malformed response: no content blocks")
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name") == TOOL_NAME:
            payload = block.get("input")
            if isinstance(payload, str):
                payload = _loads(payload)
            return _findings_of(payload)
    text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    if data.get("stop_reason") == "max_tokens":
        raise AIFailure("response truncated (max tokens reached)")
    if not text.strip():
        raise AIFailure(f"malformed response: no {TOOL_NAME} tool call")
    return _findings_of(_loads(text))


def _loads(text: str) -> Any:
    """JSON from a model's text: strips a ``` fence, else takes the outermost object/array."""
    cleaned = text.strip()
    if m := re.search(r"```(?:json)?\s*\n?(.*?)```", cleaned, re.S):
        cleaned = m.group(1).strip()
    try:
        return json.loads(cleaned)
    except ValueError:
        pass
    for opener, closer in (("{", "}"), ("[", "]")):
        i, j = cleaned.find(opener), cleaned.rfind(closer)
        if 0 <= i < j:
            try:
                return json.loads(cleaned[i : j + 1])
            except ValueError:
                continue
    raise AIFailure("malformed response: not valid JSON")


def _findings_of(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and isinstance(payload.get("findings"), list):
        return payload["findings"]
    if isinstance(payload, list):
        return payload
    raise AIFailure("malformed response: expected an object with a findings array")


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
