"""AI review: the state files and each environment's migration, checked by an LLM against the
team's natural-language standards file (default `.bytebase/sql-review.md`).

Opt-in. Providers: "openai" (any OpenAI-compatible chat-completions endpoint: OpenAI, Azure
OpenAI, Ollama, vLLM, ...) with a strict `json_schema` response format, or "anthropic"
(Messages API) with a forced tool call. Every finding must quote its evidence; a finding whose
quote is not in the cited file within ±2 lines of the cited line is dropped and counted.
Results are cached by content hash. A provider failure is a status ("failed: ..."), never a
silent pass, and the API key (read from the environment variable whose name is configured)
never appears in any status, error or cache file.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schema_pipeline.errors import ConfigError
from schema_pipeline.plan.model import Step
from schema_pipeline.review.ai_providers import TOOL_NAME, request_findings
from schema_pipeline.review.ai_providers import AIFailure as _Failure
from schema_pipeline.review.ai_providers import clip as _clip
from schema_pipeline.review.ai_providers import redact as _redact
from schema_pipeline.review.finding import Finding, Severity
from schema_pipeline.state.model import DesiredState

PROVIDERS = ("openai", "anthropic")
DEFAULT_STANDARDS_FILE = ".bytebase/sql-review.md"
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
DEFAULT_KEY_ENVS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
PROMPT_VERSION = "1"
RULE_PREFIX = "ai."
LINE_TOLERANCE = 2
_SEVERITIES = ("error", "warning", "info")
_MIN_EVIDENCE = 4  # non-blank characters; shorter quotes anchor anywhere


# ----------------------------------------------------------------------------------------------
# configuration and result
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AIReviewConfig:
    """How to reach the model. `api_key_env` is the NAME of the variable holding the key.

    `provider=None` means not configured: no call is made. `base_url` defaults to the
    provider's public API (OpenAI: `https://api.openai.com/v1`; Ollama: `http://localhost:11434/v1`).
    For Azure OpenAI set `base_url` to `https://<resource>.openai.azure.com/openai/deployments/<dep>`
    and `api_version`; the key is then sent as `api-key`. `temperature=None` omits it (for
    models that only accept their default). `cache_dir=None` uses the user cache directory.
    """

    provider: str | None = None
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    standards_file: str = DEFAULT_STANDARDS_FILE
    timeout: float = 120.0
    max_retries: int = 2
    blocking: bool = False
    cache_dir: str | None = None
    cache: bool = True
    backoff: float = 1.0
    max_tokens: int = 8192
    temperature: float | None = 0.0
    api_version: str | None = None
    max_findings: int = 50
    max_input_chars: int = 200_000

    @property
    def configured(self) -> bool:
        return bool(self.provider)

    @property
    def key_env(self) -> str | None:
        """The variable the key is read from (provider default when unset; None for keyless OpenAI-compatible)."""
        if self.api_key_env:
            return self.api_key_env
        if self.provider == "anthropic" or (
            self.provider == "openai" and (not self.base_url or "api.openai.com" in self.base_url)
        ):
            return DEFAULT_KEY_ENVS[self.provider]
        return None

    @property
    def endpoint(self) -> str:
        """The URL requests are posted to."""
        base = (self.base_url or DEFAULT_BASE_URLS.get(self.provider or "", "")).rstrip("/")
        if self.provider == "anthropic":
            if base.endswith("/messages"):
                return base
            return base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        if self.api_version and "api-version=" not in url:
            url += ("&" if "?" in url else "?") + f"api-version={self.api_version}"
        return url

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir)
        base = os.environ.get("SCHEMA_PIPELINE_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "schema-pipeline"
        )
        return Path(base) / "ai-review"

    def validate(self) -> None:
        """Raise ConfigError for an unusable configuration (only checked when a provider is set)."""
        if not self.provider:
            return
        if self.provider not in PROVIDERS:
            raise ConfigError(
                f"AI review provider must be one of {', '.join(PROVIDERS)}, got {self.provider!r}"
            )
        if not self.model:
            raise ConfigError("AI review needs a model name (ai.model)")
        if self.api_key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise ConfigError(
                "ai.api_key_env must be the NAME of an environment variable, not the key itself"
            )
        if self.timeout <= 0 or self.max_retries < 0 or self.max_tokens <= 0:
            raise ConfigError("AI review timeout and max_tokens must be positive, max_retries >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AIReviewConfig:
        """From a mapping (e.g. the `review.ai` section of the YAML config); unknown keys are errors."""
        data = dict(data or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if "api_key" in unknown:
            raise ConfigError(
                "ai.api_key is not accepted: put the key in an environment variable and set ai.api_key_env"
            )
        if unknown:
            raise ConfigError(f"unknown AI review settings: {', '.join(unknown)}")
        try:
            for key, kind in _COERCE.items():
                if data.get(key) is not None:
                    data[key] = kind(data[key])
        except (TypeError, ValueError):
            raise ConfigError(f"AI review setting {key} has an invalid value") from None
        if isinstance(data.get("provider"), str):
            data["provider"] = data["provider"].strip().lower() or None
        config = cls(**data)
        config.validate()
        return config

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AIReviewConfig:
        """From SCHEMA_PIPELINE_AI_* variables (PROVIDER, MODEL, BASE_URL, API_KEY_ENV, STANDARDS,
        TIMEOUT, MAX_RETRIES, BLOCKING, CACHE_DIR, API_VERSION); not configured when PROVIDER is unset."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"SCHEMA_PIPELINE_AI_{name}", "").strip()
            return value or None

        data: dict[str, Any] = {"provider": get("PROVIDER"), "model": get("MODEL") or ""}
        for name, key in (
            ("BASE_URL", "base_url"),
            ("API_KEY_ENV", "api_key_env"),
            ("STANDARDS", "standards_file"),
            ("CACHE_DIR", "cache_dir"),
            ("API_VERSION", "api_version"),
        ):
            if get(name):
                data[key] = get(name)
        for name, key in (("TIMEOUT", "timeout"), ("MAX_RETRIES", "max_retries")):
            if get(name):
                data[key] = get(name)
        if get("BLOCKING"):
            data["blocking"] = get("BLOCKING")
        return cls.from_dict(data)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


_COERCE: dict[str, Any] = {
    "timeout": float,
    "max_retries": int,
    "backoff": float,
    "max_tokens": int,
    "temperature": float,
    "max_findings": int,
    "max_input_chars": int,
    "blocking": _bool,
    "cache": _bool,
    "api_version": str,
}


@dataclass
class AIReviewResult:
    """Outcome of one AI review. `status`: "not configured" | "ok" | "cached" | "failed: <reason>"."""

    status: str
    findings: list[Finding] = field(default_factory=list)
    dropped: int = 0
    drop_reasons: list[str] = field(default_factory=list)
    provider: str = ""
    model: str = ""
    cache_key: str = ""
    blocking: bool = False

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "cached")

    @property
    def failed(self) -> bool:
        return self.status.startswith("failed")

    def status_text(self) -> str:
        """The status for reports, without the "AI review:" prefix (`render(..., ai_status=...)`),
        e.g. "3 findings, 1 dropped (evidence not verified) (openai gpt-4o)"."""
        if self.status == "not configured":
            return "not configured"
        who = f"{self.provider} {self.model}".strip()
        if self.failed:
            return f"{self.status} ({who})"
        text = f"{len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}"
        if self.dropped:
            text += f", {self.dropped} dropped (evidence not verified)"
        return f"{text} ({who}{', cached' if self.status == 'cached' else ''})"

    def summary(self) -> str:
        """One line, e.g. "AI review: 3 findings (openai gpt-4o)"."""
        return f"AI review: {self.status_text()}"

    def status_finding(self) -> Finding | None:
        """A finding saying the AI review did not run or failed (None when it ran).

        INFO, except a failed *blocking* review, which is an ERROR: a gate that could not run
        must not pass."""
        if self.ok:
            return None
        return _make_finding(
            rule_id=RULE_PREFIX + "status",
            severity="ERROR" if self.failed and self.blocking else "INFO",
            title="AI review did not run" if not self.failed else "AI review failed",
            message=self.summary(),
            file=None,
            line=None,
            column=None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "provider": self.provider,
            "model": self.model,
            "dropped": self.dropped,
            "drop_reasons": list(self.drop_reasons),
            "findings": [f.to_dict() for f in self.findings],
        }


# ----------------------------------------------------------------------------------------------
# standards file
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandardRule:
    """One rule of the standards file: a stable id, its section and its text."""

    id: str
    section: str
    text: str


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")
_EXPLICIT_ID = re.compile(r"\{#([A-Za-z0-9_.-]+)\}|^\[([A-Za-z0-9_.-]+)\](?!\()\s*")


def parse_standards(text: str) -> list[StandardRule]:
    """Rules of a Markdown standards file: each top-level bullet is one rule.

    The id is an explicit `{#id}` or leading `[ID]` tag, else `<section-slug>-<n>`.
    A file without bullets yields no rules (the model then names the standard freely).
    """
    rules: list[dict[str, str]] = []
    section, counters, indent = "general", {}, None
    for raw in text.splitlines():
        if m := _HEADING.match(raw):
            section, indent = _slug(m.group(1)) or "general", None
            continue
        m = _BULLET.match(raw)
        if m and (indent is None or len(m.group(1)) <= indent):
            indent = len(m.group(1))
            counters[section] = counters.get(section, 0) + 1
            rules.append({"section": section, "n": str(counters[section]), "text": m.group(2).strip()})
        elif rules and raw.strip() and indent is not None and (raw.startswith(" ") or raw.startswith("\t")):
            rules[-1]["text"] += " " + raw.strip()  # continuation or nested bullet
        elif raw.strip():
            indent = None  # a paragraph ends the list
    out: list[StandardRule] = []
    seen: set[str] = set()
    for r in rules:
        text_ = r["text"]
        rid = f"{r['section']}-{r['n']}"
        if em := _EXPLICIT_ID.search(text_):
            rid = em.group(1) or em.group(2)
            text_ = _EXPLICIT_ID.sub("", text_, count=1).strip()
        base, k = rid, 2
        while rid in seen:
            rid, k = f"{base}-{k}", k + 1
        seen.add(rid)
        out.append(StandardRule(rid, r["section"], text_))
    return out


def _slug(text: str) -> str:
    text = re.sub(r"^\s*(?:\d+[.)]|[A-Z][.)])\s*", "", text)  # "1. Table naming" -> "Table naming"
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")


# ----------------------------------------------------------------------------------------------
# documents sent to the model
# ----------------------------------------------------------------------------------------------


@dataclass
class _Doc:
    """A line-numbered text the model may cite: a state file or one environment's migration."""

    path: str
    kind: str  # "state" | "migration"
    text: str
    environment: str | None = None
    step_lines: list[int] = field(default_factory=list)  # 1-based first line of each step
    # per step: where the state declares the object it touches (file, line), or None
    step_anchors: list[tuple[str, int] | None] = field(default_factory=list)
    _norm: tuple[str, list[int]] | None = None

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def numbered(self) -> str:
        return "\n".join(f"{i:04d}| {line}" for i, line in enumerate(self.lines, 1))

    def step_at(self, line: int) -> int | None:
        if not self.step_lines:
            return None
        i = bisect.bisect_right(self.step_lines, line) - 1
        return max(i, 0)

    def locate(self, evidence: str, line: int) -> tuple[int, int] | None:
        """(line, column) of the occurrence of `evidence` nearest `line`, within the tolerance."""
        needle, _ = _normalise(_strip_prefixes(evidence))
        if len(needle.replace(" ", "")) < _MIN_EVIDENCE:
            return None
        if self._norm is None:
            self._norm = _normalise(self.text)
        hay, offsets = self._norm
        line_starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]
        best: tuple[int, int, int] | None = None
        start = hay.find(needle)
        while start != -1:
            first = offsets[start]
            last = offsets[start + len(needle) - 1]
            l1 = bisect.bisect_right(line_starts, first)
            l2 = bisect.bisect_right(line_starts, last)
            distance = 0 if l1 <= line <= l2 else min(abs(line - l1), abs(line - l2))
            if distance <= LINE_TOLERANCE and (best is None or distance < best[0]):
                best = (distance, l1, first - line_starts[l1 - 1] + 1)
            start = hay.find(needle, start + 1)
        return (best[1], best[2]) if best else None


def _normalise(text: str) -> tuple[str, list[int]]:
    """Case-folded text with whitespace runs collapsed to one space, and each char's original offset."""
    out: list[str] = []
    offsets: list[int] = []
    in_space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if not in_space and out:
                out.append(" ")
                offsets.append(i)
            in_space = True
            continue
        in_space = False
        out.append(ch.lower())
        offsets.append(i)
    while out and out[-1] == " ":
        out.pop()
        offsets.pop()
    return "".join(out), offsets


def _strip_prefixes(evidence: str) -> str:
    """Remove `0012| ` line prefixes a model may have copied along with the quote."""
    return "\n".join(re.sub(r"^\s*\d{1,6}\|\s?", "", ln) for ln in evidence.strip().strip("`").split("\n"))


def _state_docs(state: DesiredState) -> list[_Doc]:
    """Each state file's text (from disk; rebuilt from its statements when unreadable)."""
    by_file: dict[str, list[Any]] = {}
    for st in state.statements:
        by_file.setdefault(st.file, []).append(st)
    docs = []
    for path in list(dict.fromkeys([*state.files, *by_file])):
        statements = by_file.get(path, [])
        text = _read_state_file(state.root, path)
        if text is None or not _matches(text, statements):
            text = _rebuild(statements)  # the file is gone or changed since the state was loaded
        docs.append(_Doc(path=path, kind="state", text=text.replace("\r\n", "\n")))
    return docs


def _read_state_file(root: str, path: str) -> str | None:
    for candidate in (Path(path) if os.path.isabs(path) else Path(root) / path, Path(path)):
        try:
            return candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _matches(text: str, statements: list[Any]) -> bool:
    """True when every statement starts at its recorded line and column of `text`."""
    lines = text.replace("\r\n", "\n").split("\n")
    for st in statements:
        first = st.sql.split("\n", 1)[0].rstrip()
        if st.line > len(lines) or not lines[st.line - 1][st.column - 1 :].startswith(first):
            return False
    return True


def _declarations(state: DesiredState) -> dict[str, tuple[str, int]]:
    """Qualified object name -> (file, line) of its CREATE in the state (best effort)."""
    try:
        from schema_pipeline.state.inventory import object_inventory

        objects = object_inventory(state)
    except Exception:  # the inventory is a convenience here; findings then carry no state location
        return {}
    out: dict[str, tuple[str, int]] = {}
    for obj in objects:
        out.setdefault(obj.name, (obj.file, obj.line))
    return out


def _rebuild(statements: list[Any]) -> str:
    """Statements placed back at their lines (and columns), so citations still line up."""
    lines: list[str] = []
    for st in sorted(statements, key=lambda s: (s.line, s.column)):
        while len(lines) < st.line - 1:
            lines.append("")
        parts = st.sql.split("\n")
        if len(lines) >= st.line:  # same line as the previous statement
            prefix = lines[st.line - 1]
            lines[st.line - 1] = (prefix + " ").ljust(st.column - 1) + parts[0]
        else:
            lines.append(" " * (st.column - 1) + parts[0])
        lines.extend(parts[1:])
    return "\n".join(lines) + "\n"


def migration_path(environment: str) -> str:
    """The virtual path of an environment's migration as shown to the model."""
    return f"migration/{environment}.sql"


def _migration_doc(environment: str, steps: list[Step], declared: Mapping[str, tuple[str, int]]) -> _Doc:
    lines = [f"-- migration for environment {environment}: {len(steps)} step(s)"]
    starts: list[int] = []
    for i, step in enumerate(steps, 1):
        lines.append("")
        starts.append(len(lines) + 1)
        hazards = ", ".join(str(h.type) for h in step.hazards)
        lines.append(
            f"-- step {i}: {step.action} {step.object_kind} {step.object_name}"
            + (f" (hazards: {hazards})" if hazards else "")
        )
        sql = step.sql.rstrip()
        lines.extend((sql if sql.endswith(";") else sql + ";").split("\n"))
    return _Doc(
        path=migration_path(environment),
        kind="migration",
        text="\n".join(lines) + "\n",
        environment=environment,
        step_lines=starts,
        step_anchors=[declared.get(step.object_name) for step in steps],
    )


# ----------------------------------------------------------------------------------------------
# prompt and structured-output schema
# ----------------------------------------------------------------------------------------------

SYSTEM_PROMPT = """You review PostgreSQL schema changes against a team's written standards.
You receive the standards (each rule with an id), the desired-state SQL files and, for each
environment, the migration generated from them. Every line is prefixed with its number as `NNNN| `.

Report only violations of the given standards. For each one give: the rule id, a severity
(error for MUST-level rules, warning for SHOULD-level, info otherwise), the file path exactly as
given, the 1-based line number, the evidence as an exact verbatim quote of the offending text
from that line (without the `NNNN| ` prefix, at most 200 characters), and a short message saying
what is wrong and how to fix it. Prefer reporting nothing over speculating: a finding without an
exact quote is discarded. Do not invent rules. Report each problem once, in the state file when it
is visible there; report a migration only for problems that exist only in the migration.
"""


def _known_lines(known: Sequence[Finding]) -> list[str]:
    """The rule engine's findings, one line each, so the model does not repeat them."""
    return sorted({f"- {f.location() or f.environment or '-'}: {f.rule_id}: {f.title}" for f in known})[:200]


def _user_prompt(
    standards: str, rules: list[StandardRule], docs: list[_Doc], max_findings: int, known: list[str]
) -> str:
    parts = ["# Team standards"]
    if rules:
        parts.append("Rules (id: text):")
        parts.extend(f"- {r.id}: {r.text}" for r in rules)
        parts.append("\nFull standards file, for context:")
    parts.append(standards.strip() or "(empty)")
    for kind, title in (("state", "# Desired-state files"), ("migration", "# Generated migrations")):
        selected = [d for d in docs if d.kind == kind]
        if not selected:
            continue
        parts.append("\n" + title)
        for d in selected:
            what = "desired state" if kind == "state" else f"migration for environment {d.environment}"
            parts.append(f"--- file: {d.path} ({what}) ---")
            parts.append(d.numbered())
    if known:
        parts.append("\n# Already reported by the rule engine (do not repeat these)")
        parts.extend(known)
    parts.append(
        f"\nReport at most {max_findings} findings, most important first, "
        f"by calling {TOOL_NAME} / answering with the JSON object."
    )
    return "\n".join(parts)


def findings_schema(rule_ids: list[str], paths: list[str]) -> dict[str, Any]:
    """JSON Schema of the model's answer (strict-mode compatible: all fields required, no extras)."""
    rule: dict[str, Any] = {"type": "string", "description": "id of the standards rule that is violated"}
    if rule_ids:
        rule["enum"] = list(rule_ids)
    file_: dict[str, Any] = {"type": "string", "description": "path of the file, exactly as given"}
    if paths:
        file_["enum"] = list(paths)
    item = {
        "type": "object",
        "additionalProperties": False,
        "required": ["rule", "severity", "file", "line", "evidence", "message"],
        "properties": {
            "rule": rule,
            "severity": {"type": "string", "enum": list(_SEVERITIES)},
            "file": file_,
            "line": {"type": "integer", "description": "1-based line number (the NNNN| prefix)"},
            "evidence": {"type": "string", "description": "exact verbatim quote from that line, no prefix"},
            "message": {"type": "string", "description": "what is wrong and how to fix it"},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["findings"],
        "properties": {"findings": {"type": "array", "items": item}},
    }


# ----------------------------------------------------------------------------------------------
# the review
# ----------------------------------------------------------------------------------------------


def ai_review(
    state: DesiredState,
    migrations: Mapping[str, list[Step]],
    config: AIReviewConfig,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    known: Sequence[Finding] = (),
) -> AIReviewResult:
    """Review `state` and each environment's migration with the configured model.

    `base_dir` resolves a relative standards path (default: the current directory); `env`
    supplies the API-key variable (default: os.environ); `known` are the rule engine's findings,
    listed in the prompt so the model does not repeat them. Never raises for provider problems:
    they come back as status "failed: <reason>".
    """
    if not config.configured:
        return AIReviewResult(status="not configured")
    result = AIReviewResult(
        status="failed: not run", provider=str(config.provider), model=config.model, blocking=config.blocking
    )
    secret = ""
    try:
        config.validate()
        key_env = config.key_env
        secret = ((os.environ if env is None else env).get(key_env, "") if key_env else "").strip()
        if key_env and not secret:
            raise _Failure(f"API key variable {key_env} is not set")
        standards = _read_standards(config.standards_file, base_dir)
        rules = parse_standards(standards)
        declared = _declarations(state) if any(migrations.values()) else {}
        docs = _state_docs(state) + [
            _migration_doc(e, list(s), declared) for e, s in sorted(migrations.items()) if s
        ]
        known_lines = _known_lines(known)
        result.cache_key = _cache_key(config, standards, docs, known_lines)
        cached = _cache_load(config, result.cache_key) if config.cache else None
        if cached is not None:
            raw, result.dropped, result.drop_reasons = cached
            result.findings = [_to_finding(r, config) for r in raw]
            result.status = "cached"
            return result
        batches = _batches(
            docs,
            lambda part: _user_prompt(standards, rules, part, config.max_findings, known_lines),
            config.max_input_chars,
        )
        answer: list[Any] = []
        failure = ""
        for n, part in enumerate(batches, 1):
            prompt = _user_prompt(standards, rules, part, config.max_findings, known_lines)
            schema = findings_schema([r.id for r in rules], [d.path for d in part])
            try:
                answer += request_findings(config, secret, SYSTEM_PROMPT, prompt, schema)
            except _Failure as e:
                failure = f"request {n} of {len(batches)}: {e}" if len(batches) > 1 else str(e)
                break
        verified, result.dropped, result.drop_reasons = _verify(answer, docs, rules, config.max_findings)
        result.findings = [_to_finding(r, config) for r in verified]
        if failure:  # findings of the requests that did succeed are kept, but the review failed
            raise _Failure(failure)
        if config.cache:
            _cache_store(config, result.cache_key, verified, result.dropped, result.drop_reasons)
        result.status = "ok"
    except _Failure as e:
        result.status = "failed: " + _redact(str(e), secret)
    except ConfigError as e:
        result.status = "failed: configuration: " + _redact(str(e), secret)
    except Exception as e:  # a review must report, never crash the pipeline
        result.status = f"failed: unexpected error ({type(e).__name__}: {_redact(str(e), secret)[:200]})"
    return result


def _batches(docs: list[_Doc], render: Any, limit: int) -> list[list[_Doc]]:
    """Split the documents into requests whose prompt stays within `limit` characters.

    Files are never cut; one that does not fit alone (with the standards) is a failure."""
    base = len(render([]))
    if base > limit:
        raise _Failure(f"standards too large for one request ({base} characters > max_input_chars {limit})")
    batches: list[list[_Doc]] = [[]]
    size = base
    for doc in docs:
        cost = len(doc.numbered()) + len(doc.path) + 64
        if base + cost > limit:
            raise _Failure(
                f"{doc.path} too large for one request ({base + cost} characters > max_input_chars {limit})"
            )
        if size + cost > limit and batches[-1]:
            batches.append([])
            size = base
        batches[-1].append(doc)
        size += cost
    return batches


def _read_standards(path: str, base_dir: str | os.PathLike[str] | None) -> str:
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Failure(f"standards file {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _Failure(f"standards file {path} unreadable ({type(e).__name__})") from None
    if not text.strip():
        raise _Failure(f"standards file {path} is empty")
    return text


# -- verification ------------------------------------------------------------------------------


def _verify(
    answer: list[Any], docs: list[_Doc], rules: list[StandardRule], cap: int
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Keep the findings whose evidence occurs at the cited place; count and explain the others."""
    by_path = {d.path: d for d in docs}
    rule_text = {r.id: r.text for r in rules}
    kept: list[dict[str, Any]] = []
    reasons: list[str] = []  # one per dropped finding
    seen: set[str] = set()
    for i, item in enumerate(answer):
        f, why = _validate_item(item)
        if f is None:
            reasons.append(f"finding {i + 1}: malformed ({why})")
            continue
        doc = by_path.get(f["file"])
        if doc is None:
            reasons.append(f"finding {i + 1}: unknown file {f['file']!r}")
            continue
        if rule_text and f["rule"] not in rule_text:
            reasons.append(f"finding {i + 1}: unknown rule {f['rule']!r}")
            continue
        where = doc.locate(f["evidence"], f["line"])
        if where is None:
            reasons.append(
                f"finding {i + 1}: evidence not found at {f['file']}:{f['line']} (±{LINE_TOLERANCE})"
            )
            continue
        fingerprint = hashlib.sha256(
            "|".join([f["rule"], f["file"], _normalise(f["evidence"])[0]]).encode()
        ).hexdigest()[:16]
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        f["line"], f["column"] = where
        f["title"] = rule_text.get(f["rule"], f["rule"])
        f["fingerprint"] = fingerprint
        if doc.kind == "migration":
            # migration findings point at the state declaration of the object the step touches
            step = doc.step_at(f["line"]) or 0
            anchor = doc.step_anchors[step] if step < len(doc.step_anchors) else None
            f["environment"], f["step_index"] = doc.environment, step
            f["file"], f["line"], f["column"] = (anchor[0], anchor[1], 1) if anchor else (None, None, None)
        kept.append(f)
    order = {s: i for i, s in enumerate(_SEVERITIES)}
    kept.sort(key=lambda f: order[f["severity"]])
    dropped = len(reasons)
    if len(kept) > cap:
        reasons.append(f"{len(kept) - cap} finding(s) beyond max_findings={cap} not reported")
        kept = kept[:cap]
    return kept, dropped, reasons


def _validate_item(item: Any) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(item, dict):
        return None, "not an object"
    out: dict[str, Any] = {}
    for key in ("rule", "file", "evidence", "message"):
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            return None, f"{key} missing or not a string"
        out[key] = value.strip() if key != "evidence" else value
    severity = item.get("severity")
    if not isinstance(severity, str) or severity.lower() not in _SEVERITIES:
        return None, "severity not error/warning/info"
    out["severity"] = severity.lower()
    line = item.get("line")
    if isinstance(line, str) and line.strip().isdigit():
        line = int(line)
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        return None, "line not a positive integer"
    out["line"] = line
    out["message"] = out["message"][:2000]
    return out, ""


def _to_finding(f: Mapping[str, Any], config: AIReviewConfig) -> Finding:
    severity = f["severity"].upper() if config.blocking else "WARNING"
    return _make_finding(
        rule_id=RULE_PREFIX + f["rule"],
        severity=severity,
        title=_clip(str(f.get("title") or f["rule"]), 120),
        message=f["message"],
        file=f.get("file"),
        line=f.get("line"),
        column=f.get("column"),
        environment=f.get("environment"),
        step_index=f.get("step_index"),
    )


def _make_finding(**kw: Any) -> Finding:
    """An AI `Finding` (source="ai")."""
    kw["severity"] = Severity(kw["severity"])
    return Finding(source="ai", **kw)


# -- cache -------------------------------------------------------------------------------------


def _cache_key(config: AIReviewConfig, standards: str, docs: list[_Doc], known: list[str]) -> str:
    payload = {
        "prompt_version": PROMPT_VERSION,
        "provider": config.provider,
        "model": config.model,
        "endpoint": config.endpoint,
        "standards": standards,
        "max_findings": config.max_findings,
        "docs": [[d.path, d.kind, d.text] for d in docs],
        "known": known,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _cache_load(config: AIReviewConfig, key: str) -> tuple[list[dict[str, Any]], int, list[str]] | None:
    path = config.resolved_cache_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        return list(data["findings"]), int(data["dropped"]), list(data.get("drop_reasons") or [])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_store(
    config: AIReviewConfig, key: str, findings: list[dict[str, Any]], dropped: int, reasons: list[str]
) -> None:
    directory = config.resolved_cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(
            json.dumps(
                {"key": key, "findings": findings, "dropped": dropped, "drop_reasons": reasons}, indent=1
            ),
            encoding="utf-8",
        )
        os.replace(tmp, directory / f"{key}.json")
    except OSError:
        pass  # a cache that cannot be written only costs a later call


__all__ = [
    "AIReviewConfig",
    "AIReviewResult",
    "StandardRule",
    "ai_review",
    "findings_schema",
    "migration_path",
    "parse_standards",
]
