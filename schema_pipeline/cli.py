"""Command-line front end: plan, apply, drift and review (DESIGN.md §5)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from schema_pipeline import __version__
from schema_pipeline.errors import SchemaPipelineError
from schema_pipeline.progress import Renderer, color_allowed, make_renderer

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

DESCRIPTION = """\
State-based PostgreSQL schema management.

You declare the schema you want in SQL files; schema-pipeline loads them into a
throw-away plan database, compares it with the target, and prints or applies the
migration. Exit codes: 0 success / no changes, 2 changes pending (plan --check,
drift, review with ERROR findings), 1 error.
"""

OUTPUT = """\
output:
  The plan, report or JSON goes to stdout; progress goes to stderr: on a terminal one line
  updated in place (phase, bar, k/n, percentage, elapsed seconds) below one line per finished
  phase; elsewhere (CI logs) timestamped lines, at most one a second per phase. -q prints no
  progress. NO_COLOR=1 or TERM=dumb turns colors off (TERM=dumb also the in-place line)."""

_ERROR_EXIT = "1  error (connection, state file, plan database, ...); nothing was changed"


def _epilog(examples: list[str], exit_codes: list[str]) -> str:
    return ("examples:\n" + "".join(f"  {e}\n" for e in examples)
            + "\nexit codes:\n" + "".join(f"  {c}\n" for c in exit_codes) + "\n" + OUTPUT)


EPILOGS = {
    "plan": _epilog(
        ["schema-pipeline plan --database-url postgresql://app@db/app --state schemas/ --format json > plan.json",
         "schema-pipeline plan --database-url $DATABASE_URL --state 'schemas/*.sql' --check    # CI gate"],
        ["0  success (with --check: no changes pending)", "2  changes pending (only with --check)", _ERROR_EXIT]),
    "apply": _epilog(
        ["schema-pipeline apply --database-url $DATABASE_URL --state schemas/ --allow-hazards INDEX_BUILD --yes",
         "schema-pipeline apply --database-url $DATABASE_URL --plan plan.json --yes --format json"],
        ["0  applied and the target converged, or nothing to apply",
         "1  error: hazards not allowed, rehearsal or a step failed, not confirmed, or a re-plan of the",
         "   target is not empty afterwards (apply never exits 2)"]),
    "drift": _epilog(
        ["schema-pipeline drift --database-url $DATABASE_URL --state schemas/",
         "schema-pipeline drift --database-url $DATABASE_URL --state schemas/ --format json > drift.json"],
        ["0  no drift: the live database matches the desired state", "2  drift found", _ERROR_EXIT]),
    "review": _epilog(
        ["schema-pipeline review --state schemas/",
         "schema-pipeline review --state schemas/ --database-url $DATABASE_URL --format sarif > review.sarif"],
        ["0  no finding at ERROR level", "2  at least one ERROR finding", _ERROR_EXIT]),
}


class _Parser(argparse.ArgumentParser):
    """argparse with the contract's exit code for usage errors (1 = error; 2 means 'changes pending')."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _add_target_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--database-url", required=required, default=os.environ.get("DATABASE_URL") if not required else None,
                   metavar="URL", help="target database (postgresql://user@host:port/dbname)")
    p.add_argument("--plan-database-url", metavar="URL",
                   help="a dedicated planning server (of the target's major version) for the throw-away plan "
                        "database, loaded by a role that is not a superuser (default: the plan sandbox, a "
                        "PostgreSQL cluster of the target's version started on this host; never the target's "
                        "server)")
    p.add_argument("--include-schema", action="append", metavar="NAME", help="manage only this schema (repeatable)")
    p.add_argument("--exclude-schema", action="append", metavar="NAME", help="never touch this schema (repeatable)")
    p.add_argument("--ownership", choices=["all", "declared"], default="all",
                   help="owners of objects whose owner the state does not set: 'all' (default) gives them to "
                        "the role that applies the plan; 'declared' leaves the target's owners as they are")


def _add_state_arg(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--state", required=required, metavar="PATH",
                   help="desired state: a directory (every *.sql below it, in path order) or a glob"
                   + ("" if required else "; with --plan, apply refuses when it no longer matches the plan"))


_ONLINE_HELP = ("plain CREATE INDEX / ADD CONSTRAINT / SET NOT NULL instead of the online forms "
                "(CONCURRENTLY, NOT VALID + VALIDATE) used by default on existing tables")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="schema-pipeline", description=DESCRIPTION, epilog=OUTPUT,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"schema-pipeline {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description, epilog=EPILOGS[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("plan", "show the migration from the target to the desired state",
                "Show the migration that would bring the target to the desired state. Nothing is changed.\n\n"
                "The state files are loaded into a throw-away plan database, both catalogs are read and\n"
                "compared, and the steps are printed in their transactional groups, with their hazards.")
    _add_target_args(p)
    _add_state_arg(p)
    p.add_argument("--format", choices=["human", "sql", "json"], default="human",
                   help="human (colored on a terminal), sql (a psql script), or json: a plan file that "
                        "`apply --plan FILE` can run later")
    p.add_argument("--check", action="store_true", help="exit 2 when changes are pending (for CI gates)")
    p.add_argument("--no-online", action="store_true", help=_ONLINE_HELP)

    p = command("apply", "migrate the target to the desired state",
                "Plan and apply the migration in transactional groups, under an advisory lock, with\n"
                "lock/statement timeouts; then verify that a re-plan is empty. A plan with hazards is\n"
                "refused unless they are allowed. The plan is first rehearsed on a schema-only copy of\n"
                "the target. With --plan FILE, a saved plan (plan --format json) is applied if the target\n"
                "has not changed since. Without --yes on a terminal, the plan is shown and confirmed first.")
    _add_target_args(p)
    _add_state_arg(p, required=False)
    p.add_argument("--plan", metavar="FILE", help="apply this saved plan (from `plan --format json`)")
    p.add_argument("--allow-hazards", default="", metavar="all|H1,H2",
                   help="hazard types to accept (e.g. DELETES_DATA,INDEX_BUILD) or 'all'")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--lock-timeout", default="10s", help="lock_timeout for each step (default 10s)")
    p.add_argument("--statement-timeout", default="0", help="statement_timeout for each step (default: none)")
    p.add_argument("--lock-retries", type=int, default=3, metavar="N",
                   help="retry a step that hit lock_timeout N times with exponential backoff (default 3)")
    p.add_argument("--no-online", action="store_true", help=_ONLINE_HELP)
    p.add_argument("--no-rehearsal", action="store_true",
                   help="do not rehearse the plan on a schema-only copy of the target first")
    p.add_argument("--record", action="store_true",
                   help="record the release in the target's schema_pipeline.releases table "
                        "(implied by --commit and --approved-by)")
    p.add_argument("--commit", metavar="SHA", help="commit recorded with the release in the target")
    p.add_argument("--approved-by", metavar="NAME", help="approver recorded with the release in the target")
    p.add_argument("--format", choices=["human", "sql", "json"], default="human",
                   help="how to print the applied plan; json: the plan file plus a \"result\" object "
                        "(applied_steps, duration_s, converged, release_id, rehearsed, ...)")

    p = command("drift", "compare the live database with the desired state",
                "Report differences between the live database and the desired state, with the SQL that\n"
                "would restore it. Exit 2 when drift exists. Nothing is changed.")
    _add_target_args(p)
    _add_state_arg(p)
    p.add_argument("--format", choices=["human", "sql", "json"], default="human",
                   help="human (colored on a terminal), sql, or json: the restoring plan as a plan file "
                        "(no steps: no drift)")

    p = command("review", "review the state files (and the migration, with --database-url)",
                "Run the review rules over the state files; with --database-url also over the migration\n"
                "the state would produce there. Exit 2 on ERROR findings. Nothing is changed.")
    _add_target_args(p, required=False)
    _add_state_arg(p)
    p.add_argument("--format", choices=["markdown", "sarif", "github", "json"], default="markdown",
                   help="markdown (default), sarif (code scanning), github (workflow annotations) or json")
    p.add_argument("--environment", default="cli", help="environment name recorded on migration findings")
    return parser


def _scope(args: argparse.Namespace):
    from schema_pipeline.engine import Scope

    return Scope(include_schemas=args.include_schema, exclude_schemas=args.exclude_schema,
                 ownership=args.ownership)


def _parse_hazards(text: str) -> set[str] | str:
    text = text.strip()
    if text.lower() == "all":
        return "all"
    return {h.strip().upper() for h in text.split(",") if h.strip()}


def _write(progress: Renderer, text: str) -> None:
    """Command output on stdout, once the progress line on stderr is cleared (often the same terminal)."""
    progress.close()
    sys.stdout.write(text)
    sys.stdout.flush()


def _cmd_plan(args: argparse.Namespace, progress: Renderer) -> int:
    from schema_pipeline import engine
    from schema_pipeline.plan.render import render
    from schema_pipeline.state import load_state

    state = load_state(args.state)
    fn = engine.drift if args.command == "drift" else engine.plan
    online = {"online": False} if getattr(args, "no_online", False) else {}
    # SQL output never shows the catalogs' fingerprints: skip hashing them (large schemas)
    fingerprints = {"fingerprints": False} if args.format == "sql" else {}
    result = fn(args.database_url, state, scope=_scope(args), plan_db_url=args.plan_database_url, progress=progress,
                **online, **fingerprints)
    _write(progress, render(result.plan, args.format, color=color_allowed(sys.stdout), desired=result.desired,
                            scope=_scope(args).to_dict()))
    if args.command == "drift" or args.check:
        return EXIT_CHANGES if not result.plan.is_empty else EXIT_OK
    return EXIT_OK


def apply_result_json(result, scope: dict) -> str:
    """`apply --format json`: the plan file of what was applied plus a "result" object."""
    from schema_pipeline.plan.artifact import plan_file_dict

    doc = plan_file_dict(result.plan, None, scope)
    doc["result"] = {
        "applied_steps": result.applied_steps, "duration_s": round(result.duration_s, 3),
        "converged": result.converged, "release_id": result.release_id, "rehearsed": result.rehearsed,
        "lock_wait_s": round(result.lock_wait_s, 3), "step_durations_s": [round(t, 4) for t in result.timings],
        "remaining": result.remaining,
    }
    return json.dumps(doc, indent=2) + "\n"


def _cmd_apply(args: argparse.Namespace, progress: Renderer) -> int:
    from schema_pipeline import engine
    from schema_pipeline.apply.executor import ApplyOptions
    from schema_pipeline.errors import ConfigError
    from schema_pipeline.plan.artifact import read_plan_file
    from schema_pipeline.plan.render import render
    from schema_pipeline.state import load_state

    if not args.state and not args.plan:
        raise ConfigError("apply needs --state PATH, or --plan FILE (a saved plan from `plan --format json`)")
    options = ApplyOptions(lock_timeout=args.lock_timeout, statement_timeout=args.statement_timeout,
                           lock_retries=args.lock_retries)
    allow = _parse_hazards(args.allow_hazards)
    saved = read_plan_file(args.plan) if args.plan else None
    scope = _scope(args)
    if saved and saved.scope and not (args.include_schema or args.exclude_schema):
        scope = engine.Scope(**{k: saved.scope.get(k) for k in ("include_schemas", "exclude_schemas")},
                             ownership=saved.scope.get("ownership") or "all")
    state = load_state(args.state) if args.state else None
    release_info = {k: v for k, v in (("commit", args.commit), ("approved_by", args.approved_by)) if v}
    if args.record and not release_info:
        release_info = {"source": "cli"}
    interactive = not args.yes and sys.stdin.isatty()
    if interactive:
        preview = saved.plan if saved else engine.plan(args.database_url, state, scope=scope,
                                                       plan_db_url=args.plan_database_url, progress=progress,
                                                       online=not args.no_online).plan
        _write(progress, render(preview, "human", color=color_allowed(sys.stdout)))
        if preview.is_empty:
            return EXIT_OK
        engine.check_hazards(preview, allow)
        answer = input("Apply these changes? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing applied.", file=sys.stderr)
            return EXIT_ERROR
    common = {"allow_hazards": allow, "scope": scope, "plan_db_url": args.plan_database_url, "options": options,
              "progress": progress, "rehearse": not args.no_rehearsal, "release_info": release_info or None}
    if saved:
        result = engine.apply_plan(args.database_url, saved.plan, desired=saved.desired, state=state, **common)
    else:
        result = engine.apply(args.database_url, state, online=not args.no_online, **common)
    if args.format == "json":
        _write(progress, apply_result_json(result, scope.to_dict()))
    elif not interactive:
        _write(progress, render(result.plan, args.format, color=color_allowed(sys.stdout), scope=scope.to_dict()))
    if result.plan.is_empty:
        return EXIT_OK
    if not result.converged:
        progress.close()
        print("error: the migration was applied but a re-plan is not empty; run `schema-pipeline plan` "
              "to see what is left", file=sys.stderr)
        for line in (result.remaining or "").splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_ERROR
    progress(f"applied {result.applied_steps} step(s) in {result.duration_s:.2f}s; target converged"
             + (f"; recorded as release {result.release_id}" if result.release_id else ""))
    return EXIT_OK


def _cmd_review(args: argparse.Namespace, progress: Renderer) -> int:
    from schema_pipeline import engine
    from schema_pipeline.review import has_blocking, render, review_plan, review_state
    from schema_pipeline.state import load_state

    state = load_state(args.state)
    findings = review_state(state)
    if args.database_url:
        result = engine.plan(args.database_url, state, scope=_scope(args), plan_db_url=args.plan_database_url,
                             progress=progress)
        findings += review_plan(result.plan.steps, args.environment)
    _write(progress, render(findings, args.format, ai_status="not configured",
                            path_prefix=_repo_relative(state.root)))
    return EXIT_CHANGES if has_blocking(findings) else EXIT_OK


def _repo_relative(root: str) -> str:
    """The state root relative to the working directory (the repository root in CI), so that SARIF and
    GitHub annotations name `schemas/users.sql`, not `users.sql`; "" when the root lies outside it."""
    rel = os.path.relpath(os.path.abspath(root), os.getcwd())
    return "" if rel == "." or rel.startswith("..") else rel.replace(os.sep, "/")


COMMANDS = {"plan": _cmd_plan, "drift": _cmd_plan, "apply": _cmd_apply, "review": _cmd_review}


def _redact_args(text: str, args: argparse.Namespace) -> str:
    """`text` without any password of the URLs given on the command line (or in URL/conninfo form)."""
    from schema_pipeline.db import password_of, redact

    secrets = [password_of(u) for u in (getattr(args, "database_url", None),
                                        getattr(args, "plan_database_url", None)) if u]
    return redact(text, *secrets)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from schema_pipeline.sandbox.registry import install_exit_hooks

    install_exit_hooks()  # a plan stopped with SIGTERM stops and removes its sandbox (plans run in threads)
    progress = make_renderer(sys.stderr, quiet=args.quiet)
    try:
        return COMMANDS[args.command](args, progress)
    except SchemaPipelineError as exc:
        progress.close()
        text = _redact_args(str(exc), args)
        for line in text.splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        progress.close()
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user mistake: still never print a secret
        progress.close()
        print(f"internal error ({type(exc).__name__}): {_redact_args(str(exc), args)}", file=sys.stderr)
        if os.environ.get("SCHEMA_PIPELINE_DEBUG"):
            raise
        return EXIT_ERROR
    finally:
        progress.close()


if __name__ == "__main__":
    sys.exit(main())
