"""`schema/review`: rules over the state files and over each environment's migration.

The blocking check `no_error_findings` stops the release in the same run when any
finding is at ERROR level; `release/<env>` assets for later environments re-check it.
"""

import tempfile
from pathlib import Path

import dagster as dg

from schema_pipeline import engine, review
from schema_pipeline.config import ProjectConfig
from schema_pipeline.defs.backends import bytebase_review
from schema_pipeline.defs.branches import report_to_github
from schema_pipeline.defs.common import (
    BRANCH_TAG,
    COMMIT_TAG,
    KINDS,
    NO_ERROR_FINDINGS,
    REVIEW_KEY,
    STATE_KEY,
    changes_table,
    event_tag_value,
    hazards_markdown,
    scrub,
    sql_markdown,
    state_at,
    state_base,
    upstream_commit,
)
from schema_pipeline.defs.resources import GitRepoResource, resource_key
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.plan.render import render_sql
from schema_pipeline.review.ai import ai_review


def build_review_asset(cfg: ProjectConfig) -> dg.AssetsDefinition:
    """The `schema/review` asset with its blocking `no_error_findings` check."""
    db_keys = {resource_key(e) for e in cfg.backend_envs("native")}
    extra_keys = ({"bytebase"} if cfg.backend_envs("bytebase") else set()) | (
        {"github"} if cfg.github else set()
    )

    @dg.asset(
        key=REVIEW_KEY,
        deps=[STATE_KEY],
        group_name="schema",
        kinds=KINDS,
        owners=list(cfg.owners),
        required_resource_keys={*db_keys, *extra_keys, "git"},
        check_specs=[
            dg.AssetCheckSpec(
                NO_ERROR_FINDINGS,
                asset=REVIEW_KEY,
                blocking=True,
                description="No review finding at ERROR level (blocks the release in the same run).",
            )
        ],
        description=(
            "SQL review of the desired state (naming, keys, types, ...) and of the migration each "
            "configured environment would get (locks, data loss, rewrites). Metadata: `summary` "
            "(findings per severity), `ai_status`, the Markdown `report` with file:line, and for every "
            "environment that needs approval (prod) the migration it would get now: `<env>_plan_sql`, "
            "`<env>_changes`, `<env>_hazards`. ERROR findings block the release."
        ),
    )
    def schema_review(context: dg.AssetExecutionContext):
        git: GitRepoResource = context.resources.git
        sha = upstream_commit(context)
        client = git.get_client()
        reviewed: list[str] = []
        skipped: list[str] = []
        with state_at(client, git.state_path, sha) as state:
            rules = cfg.review_config()
            findings = list(review.review_state(state, rules))
            migrations: dict[str, list] = {}
            plans: dict[str, object] = {}  # later environments: what an approver would release
            for env in cfg.backend_envs("native"):
                target = getattr(context.resources, resource_key(env))
                if not target.configured:
                    skipped.append(f"{env.name} ({env.database_url_env} not set)")
                    continue
                try:
                    result = engine.plan(
                        target.url(), state, scope=env.scope(), plan_db_url=target.plan_database_url
                    )
                except SchemaPipelineError as exc:
                    raise dg.Failure(
                        scrub(f"planning {env.name} failed: {exc}", target.database_url)
                    ) from None
                findings += review.review_plan(result.plan.steps, env.name, state=state, config=rules)
                migrations[env.name] = list(result.plan.steps)
                if cfg.previous(env) is not None:
                    plans[env.name] = result.plan
                reviewed.append(f"{env.name} (first database)" if env.multi_target else env.name)
            bytebase_envs = cfg.backend_envs("bytebase")
            if bytebase_envs:
                findings += bytebase_review(
                    context.resources.bytebase, client, git.state_path, sha, bytebase_envs
                )
                reviewed += [f"{e.name} (Bytebase releases:check)" for e in bytebase_envs]
            ai_status = _ai_review(context, cfg, client, sha, state, migrations, findings)
        report = review.render(
            findings, "markdown", ai_status=ai_status, path_prefix=state_base(git.state_path)
        )
        blocking = review.has_blocking(findings)
        by_severity = review.counts(findings)
        branch = context.run.tags.get(BRANCH_TAG)
        context.log.info(f"review of {sha[:12]}{f' (branch {branch})' if branch else ''}: {by_severity}")
        summary = {
            "commit": dg.MetadataValue.text(sha),
            "errors": by_severity.get("ERROR", 0),
            "warnings": by_severity.get("WARNING", 0),
            "infos": by_severity.get("INFO", 0),
        }
        check = dg.AssetCheckResult(
            check_name=NO_ERROR_FINDINGS,
            passed=not blocking,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{summary['errors']} ERROR finding(s) in commit {sha[:12]}"
                if blocking
                else f"no ERROR findings in {sha[:12]}"
            ),
            metadata={**summary, "report": dg.MetadataValue.md(report)},
        )
        metadata = {
            **summary,
            "summary": severity_table(by_severity),
            "ai_status": ai_status,
            **pending_plans_metadata(plans),  # before the (long) report: what an approver reads first
            "environments_reviewed": ", ".join(reviewed) or "none",
            "environments_skipped": ", ".join(skipped) or "none",
            "report": dg.MetadataValue.md(report),
        }
        if branch:
            metadata["branch"] = branch
        if cfg.github is not None:
            metadata.update(
                report_to_github(context, context.resources.github, sha, branch, by_severity, report)
            )
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[check],
            data_version=dg.DataVersion(sha),
            tags={COMMIT_TAG: sha, **({BRANCH_TAG: event_tag_value(branch)} if branch else {})},
        )

    return schema_review


SEVERITIES = ("ERROR", "WARNING", "INFO")


def severity_table(by_severity: dict[str, int]) -> dg.TableMetadataValue:
    """Findings per severity, as a table (rendered inline on the asset's Events tab)."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({"severity": s, "count": int(by_severity.get(s, 0))}) for s in SEVERITIES],
        schema=dg.TableSchema(columns=[dg.TableColumn("severity", "string"), dg.TableColumn("count", "int")]),
    )


def pending_plans_metadata(plans: dict[str, object]) -> dict[str, object]:
    """For every later environment (prod): the migration it would get now, for its approver."""
    out: dict[str, object] = {}
    for name, plan in plans.items():
        out[f"{name}_plan_sql"] = dg.MetadataValue.md(
            sql_markdown(render_sql(plan), f"_no changes: {name} already matches this commit_")
        )
        out[f"{name}_changes"] = changes_table(plan)
        out[f"{name}_hazards"] = dg.MetadataValue.md(hazards_markdown(plan))
    return out


def _ai_review(context, cfg: ProjectConfig, client, sha: str, state, migrations: dict, findings: list) -> str:
    """Run the opt-in AI review (standards file read from the same commit); extend `findings`."""
    ai_cfg = cfg.ai_config()
    if not ai_cfg.configured:
        return "not configured (set review.ai or SCHEMA_PIPELINE_AI_PROVIDER to enable it)"
    with tempfile.TemporaryDirectory(prefix="schema-standards-") as tmp:
        standards = ai_cfg.standards_file
        if not Path(standards).is_absolute():
            text = client.read_file(sha, standards)
            if text is not None:
                target = Path(tmp) / standards
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        result = ai_review(state, migrations, ai_cfg, base_dir=tmp, known=list(findings))
    findings += result.findings
    status = result.status_finding()
    if status is not None:
        findings.append(status)
    context.log.info(result.summary())
    return result.summary().split(": ", 1)[-1] + (
        f" ({result.provider} {result.model})" if result.provider else ""
    )
