"""Shared helpers of the Dagster layer: asset keys, reading state at a commit, metadata, redaction."""

from __future__ import annotations

import contextlib
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
from schema_pipeline.state.paths import state_root

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
    return state_root(state_path)


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


_KEY_COLUMNS = re.compile(r"^(PRIMARY KEY|UNIQUE|FOREIGN KEY) \(([^)]*)\)(?: REFERENCES ([^(\s]+))?")
_CHIP_MAX = 24  # longer texts are cut by the Columns panel's chips; they stay in the `tables` entry


def _column_keys(constraints: list[str]) -> dict[str, tuple[bool, list[str]]]:
    """column -> (unique, short chips) from PRIMARY KEY / UNIQUE / FOREIGN KEY definitions."""
    out: dict[str, tuple[bool, list[str]]] = {}
    for definition in constraints:
        m = _KEY_COLUMNS.match(str(definition))
        if not m:
            continue
        kind, cols = m.group(1), [c.strip().strip('"') for c in m.group(2).split(",") if c.strip()]
        single = len(cols) == 1
        for col in cols:
            unique, chips = out.get(col, (False, []))
            if kind == "PRIMARY KEY":
                chips.append("primary key" if single else "part of primary key")  # unique implied
            elif kind == "UNIQUE":
                chips.append("unique" if single else "part of unique key")
                unique = unique or single
            else:
                ref = f"FK {m.group(3)}" if m.group(3) else "foreign key"
                chips.append(ref if len(ref) <= _CHIP_MAX else "foreign key")
            out[col] = (unique, chips)
    return out


def column_schema(catalog: Any) -> dg.TableSchema | None:
    """One TableSchema for every managed table: columns are named `schema.table.column`.

    Constraints are attached to the columns they concern, as short chips (primary key, unique
    for a one-column UNIQUE, FK <table>, a short default); CHECK and other table-level definitions, which the Columns
    panel would cut off, are in the `tables` Markdown entry only.
    """
    columns: list[dg.TableColumn] = []
    for table in table_summaries(catalog):
        qname = qualified(table)
        keys = _column_keys(list(field_of(table, "constraints", []) or []))
        for col in field_of(table, "columns", []) or []:
            name = str(field_of(col, "name"))
            nullable = bool(field_of(col, "nullable", True))
            unique, chips = keys.get(name, (False, []))
            default = field_of(col, "default")
            if default:
                text = f"default {default}"
                chips = [*chips, text if len(text) <= _CHIP_MAX else "has default"]
            columns.append(
                dg.TableColumn(
                    name=f"{qname}.{name}",
                    type=str(field_of(col, "type", "")),
                    description=field_of(col, "comment") or None,
                    constraints=dg.TableColumnConstraints(
                        nullable=nullable, unique=unique, other=list(chips) or None
                    ),
                )
            )
    if not columns:
        return None
    return dg.TableSchema(columns=columns)


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


FOLDED_ACTIONS = ("comment", "owner")


def hazard_text(hazard: Any) -> str:
    """`TYPE` or `TYPE: public.events (41 M rows, 12 GB)` when the target's size is known."""
    size = hazard.size_text() if hasattr(hazard, "size_text") else ""
    return f"{hazard.type}: {size}" if size else str(hazard.type)


def change_rows(plan: Any) -> list[dict[str, str]]:
    """One row per plan step, for display: kind, object, action, hazards (with sizes).

    `comment` and `owner` steps that merely accompany the `create` of the same object (or of
    the table a column belongs to) are folded into that row ("create + comment"). Presentation
    only: the plan and its SQL are unchanged.
    """
    steps = list(plan.steps) if plan is not None else []
    created = {(str(s.object_kind), str(s.object_name)) for s in steps if str(s.action) == "create"}
    created_tables = {name for kind, name in created if kind == "table"}

    def host(step: Any) -> tuple[str, str] | None:
        key = (str(step.object_kind), str(step.object_name))
        if str(step.action) not in FOLDED_ACTIONS or step.hazards:
            return None
        if key in created:
            return key
        if key[0] == "column" and key[1].rsplit(".", 1)[0] in created_tables:
            return ("table", key[1].rsplit(".", 1)[0])
        return None

    rows: list[dict[str, str]] = []
    index: dict[tuple[str, str], dict[str, str]] = {}
    extras: dict[tuple[str, str], list[str]] = {}
    for step in steps:
        target = host(step)
        if target is not None:
            extras.setdefault(target, [])
            if str(step.action) not in extras[target]:
                extras[target].append(str(step.action))
            continue
        row = {
            "kind": str(step.object_kind),
            "object": str(step.object_name),
            "action": str(step.action),
            "hazards": ", ".join(hazard_text(h) for h in step.hazards),
        }
        rows.append(row)
        if row["action"] == "create":
            index.setdefault((row["kind"], row["object"]), row)
    for key, actions in extras.items():
        row = index.get(key)
        if row is not None:
            row["action"] = " + ".join(["create", *actions])
    return rows


CHANGE_COLUMNS = ("kind", "object", "action", "hazards")


def changes_table(plan: Any) -> dg.TableMetadataValue:
    """One row per change: kind, object, action, hazards (accompanying comments/owners folded)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in CHANGE_COLUMNS])
    records = [dg.TableRecord(row) for row in change_rows(plan)]
    return dg.MetadataValue.table(records=records, schema=schema)


def hazards_markdown(plan: Any) -> str:
    """A Markdown list: one line per hazardous step, with the size of what it touches."""
    lines = [
        f"- **{h.type}** — `{step.object_kind} {step.object_name}` ({step.action}): {h.text()}"
        for step in (plan.steps if plan is not None else [])
        for h in step.hazards
    ]
    return "\n".join(lines) if lines else "_no hazards_"


def change_lines(plan: Any, limit: int = 10) -> list[str]:
    """`kind name action` per change (folded like the changes table), at most `limit` plus a tail."""
    rows = change_rows(plan)
    lines = [f"{r['kind']} {r['object']} {r['action']}" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more")
    return lines


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
