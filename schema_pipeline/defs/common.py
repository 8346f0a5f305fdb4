"""Shared helpers of the Dagster layer: asset keys, reading state at a commit, metadata, redaction."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg

from schema_pipeline.config import EnvironmentConfig, ProjectConfig
from schema_pipeline.db import password_of, redact
from schema_pipeline.errors import StateError, StateErrors
from schema_pipeline.git import GitError, GitRepo
from schema_pipeline.state import count_by_kind, load_state, object_inventory

STATE_KEY = dg.AssetKey(["schema", "state"])
REVIEW_KEY = dg.AssetKey(["schema", "review"])
COMMIT_TAG = "schema/commit"
BRANCH_TAG = "schema/branch"  # set on review-only runs of other branches (never released)
ENV_TAG = "schema/env"
KINDS = {"postgres", "sql"}
NO_ERROR_FINDINGS = "no_error_findings"
CONVERGED = "converged"
NO_DRIFT = "no_drift"


def event_tag_value(text: str) -> str:
    """A value allowed in an asset-event tag (letters, digits, `_-.`, at most 63 characters)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63] or "-"


def release_key(env: EnvironmentConfig | str) -> dg.AssetKey:
    return dg.AssetKey(["release", env if isinstance(env, str) else env.name])


# -- secrets -------------------------------------------------------------------------------------


def describe_url(url: str | None) -> str:
    """`host[:port]/dbname` of a PostgreSQL URL: never the user's password."""
    if not url:
        return "(none)"
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host") or [""])[0] or "localhost"
        port = f":{parts.port}" if parts.port else ""
        db = parts.path.lstrip("/") or (query.get("dbname") or [""])[0] or "postgres"
        return f"{host}{port}/{db}"
    except ValueError:
        return "(unparseable URL)"


def scrub(message: str, *urls: str | None) -> str:
    """Remove URLs and their passwords from a message before it reaches logs or the UI."""
    for url in urls:
        if url:
            message = message.replace(url, describe_url(url))
    return redact(message, *(password_of(u) for u in urls if u))


# -- state ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def state_at(git: GitRepo, cfg_state: str, sha: str) -> Iterator[Any]:
    """The DesiredState of commit `sha` (files extracted from git into a temporary directory).

    State errors become a `dg.Failure` whose description lists every file:line problem.
    """
    try:
        root = git.materialize_state(sha, cfg_state)
    except GitError as exc:
        raise dg.Failure(f"cannot read the state at commit {sha[:12]}: {exc}") from None
    try:
        try:
            state = load_state(str(root / cfg_state), root=str(root))
        except (StateErrors, StateError) as exc:
            errors = exc.errors if isinstance(exc, StateErrors) else [exc]
            listing = "\n".join(f"- {repo_location(cfg_state, e)}{e.message}" for e in errors)
            raise dg.Failure(
                description=f"the desired state at commit {sha[:12]} has {len(errors)} problem(s); "
                f"nothing was applied:\n{listing}",
                metadata={
                    "commit": sha,
                    "errors": dg.MetadataValue.md(listing),
                },
            ) from None
        yield state
    finally:
        shutil.rmtree(root, ignore_errors=True)


def state_base(state_path: str) -> str:
    """The directory state file names are relative to (as the loader reports them), repo-relative."""
    path = state_path.strip().rstrip("/")
    for i, ch in enumerate(path):
        if ch in "*?[":
            prefix = path[:i]
            return prefix.rstrip("/") if prefix.endswith("/") else os.path.dirname(prefix)
    return os.path.dirname(path) if path.endswith(".sql") else path


def repo_path(state_path: str, file: str) -> str:
    """A state file's path relative to the repository root."""
    base = state_base(state_path)
    return f"{base}/{file}" if base and base != "." else file


def repo_location(state_path: str, error: Any) -> str:
    """`path:line:col: ` of a StateError with the repository-relative path ('' without a file)."""
    if not getattr(error, "file", None):
        return ""
    loc = repo_path(state_path, error.file)
    if error.line:
        loc += f":{error.line}" + (f":{error.column}" if error.column else "")
    return loc + ": "


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey) -> dg.EventLogEntry | None:
    return instance.get_latest_materialization_event(key)


def materialization_tag(event: dg.EventLogEntry | None, tag: str = COMMIT_TAG) -> str | None:
    """A tag (default: the commit) of a materialization event."""
    if event is None or event.asset_materialization is None:
        return None
    return (event.asset_materialization.tags or {}).get(tag)


def latest_commit(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    return materialization_tag(latest_materialization(instance, key))


def upstream_commit(context: dg.AssetExecutionContext, key: dg.AssetKey = STATE_KEY) -> str:
    """The commit of `key` materialized in this run (so concurrent runs never mix commits),
    else of its latest materialization that is not a review of another branch; a Failure when
    there is none."""
    records = context.instance.fetch_materializations(key, limit=50).records
    for record in records:
        if record.run_id == context.run.run_id:
            sha = materialization_tag(record.event_log_entry)
            if sha:
                return sha
    mainline = [r for r in records if not materialization_tag(r.event_log_entry, BRANCH_TAG)]
    sha = materialization_tag(mainline[0].event_log_entry) if mainline else None
    if not sha:
        raise dg.Failure(f"{key.to_user_string()} has never been materialized; materialize it first")
    return sha


# -- catalog -> metadata -------------------------------------------------------------------------


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """Read `name` from a dict or an object (catalog summaries may be either)."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def table_summaries(catalog: Any) -> list[Any]:
    if catalog is None or not hasattr(catalog, "table_summaries"):
        return []
    return list(catalog.table_summaries())


def qualified(table: Any) -> str:
    schema = field_of(table, "schema", "")
    name = field_of(table, "name", "")
    return f"{schema}.{name}" if schema else str(name)


def column_schema(catalog: Any) -> dg.TableSchema | None:
    """One TableSchema for every managed table: columns are named `schema.table.column`."""
    columns: list[dg.TableColumn] = []
    constraints: list[str] = []
    for table in table_summaries(catalog):
        qname = qualified(table)
        for col in field_of(table, "columns", []) or []:
            nullable = bool(field_of(col, "nullable", True))
            default = field_of(col, "default")
            other = [f"DEFAULT {default}"] if default else None
            columns.append(
                dg.TableColumn(
                    name=f"{qname}.{field_of(col, 'name')}",
                    type=str(field_of(col, "type", "")),
                    description=field_of(col, "comment") or None,
                    constraints=dg.TableColumnConstraints(nullable=nullable, other=other),
                )
            )
        constraints += [f"{qname}: {c}" for c in field_of(table, "constraints", []) or []]
    if not columns:
        return None
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=constraints))


def tables_markdown(catalog: Any) -> str:
    """A Markdown list of tables with their columns and constraints."""
    lines: list[str] = []
    for table in table_summaries(catalog):
        comment = field_of(table, "comment")
        lines.append(f"### `{qualified(table)}`" + (f" — {comment}" if comment else ""))
        lines.append("")
        lines.append("| column | type | null | default |")
        lines.append("|---|---|---|---|")
        for col in field_of(table, "columns", []) or []:
            null = "yes" if field_of(col, "nullable", True) else "NOT NULL"
            default = field_of(col, "default") or ""
            lines.append(
                f"| `{field_of(col, 'name')}` | `{field_of(col, 'type')}` | {null} | {_md(default)} |"
            )
        constraints = field_of(table, "constraints", []) or []
        if constraints:
            lines.append("")
            lines += [f"- `{c}`" for c in constraints]
        lines.append("")
    return "\n".join(lines) if lines else "_no tables_"


def object_counts(catalog: Any, state: Any = None) -> dict[str, int]:
    """Objects by kind: from the desired catalog when available, else from the statement kinds."""
    if catalog is not None and hasattr(catalog, "object_counts"):
        return {str(k): int(v) for k, v in dict(catalog.object_counts()).items()}
    if state is None:
        return {}
    return count_by_kind(object_inventory(state))


def sql_markdown(sql: str, empty: str = "_no changes_") -> str:
    return f"```sql\n{sql.strip()}\n```" if sql and sql.strip() else empty


def changes_table(plan: Any) -> dg.TableMetadataValue:
    """One row per plan step: kind, object, action, hazards."""
    records = [
        dg.TableRecord(
            {
                "kind": str(step.object_kind),
                "object": str(step.object_name),
                "action": str(step.action),
                "hazards": ", ".join(str(h.type) for h in step.hazards) or "",
            }
        )
        for step in (plan.steps if plan is not None else [])
    ]
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("kind", "string"),
            dg.TableColumn("object", "string"),
            dg.TableColumn("action", "string"),
            dg.TableColumn("hazards", "string"),
        ]
    )
    return dg.MetadataValue.table(records=records, schema=schema)


def catalog_diff_markdown(current: Any, desired: Any) -> str:
    """Live-vs-desired per table as a fenced `diff`: `-` desired but not live, `+` live but not desired."""
    live = {qualified(t): t for t in table_summaries(current)}
    want = {qualified(t): t for t in table_summaries(desired)}
    out: list[str] = []
    for name in sorted(set(live) | set(want)):
        if name not in live:
            out.append(f"- table {name} (missing in the live database)")
            continue
        if name not in want:
            out.append(f"+ table {name} (not in the desired state)")
            continue
        a, b = _table_lines(want[name]), _table_lines(live[name])
        removed = [ln for ln in a if ln not in b]
        added = [ln for ln in b if ln not in a]
        if removed or added:
            out.append(f"  table {name}")
            out += [f"-   {ln}" for ln in removed] + [f"+   {ln}" for ln in added]
    counts_live = object_counts(current) if current is not None else {}
    counts_want = object_counts(desired) if desired is not None else {}
    for kind in sorted(set(counts_live) | set(counts_want)):
        if counts_live.get(kind, 0) != counts_want.get(kind, 0):
            out.append(f"  {kind}: desired {counts_want.get(kind, 0)}, live {counts_live.get(kind, 0)}")
    if not out:
        return "_tables match; see the plan for other objects_"
    return "```diff\n" + "\n".join(out) + "\n```"


def _table_lines(table: Any) -> list[str]:
    lines = []
    for col in field_of(table, "columns", []) or []:
        text = f"{field_of(col, 'name')} {field_of(col, 'type')}"
        if not field_of(col, "nullable", True):
            text += " NOT NULL"
        if field_of(col, "default"):
            text += f" DEFAULT {field_of(col, 'default')}"
        lines.append(text)
    lines += [f"CONSTRAINT {c}" for c in field_of(table, "constraints", []) or []]
    if field_of(table, "comment"):
        lines.append(f"COMMENT {field_of(table, 'comment')!r}")
    return lines


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def env_names(envs: Iterable[EnvironmentConfig]) -> list[str]:
    return [e.name for e in envs]


def git_client(cfg: ProjectConfig) -> GitRepo:
    return GitRepo(cfg.git.repo, branch=cfg.git.branch)
