"""A small git client (subprocess, no Dagster): poll a branch head and read committed state files.

`repo` is a local checkout or a remote URL. For a remote, `head_sha` asks `git ls-remote`
(no clone) and everything else reads a persistent local mirror that is fetched only when the
head is not in it yet. State is always read from a commit (`git archive`), never from a
working tree, so a run uses exactly the committed files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from schema_pipeline.errors import SchemaPipelineError

_SHA = re.compile(r"^[0-9a-f]{40}$")
_GLOB_CHARS = set("*?[")
DEFAULT_TIMEOUT_S = 30.0


class GitError(SchemaPipelineError):
    """A git command failed; the message says which repository and why."""


def is_remote_repo(repo: str) -> bool:
    """True for URLs (`https://...`, `ssh://...`, `git@host:path`), False for local paths."""
    return "://" in repo or bool(re.match(r"^[\w.-]+@[\w.-]+:", repo))


def safe_repo_name(repo: str) -> str:
    """The repository for messages: credentials in a URL (`https://user:token@host`) are removed."""
    return re.sub(r"(://)[^/@]*@", r"\1", repo)


def pathspec(state_path: str) -> str:
    """The git pathspec for a state directory or glob (globs use `:(glob)` magic)."""
    path = state_path.strip().rstrip("/") or "."
    return f":(glob){path}" if _GLOB_CHARS & set(path) else path


class GitRepo:
    """Read-only access to one repository and branch."""

    def __init__(
        self,
        repo: str,
        *,
        branch: str = "main",
        mirror_dir: str | os.PathLike[str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.repo = repo
        self.branch = branch
        self.timeout_s = timeout_s
        self.remote = is_remote_repo(repo)
        if self.remote:
            self.git_dir = Path(mirror_dir) if mirror_dir else default_mirror_dir(repo)
        else:
            path = Path(repo).expanduser()
            if not path.exists():
                raise GitError(f"git repository {repo} does not exist")
            self.git_dir = path

    # -- polling -----------------------------------------------------------------------------

    def head_sha(self, branch: str | None = None) -> str:
        """The commit the branch points to. Cheap: `rev-parse` locally, `ls-remote` for a URL."""
        branch = branch or self.branch
        if self.remote:
            out = self._run(["ls-remote", "--heads", "--", self.repo, f"refs/heads/{branch}"], in_repo=False)
            for line in out.splitlines():
                sha, _, ref = line.partition("\t")
                if ref.strip() == f"refs/heads/{branch}":
                    return sha.strip()
            raise GitError(f"branch {branch!r} not found in {safe_repo_name(self.repo)}")
        out = self._run(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"], check=False)
        if not _SHA.match(out.strip()):
            raise GitError(f"branch {branch!r} not found (or has no commits) in {self.repo}")
        return out.strip()

    def branch_heads(self) -> dict[str, str]:
        """Every branch and its head commit. Cheap: `for-each-ref` locally, `ls-remote --heads` for a URL."""
        if self.remote:
            out = self._run(["ls-remote", "--heads", "--", self.repo], in_repo=False)
        else:
            out = self._run(["for-each-ref", "--format=%(objectname)\t%(refname)", "refs/heads"])
        heads: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            ref, sha = ref.strip(), sha.strip()
            if ref.startswith("refs/heads/") and _SHA.match(sha):
                heads[ref[len("refs/heads/") :]] = sha
        return heads

    def resolve(self, ref: str) -> str:
        """Full SHA of a commit-ish (SHA, abbreviated SHA, branch or tag)."""
        ref = ref.strip()
        if not ref:
            raise GitError("empty commit reference")
        if self.remote:
            self.ensure_commit(ref if _SHA.match(ref) else None)
        out = self._run(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], check=False).strip()
        if not _SHA.match(out):
            raise GitError(f"commit {ref!r} not found in {safe_repo_name(self.repo)}")
        return out

    def has_commit(self, sha: str) -> bool:
        if self.remote and not (self.git_dir / "HEAD").exists():
            return False
        proc = self._proc(["cat-file", "-e", f"{sha}^{{commit}}"])
        return proc.returncode == 0

    def ensure_commit(self, sha: str | None) -> None:
        """Remote only: create the mirror on first use; fetch when `sha` is not in it yet."""
        if not self.remote:
            return
        if not (self.git_dir / "HEAD").exists():
            self.git_dir.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".mirror-", dir=self.git_dir.parent))
            try:
                self._run(["clone", "--mirror", "--quiet", "--", self.repo, str(tmp)], in_repo=False)
                tmp.rename(self.git_dir)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        if sha is None or not self.has_commit(sha):
            self._run(["fetch", "--prune", "--quiet", "origin"])
            if sha is not None and not self.has_commit(sha):
                raise GitError(f"commit {sha} not found in {safe_repo_name(self.repo)} after fetching")

    # -- history -----------------------------------------------------------------------------

    def changed_paths(self, old: str, new: str) -> list[str]:
        """Paths that differ between two commits."""
        self.ensure_commit(new)
        out = self._run(["diff", "--name-only", "--no-renames", old, new, "--"])
        return [p for p in out.splitlines() if p]

    def schema_commits_since(
        self, old_sha: str | None, branch: str | None = None, state_path: str = "schemas"
    ) -> list[str]:
        """Commits on `branch` after `old_sha` (all when None) that touch the state, oldest first.

        When `old_sha` is unknown or not an ancestor of the head (history rewritten), the
        latest commit touching the state is returned alone, so the pipeline re-syncs.
        """
        head = self.head_sha(branch)
        self.ensure_commit(head)
        spec = pathspec(state_path)
        if old_sha and self.has_commit(old_sha) and self._is_ancestor(old_sha, head):
            rng = [f"{old_sha}..{head}"]
        else:
            rng = [head]
            if old_sha:
                latest = self._run(["log", "-1", "--format=%H", head, "--", spec]).split()
                return latest
        out = self._run(["log", "--reverse", "--format=%H", *rng, "--", spec])
        return out.split()

    def _is_ancestor(self, old: str, new: str) -> bool:
        return self._proc(["merge-base", "--is-ancestor", old, new]).returncode == 0

    # -- reading state -----------------------------------------------------------------------

    def materialize_state(self, sha: str, state_path: str = "schemas", dest: str | None = None) -> Path:
        """Extract the state files of commit `sha` into a new temporary directory (caller removes it).

        The directory mirrors the repository layout, so `dir / state_path` is the state.
        """
        self.ensure_commit(sha)
        full = self.resolve(sha)
        proc = self._proc(["archive", "--format=tar", full, "--", pathspec(state_path)], text=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            if "did not match" in err:
                raise GitError(f"no state files match {state_path!r} at commit {full[:12]}")
            raise GitError(f"git archive failed at commit {full[:12]}: {_last_line(err)}")
        target = Path(dest) if dest else Path(tempfile.mkdtemp(prefix=f"schema-state-{full[:12]}-"))
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            tar.extractall(target, filter="data")
        return target

    @contextlib.contextmanager
    def checkout_state(self, sha: str, state_path: str = "schemas") -> Iterator[Path]:
        """Context manager around `materialize_state` that removes the directory afterwards."""
        path = self.materialize_state(sha, state_path)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def read_file(self, sha: str, path: str) -> str | None:
        """A file's text at commit `sha` (None when it does not exist there)."""
        self.ensure_commit(sha)
        proc = self._proc(["show", f"{sha}:{path.lstrip('/')}"])
        return proc.stdout if proc.returncode == 0 else None

    def commit_info(self, sha: str) -> dict[str, str]:
        """Author, date and subject of a commit (for metadata)."""
        out = self._run(["show", "-s", "--format=%H%x00%an%x00%aI%x00%s", sha])
        full, author, date, subject = (out.rstrip("\n").split("\x00") + ["", "", "", ""])[:4]
        return {"sha": full, "author": author, "date": date, "subject": subject}

    # -- plumbing ----------------------------------------------------------------------------

    def _proc(
        self, args: list[str], *, in_repo: bool = True, text: bool = True
    ) -> subprocess.CompletedProcess:
        cmd = ["git"]
        if in_repo:
            cmd += ["-C", str(self.git_dir)]
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            return subprocess.run(
                cmd + args, capture_output=True, text=text, timeout=self.timeout_s, env=env, check=False
            )
        except FileNotFoundError:
            raise GitError("the `git` executable is not installed") from None
        except subprocess.TimeoutExpired:
            raise GitError(
                f"git {args[0]} timed out after {self.timeout_s:.0f}s on {safe_repo_name(self.repo)}"
            ) from None

    def _run(self, args: list[str], *, in_repo: bool = True, check: bool = True) -> str:
        proc = self._proc(args, in_repo=in_repo)
        if check and proc.returncode != 0:
            msg = _last_line(proc.stderr) or f"exit code {proc.returncode}"
            raise GitError(f"git {args[0]} failed on {safe_repo_name(self.repo)}: {safe_repo_name(msg)}")
        return proc.stdout


def default_mirror_dir(repo: str) -> Path:
    """Persistent mirror location for a remote: $SCHEMA_PIPELINE_CACHE_DIR or ~/.cache/schema-pipeline."""
    base = os.environ.get("SCHEMA_PIPELINE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "schema-pipeline"
    )
    digest = hashlib.sha256(safe_repo_name(repo).encode()).hexdigest()[:16]
    return Path(base) / "mirrors" / f"{digest}.git"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""
