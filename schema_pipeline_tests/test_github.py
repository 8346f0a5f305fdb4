"""GitHub reporting against a local server speaking GitHub's REST format."""

from __future__ import annotations

import json

import pytest

from schema_pipeline.review.github import (
    MARKER,
    MAX_COMMENT_CHARS,
    GitHubError,
    GitHubReporter,
    commit_status_for,
    head_sha_from_env,
    pr_number_from_env,
    state_for_exit_code,
)
from schema_pipeline.review.github import main as github_main
from schema_pipeline_tests.fake_github import BOT, FakeGitHub

TOKEN = "ghs_fake_token_0123456789"
REPO = "acme/schemas"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def github():
    with FakeGitHub(TOKEN, REPO) as fake:
        yield fake


def reporter(fake: FakeGitHub, token: str = TOKEN) -> GitHubReporter:
    return GitHubReporter(token, REPO, fake.api_url, backoff=0.0)


def test_sticky_comment_created_then_updated_in_place(github) -> None:
    github.add_comment(7, "LGTM, but see the review below.")
    with reporter(github) as gh:
        first = gh.upsert_sticky_comment(7, "## Schema review\n2 errors")
        second = gh.upsert_sticky_comment(7, "## Schema review\nall clear")
    assert first.action == "created" and second.action == "updated"
    assert first.comment_id == second.comment_id
    ours = [c for c in github.comments[7] if MARKER in c["body"]]
    assert len(ours) == 1 and len(github.comments[7]) == 2
    assert ours[0]["body"] == f"{MARKER}\n## Schema review\nall clear"
    assert ours[0]["user"] == BOT
    assert github.comments[7][0]["body"] == "LGTM, but see the review below."
    assert first.html_url.endswith(f"#issuecomment-{first.comment_id}")
    methods = [m for m, _ in github.requests]
    assert methods == ["GET", "POST", "GET", "PATCH"]


def test_sticky_comment_found_on_a_later_page(github) -> None:
    for i in range(150):
        github.add_comment(3, f"chatter {i}")
    existing = github.add_comment(3, f"{MARKER}\nold review", BOT)
    for i in range(30):
        github.add_comment(3, f"more chatter {i}")
    with reporter(github) as gh:
        result = gh.upsert_sticky_comment(3, "new review")
    assert result.action == "updated" and result.comment_id == existing["id"]
    assert len(github.comments[3]) == 181
    assert github.find_comment(existing["id"])["body"] == f"{MARKER}\nnew review"
    gets = [p for m, p in github.requests if m == "GET"]
    assert len(gets) == 2 and "page=2" in gets[1]


def test_marker_already_in_body_is_not_repeated(github) -> None:
    with reporter(github) as gh:
        gh.upsert_sticky_comment(1, f"{MARKER}\n# Review")
    assert github.comments[1][0]["body"] == f"{MARKER}\n# Review"


def test_long_comment_is_truncated_below_the_limit(github) -> None:
    body = "\n".join(f"| row {i} | {'x' * 80} |" for i in range(2000))
    with reporter(github) as gh:
        gh.upsert_sticky_comment(2, body)
    posted = github.comments[2][0]["body"]
    assert len(posted) <= MAX_COMMENT_CHARS and "truncated" in posted and posted.startswith(MARKER)


def test_commit_status_posted(github) -> None:
    state, description = commit_status_for(errors=2, warnings=1)
    assert (state, description) == ("failure", "Schema review: 2 errors, 1 warning")
    with reporter(github) as gh:
        status = gh.set_commit_status(SHA, state, description, target_url="https://ci.example/run/1")
        gh.set_commit_status(SHA, "success", "x" * 300, context="schema-pipeline/ai")
    posted = github.statuses[SHA]
    assert [s["state"] for s in posted] == ["failure", "success"]
    assert posted[0]["context"] == "schema-pipeline/review"
    assert posted[0]["description"] == description
    assert posted[0]["target_url"] == "https://ci.example/run/1"
    assert len(posted[1]["description"]) == 140 and posted[1]["context"] == "schema-pipeline/ai"
    assert status["id"] == posted[0]["id"]
    assert commit_status_for(0, 3) == ("success", "Schema review: 0 errors, 3 warnings")


def test_invalid_commit_status_rejected_locally(github) -> None:
    with reporter(github) as gh:  # noqa: SIM117 - two checks on one reporter
        with pytest.raises(GitHubError, match="state must be one of"):
            gh.set_commit_status(SHA, "failed", "x")
        with pytest.raises(GitHubError, match="not a commit SHA"):
            gh.set_commit_status("main", "success", "x")
    assert github.requests == []


def test_errors_name_the_call_and_status_never_the_token(github) -> None:
    wrong = "ghs_wrong_token_abcdef987654"
    with reporter(github, token=wrong) as gh, pytest.raises(GitHubError) as err:
        gh.upsert_sticky_comment(5, "body")
    message = str(err.value)
    assert err.value.status_code == 401
    assert "GET /repos/acme/schemas/issues/5/comments" in message and "401" in message
    assert "Bad credentials" in message
    assert wrong not in message and TOKEN not in message
    with (
        GitHubReporter(TOKEN, "acme/other", github.api_url, backoff=0.0) as gh,
        pytest.raises(GitHubError) as err,
    ):
        gh.set_commit_status(SHA, "success", "ok")
    assert "POST /repos/acme/other/statuses/" in str(err.value) and "404" in str(err.value)
    assert TOKEN not in str(err.value)


def test_server_errors_are_retried_boundedly(github) -> None:
    github.fail_next = [502]
    with reporter(github) as gh:
        assert gh.set_commit_status(SHA, "pending", "running")["state"] == "pending"
    github.fail_next = [500, 500, 500]
    with reporter(github) as gh, pytest.raises(GitHubError, match="HTTP 500"):
        gh.set_commit_status(SHA, "success", "done")
    assert len(github.statuses[SHA]) == 1


def test_unreachable_api_is_an_error_without_the_token() -> None:
    gh = GitHubReporter(TOKEN, REPO, "http://127.0.0.1:9", timeout=1.0, max_retries=0)
    with gh, pytest.raises(GitHubError) as err:
        gh.set_commit_status(SHA, "success", "ok")
    assert "POST /repos/acme/schemas/statuses/" in str(err.value) and TOKEN not in str(err.value)


def test_constructor_and_environment(tmp_path) -> None:
    with pytest.raises(GitHubError, match="owner/name"):
        GitHubReporter(TOKEN, "not-a-repo")
    with pytest.raises(GitHubError, match="empty"):
        GitHubReporter("", REPO)
    assert GitHubReporter.from_env({"GITHUB_REPOSITORY": REPO}) is None
    gh = GitHubReporter.from_env(
        {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": "https://ghe.example/api/v3"}
    )
    assert gh is not None and gh.api_url == "https://ghe.example/api/v3" and gh.repo == REPO
    gh.close()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 42, "pull_request": {"number": 42}}))
    assert pr_number_from_env({"GITHUB_EVENT_PATH": str(event)}) == 42
    assert pr_number_from_env({"GITHUB_REF": "refs/pull/17/merge"}) == 17
    assert pr_number_from_env({"GITHUB_REF": "refs/heads/main"}) is None


def test_ci_entry_point_posts_comment_and_status(github, tmp_path, monkeypatch, capsys) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"number": 9, "pull_request": {"number": 9, "head": {"sha": SHA}}}))
    report = tmp_path / "review.md"
    report.write_text("## Schema review\n1 error")
    for name, value in {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.api_url,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": "f" * 40,
    }.items():
        monkeypatch.setenv(name, value)
    assert head_sha_from_env() == SHA
    assert github_main(["comment", str(report)]) == 0
    assert github_main(["comment", str(report)]) == 0
    assert github_main(["status", "--exit-code", "2"]) == 0
    assert len(github.comments[9]) == 1 and github.comments[9][0]["body"].endswith("1 error")
    assert [(s["state"], s["description"]) for s in github.statuses[SHA]] == [
        ("failure", "Schema review found ERROR findings")
    ]
    out = capsys.readouterr().out
    assert "created comment" in out and "updated comment" in out
    assert [state_for_exit_code(c) for c in (0, 2, 1)] == ["success", "failure", "error"]
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_bad_token_xyz")
    assert github_main(["status", "--state", "success"]) == 1
    err = capsys.readouterr().err
    assert "401" in err and "ghs_bad_token_xyz" not in err


def test_a_reply_quoting_the_marker_is_not_taken_for_ours(github) -> None:
    github.add_comment(4, f"> {MARKER}\n> ## Schema review\n\nWhy is this an error?")
    with reporter(github) as gh:
        result = gh.upsert_sticky_comment(4, f"## Schema review\n{MARKER}\nbody")
    assert result.action == "created"
    assert github.comments[4][0]["body"].startswith("> ")
    assert github.comments[4][1]["body"] == f"{MARKER}\n## Schema review\n\nbody"


def test_open_pull_request_for_a_branch(github) -> None:
    github.add_pull(12, "feature/add-orders", SHA)
    github.add_pull(11, "old-branch", SHA, state="closed")
    with reporter(github) as gh:
        assert gh.open_pull_request_for("feature/add-orders") == 12
        assert gh.open_pull_request_for("old-branch") is None
        assert gh.open_pull_request_for("nope") is None
    assert any("head=acme%3Afeature%2Fadd-orders" in p for _, p in github.requests)
