"""Reporters: one list of findings rendered as Markdown, JSON, SARIF 2.1.0 or GitHub annotations."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from schema_pipeline.review.catalog import rule
from schema_pipeline.review.finding import Finding, Severity, sort_findings

FORMATS = ("markdown", "json", "sarif", "github")
TOOL_NAME = "schema-pipeline"
TOOL_VERSION = "0.1.0"
INFO_URI = "https://github.com/schema-pipeline/schema-pipeline"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _path(f: Finding, prefix: str) -> str | None:
    if not f.file:
        return None
    return f"{prefix.rstrip('/')}/{f.file}" if prefix else f.file


def _ai_line(findings: list[Finding], ai_status: str | None) -> str:
    if ai_status:
        return f"AI review: {ai_status}"
    if any(f.source == "ai" for f in findings):
        n = sum(1 for f in findings if f.source == "ai")
        return f"AI review: {n} finding{'s' if n != 1 else ''}"
    return "AI review: not configured"


def counts(findings: list[Finding]) -> dict[str, int]:
    """Findings per severity, every severity present (ERROR, WARNING, INFO)."""
    out = {s.value: 0 for s in Severity}
    for f in findings:
        out[f.severity.value] += 1
    return out


# ---------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def render_markdown(
    findings: list[Finding],
    *,
    ai_status: str | None = None,
    path_prefix: str = "",
    title: str = "Schema review",
) -> str:
    """A severity × count summary table, then one row per finding."""
    c = counts(findings)
    lines = [f"## {title}", "", "| Severity | Count |", "|---|---:|"]
    lines += [f"| {sev} | {n} |" for sev, n in c.items()]
    lines.append("")
    if findings:
        lines += ["| Severity | Location | Rule | Message |", "|---|---|---|---|"]
        for f in sort_findings(findings):
            loc = _path(f, path_prefix) or ""
            if loc and f.line:
                loc += f":{f.line}" + (f":{f.column}" if f.column else "")
            if f.environment:
                loc = (
                    f"{loc} ({f.environment}"
                    + (f", step {f.step_index + 1}" if f.step_index is not None else "")
                    + ")"
                )
            loc_cell = f"`{_md_cell(loc.strip())}`" if loc.strip() else "—"
            source = " (AI)" if f.source == "ai" else ""
            lines.append(
                f"| {f.severity} | {loc_cell} | `{_md_cell(f.rule_id)}`{source} | {_md_cell(f.message)} |"
            )
    else:
        lines.append("No findings.")
    lines += ["", _ai_line(findings, ai_status), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- json


def render_json(findings: list[Finding], *, ai_status: str | None = None) -> str:
    payload = {
        "version": 1,
        "summary": counts(findings),
        "blocking": any(f.severity == Severity.ERROR for f in findings),
        "ai_status": _ai_line(findings, ai_status).removeprefix("AI review: "),
        "findings": [f.to_dict() for f in sort_findings(findings)],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------- sarif


def _fingerprint(f: Finding) -> str:
    basis = "|".join([f.rule_id, f.file or "", f.environment or "", f.message])
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _sarif_uri(f: Finding, prefix: str) -> str | None:
    """The finding's path as a relative URI reference: no leading `./`, percent-encoded (UTF-8)."""
    path = _path(f, prefix)
    if path is None:
        return None
    while path.startswith("./"):
        path = path[2:]
    return quote(path, safe="/")


def _migration_location(f: Finding, prefix: str) -> dict:
    """A location for a finding on a migration step that no state file declares (e.g. a DROP of an
    object removed from the state): the state directory, plus the environment and step as a logical
    location. Code scanning rejects a whole upload when one result has no location."""
    where = " ".join(p for p in (f.environment and f"environment {f.environment}",
                                 f.step_index is not None and f"step {f.step_index + 1}") if p) or "migration"
    uri = quote(prefix.strip("/").removeprefix("./") or ".", safe="/")
    return {"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}},
            "logicalLocations": [{"name": where, "fullyQualifiedName": f"migration/{where}", "kind": "module"}]}


def sarif_format_string(text: str) -> str:
    """`text` as a SARIF message string: literal braces doubled ("{" -> "{{", "}" -> "}}").

    SARIF 2.1.0 §3.11.5: message strings (the `text` and `markdown` of a `message` object) may hold
    placeholders "{0}", "{1}", ... for `arguments`, so a literal brace must be written doubled. Our
    messages have no placeholders (so no `arguments`, §3.11.11); any brace in them is literal.
    A rule's `shortDescription`/`fullDescription` (§3.49.9, §3.49.10) are multiformatMessageStrings
    (§3.12) that are not message strings (only `messageStrings`, §3.49.11, are, via §3.11.7): no escaping.
    """
    return text.replace("{", "{{").replace("}", "}}")


def _sarif_message(f: Finding) -> dict[str, str]:
    """The result's `message` object; its text is never empty (code scanning needs one)."""
    text = next((t for t in (f.message, f.title) if t.strip()), f.rule_id)
    return {"text": sarif_format_string(text)}


def sarif_document(findings: list[Finding], *, path_prefix: str = "", category: str | None = None) -> dict:
    """The SARIF 2.1.0 log as a dict (one run)."""
    ordered = sort_findings(findings)
    rule_ids: list[str] = []
    for f in ordered:
        if f.rule_id not in rule_ids:
            rule_ids.append(f.rule_id)
    rules = []
    for rid in rule_ids:
        r = rule(rid)
        rules.append(
            {
                "id": rid,
                "name": rid,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.rationale or r.title},
                "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
                "properties": {"tags": ["sql", "schema", "ai" if rid.startswith("ai") else r.target]},
            }
        )
    results = []
    for f in ordered:
        res: dict = {
            "ruleId": f.rule_id,
            "ruleIndex": rule_ids.index(f.rule_id),
            "level": _SARIF_LEVEL[f.severity],
            "message": _sarif_message(f),
            "partialFingerprints": {"schemaPipelineFinding/v1": _fingerprint(f)},
            "properties": {"source": f.source, "severity": str(f.severity)},
        }
        uri = _sarif_uri(f, path_prefix)
        if uri:
            phys: dict = {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
            if f.line is not None and f.line >= 1:  # SARIF lines and columns start at 1
                region: dict = {"startLine": f.line}
                if f.column is not None and f.column >= 1:
                    region["startColumn"] = f.column
                phys["region"] = region
            res["locations"] = [{"physicalLocation": phys}]
        else:
            res["locations"] = [_migration_location(f, path_prefix)]
        if f.environment:
            res["properties"]["environment"] = f.environment
        if f.step_index is not None:
            res["properties"]["step_index"] = f.step_index
        results.append(res)
    run: dict = {
        "tool": {
            "driver": {"name": TOOL_NAME, "version": TOOL_VERSION, "informationUri": INFO_URI, "rules": rules}
        },
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if category:
        run["automationDetails"] = {"id": category}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render_sarif(findings: list[Finding], *, path_prefix: str = "", category: str | None = None) -> str:
    return json.dumps(
        sarif_document(findings, path_prefix=path_prefix, category=category), indent=2, ensure_ascii=False
    )


# ---------------------------------------------------------------- github


def escape_data(s: str) -> str:
    """Workflow-command message escaping."""
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    """Workflow-command property escaping (also ':' and ',')."""
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: list[Finding], *, path_prefix: str = "") -> str:
    """One `::error|warning|notice file=F,line=L,col=C,title=T::MESSAGE` line per finding."""
    out: list[str] = []
    for f in sort_findings(findings):
        props: list[str] = []
        path = _path(f, path_prefix)
        if path:
            props.append(f"file={escape_property(path)}")
            if f.line:
                props.append(f"line={f.line}")
                if f.column:
                    props.append(f"col={f.column}")
        title = f"{f.rule_id}: {f.title}" if f.title else f.rule_id
        if f.environment:
            title += f" [{f.environment}]"
        props.append(f"title={escape_property(title)}")
        out.append(f"::{_GITHUB_COMMAND[f.severity]} {','.join(props)}::{escape_data(f.message)}")
    return "\n".join(out) + ("\n" if out else "")


def render(
    findings: list[Finding],
    fmt: str,
    *,
    ai_status: str | None = None,
    path_prefix: str = "",
    category: str | None = None,
) -> str:
    """Render findings as markdown | json | sarif | github.

    `ai_status` is shown in Markdown/JSON ("not configured" when None and no AI findings);
    `path_prefix` turns state-relative file names into repository-relative ones.
    """
    if fmt == "markdown":
        return render_markdown(findings, ai_status=ai_status, path_prefix=path_prefix)
    if fmt == "json":
        return render_json(findings, ai_status=ai_status)
    if fmt == "sarif":
        return render_sarif(findings, path_prefix=path_prefix, category=category)
    if fmt == "github":
        return render_github(findings, path_prefix=path_prefix)
    raise ValueError(f"unknown review format {fmt!r}; expected one of {', '.join(FORMATS)}")
