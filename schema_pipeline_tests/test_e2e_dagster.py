"""End to end: a real `dagster dev`, driven over GraphQL and looked at in a headless Chromium.

One test walks the whole operator story against real PostgreSQL databases:

1. `dagster dev` starts from a temporary directory (own DAGSTER_HOME on SQLite with this
   repository's `dagster.yaml`, own `workspace.yaml`, a temporary git repository holding the
   sample schema; both databases already at the sample state, as in `./dev demo`);
2. the git sensor releases the first commit; then a schema change (`employee.email`) is
   committed and the sensor's run for that commit (run key = SHA) releases it to test;
3. `release/prod` is launched over GraphQL with the approval config, exactly as the
   Launchpad would (no extra tags), and prod gets the column;
4. prod is altered by hand, the `drift_checks` job runs, and the prod `no_drift` check fails
   at ERROR with the diff and the correction SQL in its metadata;
5. Chromium opens the lineage of `release/prod`, its materialization (approval metadata),
   the Launchpad its Materialize button opens (approval config required), its checks (drift
   diff), and the other assets, and saves screenshots to `test-artifacts/e2e/`.

Set `SCHEMA_PIPELINE_DOCS_SCREENSHOTS=1` to also refresh the README tour's images in
`docs/img/` (off by default so a test run never modifies tracked files).

Skipped only when Debian's Chromium (`/usr/bin/chromium`, package `chromium`) is missing;
CI installs it. Timeouts are generous and every wait polls; nothing sleeps blindly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from schema_pipeline_tests.test_apply_support import columns
from schema_pipeline_tests.test_git import SAMPLE_SCHEMAS, TempRepo

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("SCHEMA_PIPELINE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
DOCS_IMG = ROOT / "docs" / "img"
LOCATION = "schema-pipeline"
APPROVER = "alice@example.com"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# (screenshot name in test-artifacts, name in docs/img) for the README tour
DOCS_SHOTS = {
    "01-lineage.png": "lineage.png",
    "02-release-prod-approval.png": "release-prod-approval.png",
    "02b-release-prod-launchpad.png": "release-prod-launchpad.png",
    "03-release-prod-drift.png": "release-prod-drift.png",
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"headless Chromium not found at {CHROMIUM} (Debian package `chromium`; CI installs it)",
)


# -- helpers --------------------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (httpx.HTTPError, psycopg.OperationalError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" ({last_error})" if last_error else "")
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apply_sample(url: str) -> None:
    """Bring a database to the sample state (what `./dev demo` does for hr_test / hr_prod)."""
    from schema_pipeline import engine
    from schema_pipeline.state import load_state

    engine.apply(url, load_state(str(SAMPLE_SCHEMAS), root=str(SAMPLE_SCHEMAS.parent)), allow_hazards="all")


def metadata_map(entries: list[dict]) -> dict[str, Any]:
    """GraphQL metadata entries -> {label: text | mdStr | intValue | ...}."""
    out: dict[str, Any] = {}
    for e in entries:
        for field in ("text", "mdStr", "intValue", "floatValue", "jsonString", "url"):
            if field in e and e[field] is not None:
                out[e["label"]] = e[field]
                break
        else:
            out[e["label"]] = None
    return out


METADATA_FIELDS = """
  label
  ... on TextMetadataEntry { text }
  ... on MarkdownMetadataEntry { mdStr }
  ... on IntMetadataEntry { intValue }
  ... on FloatMetadataEntry { floatValue }
  ... on JsonMetadataEntry { jsonString }
"""


@dataclass
class DagsterDev:
    """A running `dagster dev` and the world it points at."""

    base_url: str
    port: int
    repo: TempRepo
    test_url: str
    prod_url: str
    log: Path
    proc: subprocess.Popen

    def gql(self, query: str, **variables: Any) -> dict:
        resp = httpx.post(
            f"{self.base_url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        resp.raise_for_status()
        body = resp.json()
        assert not body.get("errors"), json.dumps(body["errors"], indent=1)
        return body["data"]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def runs_with_run_key(self, sha: str) -> list[dict]:
        data = self.gql(
            """query($sha: String!) {
                 runsOrError(filter: {tags: [{key: "dagster/run_key", value: $sha}]}) {
                   ... on Runs { results { runId status jobName tags { key value } } }
                 }
               }""",
            sha=sha,
        )
        return data["runsOrError"]["results"]

    def run(self, run_id: str) -> dict:
        return self.gql(
            """query($id: ID!) { runOrError(runId: $id) {
                 ... on Run { runId status jobName tags { key value } }
                 ... on RunNotFoundError { message } } }""",
            id=run_id,
        )["runOrError"]

    def wait_run(self, run_id: str, timeout: float = 180) -> dict:
        """Poll a run to a terminal status; fail with the webserver log when it is not SUCCESS."""
        terminal = {"SUCCESS", "FAILURE", "CANCELED"}
        run = wait_for(
            f"run {run_id} to finish",
            lambda: (r := self.run(run_id)).get("status") in terminal and r,
            timeout,
        )
        assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}:\n{self.run_failure(run_id)}"
        return run

    def run_failure(self, run_id: str) -> str:
        data = self.gql(
            """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
                 __typename ... on MessageEvent { message }
                 ... on EngineEvent { error { message } } } } } }""",
            id=run_id,
        )
        events = data["logsForRun"].get("events") or []
        lines = [
            f"{e['__typename']}: {e.get('message', '')} {(e.get('error') or {}).get('message', '')}".strip()
            for e in events[-25:]
        ]
        return "\n".join(lines) + "\n--- dagster dev log ---\n" + self.log_tail(30)

    def launch(
        self, job_name: str, run_config: dict | None = None, assets: list[list[str]] | None = None
    ) -> str:
        """Launch a run the way the UI does (launchRun with a selector; no extra tags)."""
        selector: dict[str, Any] = {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": job_name,
        }
        if assets:
            selector["assetSelection"] = [{"path": a} for a in assets]
        data = self.gql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename
                 ... on LaunchRunSuccess { run { runId } }
                 ... on PythonError { message }
                 ... on RunConfigValidationInvalid { errors { message } }
                 ... on InvalidSubsetError { message }
                 ... on UnauthorizedError { message } } }""",
            params={"selector": selector, "runConfigData": run_config or {}},
        )["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", json.dumps(data, indent=1)
        return data["run"]["runId"]

    def check_evaluation(self, asset: list[str], check: str) -> dict:
        data = self.gql(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
                 assetChecksOrError { ... on AssetChecks { checks { name
                   executionForLatestMaterialization { runId status
                     evaluation { success severity description metadataEntries { METADATA } } } } } } } } }""".replace(
                "METADATA", METADATA_FIELDS
            ),
            key={"path": asset},
        )
        checks = data["assetNodeOrError"]["assetChecksOrError"]["checks"]
        return next(c for c in checks if c["name"] == check)["executionForLatestMaterialization"]

    def latest_materialization(self, asset: list[str]) -> dict:
        data = self.gql(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
                 staleStatus
                 assetMaterializations(limit: 1) { runId tags { key value } metadataEntries { METADATA } }
               } } }""".replace("METADATA", METADATA_FIELDS),
            key={"path": asset},
        )
        node = data["assetNodeOrError"]
        mats = node["assetMaterializations"]
        return {"stale": node["staleStatus"], **(mats[0] if mats else {})}


# -- the running webserver ------------------------------------------------------------------------


@pytest.fixture
def dagster_dev(tmp_path: Path, make_db) -> Iterator[DagsterDev]:
    test_url, prod_url = make_db(), make_db()
    for url in (test_url, prod_url):
        apply_sample(url)

    repo = TempRepo(tmp_path / "repo")
    repo.commit({"README.md": "schemas for the e2e test\n"}, "initial")
    repo.commit_sample()

    cwd = tmp_path / "location"  # no .env here: `dagster dev` would let it override the environment
    home = cwd / "dagster_home"
    home.mkdir(parents=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")  # the shipped instance config, SQLite
    # The UI's "Join the Dagster community" dialog is recorded as seen here ($DAGSTER_HOME/.nux).
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    (cwd / "workspace.yaml").write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: schema_pipeline.definitions\n"
        f"      location_name: {LOCATION}\n"
    )
    config = cwd / "schema_pipeline.yaml"
    config.write_text(f"git:\n  repo: {repo.path}\n  branch: main\nstate: schemas\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEMA_PIPELINE_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        SCHEMA_PIPELINE_CONFIG=str(config),
        SCHEMA_PIPELINE_TEST_URL=test_url,
        SCHEMA_PIPELINE_PROD_URL=prod_url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    log = tmp_path / "dagster-dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown kills exactly this tree
        )
    dev = DagsterDev(f"http://127.0.0.1:{port}", port, repo, test_url, prod_url, log, proc)
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"dagster dev exited with {proc.returncode}:\n{dev.log_tail()}")
            return httpx.get(f"{dev.base_url}/server_info", timeout=5).status_code == 200

        wait_for("the webserver to answer /server_info", up, timeout=180)
        yield dev
    finally:
        _stop(proc)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / "dagster-dev.log")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group we created (webserver, daemon, code server, run workers).

    `dagster dev` usually exits within seconds, but its code server sometimes ignores SIGTERM;
    whatever is left of the group after a short grace period gets SIGKILL.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=12)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


# -- the test ---------------------------------------------------------------------------------------


def test_commit_to_test_then_approved_prod_then_drift_seen_in_the_browser(dagster_dev: DagsterDev) -> None:
    dev = dagster_dev
    started = time.monotonic()

    # The shipped dagster.yaml is in effect: prod releases are limited to one at a time.
    queue = dev.gql("{ instance { runQueueConfig { maxConcurrentRuns tagConcurrencyLimitsYaml } } }")
    assert "schema/env" in (queue["instance"]["runQueueConfig"]["tagConcurrencyLimitsYaml"] or "")

    # 1. The sensor releases the existing state (a no-op on test, which is already there).
    first = dev.repo.git("rev-parse", "HEAD")
    runs = wait_for(
        "the sensor's run for the first commit", lambda: dev.runs_with_run_key(first), timeout=180
    )
    dev.wait_run(runs[0]["runId"])

    # 2. A schema change is committed; the sensor's next tick releases it to test.
    original = (SAMPLE_SCHEMAS / "01_tables.sql").read_text()
    changed = original.replace(
        "    hire_date date NOT NULL,\n", "    hire_date date NOT NULL,\n    email text,\n", 1
    )
    assert changed != original
    sha = dev.repo.commit({"schemas/01_tables.sql": changed}, "employee: add email")
    runs = wait_for("the sensor's run for the schema change", lambda: dev.runs_with_run_key(sha), timeout=180)
    assert len(runs) == 1 and runs[0]["jobName"] == "schema_to_test"
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags["schema/commit"] == sha and tags["dagster/sensor_name"] == "schema_commit_sensor"
    dev.wait_run(runs[0]["runId"])
    assert "email" in columns(dev.test_url, "employee")
    assert "email" not in columns(dev.prod_url, "employee")
    test_mat = dev.latest_materialization(["release", "test"])
    assert {t["key"]: t["value"] for t in test_mat["tags"]}["schema/commit"] == sha
    assert "ADD COLUMN" in metadata_map(test_mat["metadataEntries"])["plan_sql"]
    # Pending approval: prod is behind test (never released by the pipeline yet: MISSING).
    assert dev.latest_materialization(["release", "prod"])["stale"] in ("STALE", "MISSING")

    # 3. An approver releases that commit to prod (what the Launchpad sends).
    approval = {"approved_by": APPROVER, "expected_commit_sha": sha, "reason": "CHG-42: add employee.email"}
    prod_run = dev.launch(
        "__ASSET_JOB", {"ops": {"release__prod": {"config": approval}}}, assets=[["release", "prod"]]
    )
    dev.wait_run(prod_run)
    assert "email" in columns(dev.prod_url, "employee")
    prod_mat = dev.latest_materialization(["release", "prod"])
    prod_md = metadata_map(prod_mat["metadataEntries"])
    assert prod_md["approved_by"] == APPROVER and prod_md["approved_commit"] == sha
    assert prod_md["approval_reason"] == approval["reason"]
    assert prod_mat["runId"] == prod_run and prod_mat["stale"] == "FRESH"

    # 4. Someone changes prod by hand; the drift job finds it (the run itself succeeds).
    with psycopg.connect(dev.prod_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.employee ADD COLUMN nickname text")
    drift_run = dev.launch("drift_checks")
    try:
        dev.wait_run(drift_run)
    except AssertionError as first:
        # Seen once in eight runs on a loaded 2-core machine: the run was marked failed about a second
        # after launch, before any step started. Relaunch once; a second failure fails the test.
        warnings.warn(f"drift_checks run failed at start, relaunching once: {first}", stacklevel=1)
        dev.wait_run(dev.launch("drift_checks"))
    drift = dev.check_evaluation(["release", "prod"], "no_drift")
    assert drift["status"] == "FAILED"
    evaluation = drift["evaluation"]
    assert not evaluation["success"] and evaluation["severity"] == "ERROR"
    drift_md = metadata_map(evaluation["metadataEntries"])
    assert "nickname" in drift_md["diff"] and "public.employee" in drift_md["diff"]
    assert "DROP COLUMN" in drift_md["correction_sql"].upper() and "nickname" in drift_md["correction_sql"]
    assert drift_md["released_commit"] == sha
    test_drift = dev.check_evaluation(["release", "test"], "no_drift")
    assert test_drift["evaluation"]["success"]
    pipeline_s = time.monotonic() - started

    # 5. What people see.
    shots = look_in_the_browser(dev)
    for name in shots:
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
    if os.environ.get("SCHEMA_PIPELINE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for src, dst in DOCS_SHOTS.items():
            shutil.copyfile(ARTIFACTS / src, DOCS_IMG / dst)
    print(f"pipeline part {pipeline_s:.0f}s, browser part {time.monotonic() - started - pipeline_s:.0f}s")


# -- the browser ------------------------------------------------------------------------------------


def look_in_the_browser(dev: DagsterDev) -> list[str]:
    """Open the screens each user needs, assert what they must show, save screenshots."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):  # no stale screenshot from an earlier run
        old.unlink()
    saved: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)  # the UI polls; a loaded CI machine is slow

            def open_page(path: str) -> None:
                page.goto(dev.base_url + path, wait_until="domcontentloaded")
                page.get_by_role("link", name="Catalog").first.wait_for()
                dismiss_welcome()

            def dismiss_welcome() -> None:
                # Fallback: the fixture marks the "Join the Dagster community" dialog as seen.
                skip = page.get_by_role("button", name="Skip", exact=True)
                if skip.count():
                    skip.first.click()
                    expect(skip).to_have_count(0)

            def shot(name: str, full_page: bool = False) -> None:
                page.screenshot(path=str(ARTIFACTS / name), full_page=full_page, animations="disabled")
                saved.append(name)

            # Lineage of release/prod, upstream: schema/state -> schema/review -> release/test -> release/prod
            open_page("/assets/release/prod?view=lineage&lineageScope=upstream&lineageDepth=4")
            graph = page.locator("body")
            for label in ("schema", "release", "state", "review", "test", "prod"):
                expect(graph.get_by_text(label, exact=True).first).to_be_visible()
            expect(page.get_by_text("Loading...")).to_have_count(0)
            expect(page.get_by_text("Latest event").first).to_be_visible()
            shot("01-lineage.png")

            # The prod release: who approved which commit and why.
            open_page("/assets/release/prod?view=events")
            label = page.get_by_text("approved_by", exact=True).first
            expect(label).to_be_visible()
            expect(page.get_by_text(APPROVER, exact=True).first).to_be_visible()
            expect(page.get_by_text("approval_reason", exact=True).first).to_be_visible()
            label.scroll_into_view_if_needed()
            page.mouse.wheel(0, 250)  # keep the commit and changes table partly in view above it
            expect(page.get_by_text(APPROVER, exact=True).first).to_be_in_viewport()
            shot("02-release-prod-approval.png")

            # The approver's next release: Materialize opens the Launchpad, because the approval
            # config is required (it cannot be skipped by clicking through).
            open_page("/assets/release/prod")
            page.get_by_role("button", name="Materialize").first.click()
            launchpad = page.get_by_role("dialog")
            expect(launchpad.get_by_text("release__prod").first).to_be_visible()
            expect(launchpad.get_by_text("Missing required config entries").first).to_be_visible()
            expect(launchpad.get_by_text("approved_by").first).to_be_visible()
            shot("02b-release-prod-launchpad.png")
            page.keyboard.press("Escape")

            # On-call: the failed drift check with its diff and correction SQL.
            open_page("/assets/release/prod?view=checks")
            page.get_by_text("no_drift", exact=True).first.click()
            expect(page.get_by_text("correction_sql", exact=True).first).to_be_visible()
            expect(page.get_by_text("Failed").first).to_be_visible()
            shot("03-release-prod-drift.png")
            # ... and the diff itself (Markdown metadata opens in a dialog).
            diff_row = page.locator("tr", has=page.get_by_text("diff", exact=True))
            diff_row.get_by_text("[Show Markdown]").first.click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("nickname").first).to_be_visible()
            expect(dialog.get_by_role("button", name="Close")).to_be_visible()
            shot("03b-release-prod-drift-diff.png")
            page.keyboard.press("Escape")

            # The other screens, for the record (what test received, the review, the state).
            open_page("/assets/release/test?view=events")
            expect(page.get_by_text("plan_sql", exact=True).first).to_be_visible()
            shot("04-release-test-plan.png")
            open_page("/assets/schema/review?view=events")
            expect(page.get_by_text("report", exact=True).first).to_be_visible()
            shot("05-schema-review.png")
            open_page("/assets/schema/state")
            expect(page.get_by_text("Columns").first).to_be_visible()
            shot("06-schema-state.png")
        finally:
            browser.close()
    return saved
