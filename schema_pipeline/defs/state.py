"""`schema/state`: the desired state at one commit, parsed and (when a database is at hand) introspected."""

import dagster as dg
from pydantic import Field

from schema_pipeline import engine
from schema_pipeline.config import ProjectConfig
from schema_pipeline.defs.common import (
    BRANCH_TAG,
    COMMIT_TAG,
    KINDS,
    STATE_KEY,
    column_schema,
    event_tag_value,
    object_counts,
    repo_path,
    scrub,
    state_at,
    tables_markdown,
)
from schema_pipeline.defs.resources import GitRepoResource, resource_key
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.git import GitError


class StateConfig(dg.Config):
    """Which commit to load; empty means the head of the configured branch."""

    commit_sha: str = Field(
        default="", description="Commit to release (full or abbreviated SHA); '' = branch head."
    )


def build_state_asset(cfg: ProjectConfig) -> dg.AssetsDefinition:
    """The `schema/state` asset; the first environment's server hosts the throw-away plan database."""
    first = cfg.environments[0]
    db_key = resource_key(first)

    @dg.asset(
        key=STATE_KEY,
        group_name="schema",
        kinds=KINDS,
        owners=list(cfg.owners),
        required_resource_keys={db_key, "git"},
        description=(
            "The desired schema: the SQL files under the state path at one git commit, parsed "
            "(statements located by file:line) and loaded into a throw-away plan database to read "
            "back tables, columns and constraints. The commit is its data version."
        ),
    )
    def schema_state(context: dg.AssetExecutionContext, config: StateConfig):
        git: GitRepoResource = context.resources.git
        client = git.get_client()
        try:
            sha = client.resolve(config.commit_sha or git.branch)
            info = client.commit_info(sha)
        except GitError as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(f"loading the desired state at {sha[:12]} ({info['subject']})")
        target = getattr(context.resources, db_key)
        with state_at(client, git.state_path, sha) as state:
            desired = None
            if target.configured:
                try:
                    desired = engine.desired_catalog(
                        state,
                        target.url(),
                        scope=first.scope(),
                        plan_db_url=target.plan_database_url,
                        progress=lambda msg: context.log.debug(scrub(str(msg), target.database_url)),
                    )
                except SchemaPipelineError as exc:
                    raise dg.Failure(
                        scrub(f"loading the state into a plan database failed: {exc}", target.database_url)
                    ) from None
            else:
                context.log.warning(
                    f"{first.database_url_env} is not set: no plan database, so no column metadata"
                )
            metadata: dict = {
                "commit": dg.MetadataValue.text(sha),
                "commit_subject": info["subject"],
                "commit_author": info["author"],
                "state_path": git.state_path,
                "files": dg.MetadataValue.md(
                    "\n".join(f"- `{repo_path(git.state_path, f)}`" for f in state.files) or "_none_"
                ),
                "file_count": len(state.files),
                "statement_count": sum(1 for s in state.statements if not s.session_only),
                "state_fingerprint": str(state.fingerprint),
                "object_counts": dg.MetadataValue.json(object_counts(desired, state)),
            }
        if desired is not None:
            schema = column_schema(desired)
            if schema is not None:
                metadata["dagster/column_schema"] = schema
            metadata["tables"] = dg.MetadataValue.md(tables_markdown(desired))
            metadata["desired_fingerprint"] = str(desired.fingerprint())
        branch = context.run.tags.get(BRANCH_TAG)
        if branch:  # a review of another branch: never what a release picks up (see upstream_commit)
            metadata["branch"] = branch
        return dg.MaterializeResult(
            metadata=metadata,
            data_version=dg.DataVersion(sha),
            tags={COMMIT_TAG: sha, **({BRANCH_TAG: event_tag_value(branch)} if branch else {})},
        )

    return schema_state
