"""The git client against real temporary repositories (local path and file:// remote)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from schema_pipeline.git import GitError, GitRepo, is_remote_repo, pathspec, safe_repo_name

SAMPLE_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


class TempRepo:
    """A throw-away git repository on branch `main` with helpers to commit files."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env_args = ["-c", "user.email=dev@example.com", "-c", "user.name=Dev", "-c", "commit.gpgsign=false"]
        return subprocess.run(
            ["git", "-C", str(self.path), *env_args, *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or delete, when the content is None) files and commit; return the SHA."""
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def commit_sample(self) -> str:
        files = {f"schemas/{p.name}": p.read_text() for p in sorted(SAMPLE_SCHEMAS.glob("*.sql"))}
        return self.commit(files, "HR sample schema")


def sample_file(name: str) -> str:
    return (SAMPLE_SCHEMAS / name).read_text()


@pytest.fixture
def temp_repo(tmp_path: Path) -> TempRepo:
    return TempRepo(tmp_path / "repo")


def test_head_and_history_of_a_local_repo(temp_repo: TempRepo) -> None:
    first = temp_repo.commit_sample()
    readme = temp_repo.commit({"README.md": "hello\n"}, "docs only")
    change = temp_repo.commit({"schemas/04_extra.sql": "CREATE TABLE public.extra (id bigint);\n"}, "extra")
    repo = GitRepo(str(temp_repo.path), branch="main")

    assert repo.head_sha() == change
    assert repo.changed_paths(first, readme) == ["README.md"]
    assert repo.schema_commits_since(None, "main", "schemas") == [first, change]
    assert repo.schema_commits_since(first, "main", "schemas") == [change]
    assert repo.schema_commits_since(change, "main", "schemas") == []
    # a glob state path works as a pathspec too
    assert repo.schema_commits_since(readme, "main", "schemas/*.sql") == [change]
    assert repo.resolve(change[:10]) == change
    assert repo.commit_info(change)["subject"] == "extra"


def test_unknown_cursor_falls_back_to_latest_state_commit(temp_repo: TempRepo) -> None:
    sha = temp_repo.commit_sample()
    temp_repo.commit({"README.md": "x\n"})
    repo = GitRepo(str(temp_repo.path))
    assert repo.schema_commits_since("0" * 40, "main", "schemas") == [sha]


def test_materialize_state_reads_the_commit_not_the_working_tree(temp_repo: TempRepo) -> None:
    sha = temp_repo.commit_sample()
    (temp_repo.path / "schemas" / "01_tables.sql").write_text("-- uncommitted edit\n")
    (temp_repo.path / "schemas" / "99_untracked.sql").write_text("CREATE TABLE public.t (id int);\n")
    repo = GitRepo(str(temp_repo.path))
    with repo.checkout_state(sha, "schemas") as root:
        files = sorted(p.name for p in (root / "schemas").iterdir())
        assert files == ["01_tables.sql", "02_views.sql", "03_audit.sql"]
        assert (root / "schemas" / "01_tables.sql").read_text() == sample_file("01_tables.sql")
        kept = root
    assert not kept.exists()


def test_clear_errors(temp_repo: TempRepo, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="does not exist"):
        GitRepo(str(tmp_path / "nowhere"))
    repo = GitRepo(str(temp_repo.path))
    with pytest.raises(GitError, match="branch 'main' not found"):
        repo.head_sha()
    sha = temp_repo.commit({"README.md": "x\n"})
    with pytest.raises(GitError, match="branch 'release' not found"):
        repo.head_sha("release")
    with pytest.raises(GitError, match="commit 'deadbeef' not found"):
        repo.resolve("deadbeef")
    with pytest.raises(GitError, match="no state files match 'schemas'"):
        repo.materialize_state(sha, "schemas")


def test_remote_repository_through_a_mirror(temp_repo: TempRepo, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    first = temp_repo.commit_sample()
    url = f"file://{temp_repo.path}"
    repo = GitRepo(url, branch="main")
    assert repo.remote
    assert repo.head_sha() == first  # ls-remote: no clone needed
    assert not repo.git_dir.exists()
    assert repo.schema_commits_since(None, "main", "schemas") == [first]
    assert (repo.git_dir / "HEAD").exists()
    second = temp_repo.commit({"schemas/04_extra.sql": "CREATE TABLE public.extra (id bigint);\n"})
    assert repo.schema_commits_since(first, "main", "schemas") == [second]  # fetched on demand
    with repo.checkout_state(second, "schemas") as root:
        assert (root / "schemas" / "04_extra.sql").exists()
    shutil.rmtree(tmp_path / "cache")


def test_helpers() -> None:
    assert is_remote_repo("https://github.com/acme/db.git")
    assert is_remote_repo("git@github.com:acme/db.git")
    assert not is_remote_repo("/srv/checkouts/db")
    assert not is_remote_repo("./db")
    assert safe_repo_name("https://user:s3cret@example.com/x.git") == "https://example.com/x.git"
    assert pathspec("schemas/") == "schemas"
    assert pathspec("db/**/*.sql") == ":(glob)db/**/*.sql"


def test_branch_heads_local_and_remote(temp_repo: TempRepo, tmp_path: Path, monkeypatch) -> None:
    main = temp_repo.commit_sample()
    temp_repo.git("checkout", "-q", "-b", "feature/x")
    feature = temp_repo.commit({"schemas/04_x.sql": "CREATE TABLE public.x (id bigint PRIMARY KEY);\n"})
    temp_repo.git("checkout", "-q", "main")
    assert GitRepo(str(temp_repo.path)).branch_heads() == {"main": main, "feature/x": feature}
    monkeypatch.setenv("SCHEMA_PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    remote = GitRepo(f"file://{temp_repo.path}")
    assert remote.branch_heads() == {"main": main, "feature/x": feature}
    assert not (tmp_path / "cache").exists()  # ls-remote only: no mirror for polling
