"""Progress output of the CLI (issue #8): in place on a terminal, throttled lines in logs, nothing with -q;
`apply --format json`; help texts. The CLI runs as a subprocess against the real server; the terminal
is a real pseudo-terminal (pty). Renderer and counter throttling are also checked with a fake clock."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import tempfile
import termios
import time

import pytest

from schema_pipeline import engine
from schema_pipeline.plan.artifact import parse_plan_file
from schema_pipeline.progress import Count, Counter, LineProgress, TerminalProgress, report
from schema_pipeline.state import load_state
from schema_pipeline_tests.test_apply_support import CLI, write_state

TABLES = 300
STAMP = r"\[\s*\d+\.\ds\]"
CLEAR = "\r\x1b[K"
COLOR = re.compile(r"\x1b\[(?:\d+)m")


def big_state(root, tables: int = TABLES) -> str:
    """A state of `tables` CREATE TABLE statements (a few hundred: loading takes about a second)."""
    sql = "".join(f"CREATE TABLE public.t{i:04d} (id bigint PRIMARY KEY, name text NOT NULL, "
                  f"created timestamptz DEFAULT now());\n" for i in range(tables))
    return str(write_state(root, {"a.sql": sql}))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "SCHEMA_PIPELINE_DEBUG", "NO_COLOR", "COLUMNS")}
    env.update(SCHEMA_PIPELINE_CACHE_DIR="off", TERM="xterm-256color")  # no cache: the state is really loaded
    env.update(extra)
    return env


def run_on_tty(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (120 columns) and stdout to a file: (rc, tty, stdout)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([CLI, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=slave,
                                env=env or _env())
        os.close(slave)
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
        out.seek(0)
        stdout = out.read().decode()
    tty = b"".join(chunks).decode()
    assert "Traceback" not in tty, tty
    return rc, tty, stdout


def run_piped(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or _env(),
                         stdin=subprocess.DEVNULL)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def permanent_lines(tty: str) -> list[str]:
    """The lines that stay on the terminal: what is left of each line after its last in-place rewrite."""
    lines = []
    for raw in tty.replace("\r\n", "\n").split("\n"):
        kept = raw.rsplit("\r", 1)[-1] if "\r" in raw else raw
        kept = COLOR.sub("", kept.replace("\x1b[K", ""))
        if kept:
            lines.append(kept)
    return lines


# --- terminal -----------------------------------------------------------------------------------------


def test_tty_updates_one_line_in_place_and_keeps_final_counts(make_db, tmp_path) -> None:
    url = make_db()
    state = big_state(tmp_path / "s")
    rc, tty, stdout = run_on_tty("plan", "--database-url", url, "--state", state, "--format", "json")
    assert rc == 0, tty
    # stdout carries only the plan: parseable, no progress, no terminal control
    doc = json.loads(stdout)
    assert len(doc["steps"]) == 2 * TABLES  # each table and its primary key
    assert "\r" not in stdout and "\x1b" not in stdout and "loading the state" not in stdout
    # in place: the running phase is redrawn after clearing the line, with a bar, k/n and percentage
    updates = re.findall(r"\r(?:\x1b\[2m)?\[\s*\d+\.\ds\](?:\x1b\[0m)? loading the state "
                         r"\[([#-]{20})\] (\d+)/300 statements +(\d+)% \d+\.\ds", tty)
    assert len(updates) >= 3, tty[:3000]
    counts = [int(done) for _, done, _ in updates]
    assert counts == sorted(counts) and 0 < max(counts) < TABLES and len(set(counts)) >= 3
    assert all(abs(int(pct) - 100 * int(done) / TABLES) <= 0.5 for _, done, pct in updates)
    assert all(bar.count("#") == 20 * int(done) // TABLES for bar, done, _ in updates)
    assert tty.count(CLEAR) >= len(updates)
    # finished phases leave one permanent line each, with the final count
    kept = permanent_lines(tty)
    final = [ln for ln in kept if re.fullmatch(STAMP + r" loading the state: 300/300 statements 100% in \d+\.\ds", ln)]
    assert len(final) == 1, kept
    assert any(re.fullmatch(STAMP + r" planning: 4/4 phases 100% in \d+\.\ds \(600 step\(s\)\)", ln) for ln in kept)
    assert any(re.fullmatch(STAMP + r" reading the desired catalog: (\d+)/\1 queries 100% in \d+\.\ds \(\d+ objects\)",
                            ln) for ln in kept), kept
    # nothing of an in-place line survives: every permanent line is a message or a finished phase
    assert not any(re.search(r"\[[#-]{20}\]", ln) for ln in kept), kept
    assert "\x1b[2m" in tty  # colored timestamps on a color terminal


def test_tty_no_color_and_dumb_terminal(make_db, tmp_path) -> None:
    url = make_db()
    state = big_state(tmp_path / "s", 150)
    rc, tty, _ = run_on_tty("plan", "--database-url", url, "--state", state, env=_env(NO_COLOR="1"))
    assert rc == 0 and CLEAR in tty  # still in place, without colors
    assert not COLOR.search(tty), repr(tty[:500])
    rc, tty, _ = run_on_tty("plan", "--database-url", url, "--state", state, env=_env(TERM="dumb"))
    assert rc == 0 and "loading the state: 150/150 statements 100%" in tty
    assert "\x1b" not in tty and "\r" not in tty.replace("\r\n", "\n")  # TERM=dumb: plain lines


def test_tty_error_is_printed_on_a_clean_line(make_db, tmp_path) -> None:
    url = make_db()
    root = tmp_path / "bad"
    big_state(root)
    (root / "z.sql").write_text("CREATE TABLE public.broken (id nosuchtype);\n")
    rc, tty, stdout = run_on_tty("plan", "--database-url", url, "--state", str(root))
    assert rc == 1 and stdout == ""
    at = tty.index("error: z.sql:1: PostgreSQL rejected this statement")
    assert tty[:at].endswith((CLEAR, "\n")), repr(tty[at - 200:at + 40])
    assert "error: z.sql:1" in permanent_lines(tty)[-1]


def test_quiet_prints_nothing(make_db, tmp_path) -> None:
    url = make_db()
    state = big_state(tmp_path / "s", 100)
    rc, tty, stdout = run_on_tty("-q", "plan", "--database-url", url, "--state", state, "--format", "sql")
    assert rc == 0 and tty == "" and "CREATE TABLE \"public\".\"t0099\"" in stdout
    out = run_piped("-q", "apply", "--database-url", url, "--state", state, "--allow-hazards", "all", "--yes")
    assert out.returncode == 0 and out.stderr == "" and "create table public.t0000" in out.stdout
    # without -q the same apply reports on stderr (so the assertion above can fail)
    out = run_piped("apply", "--database-url", url, "--state", state, "--allow-hazards", "all", "--yes")
    assert out.returncode == 0 and "planning: 4/4 phases" in out.stderr


# --- logs (stderr not a terminal) ----------------------------------------------------------------------


def test_piped_stderr_gets_plain_throttled_lines(make_db, tmp_path) -> None:
    url = make_db()
    state = big_state(tmp_path / "s", 600)
    out = run_piped("apply", "--database-url", url, "--state", state, "--allow-hazards", "all", "--yes",
                    "--format", "sql")
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr and "\x1b" not in out.stderr
    assert "[" not in out.stdout.split("\n", 1)[0] and "loading the state" not in out.stdout
    lines = out.stderr.splitlines()
    assert lines and all(re.match(STAMP + " ", ln) for ln in lines), lines
    assert any(re.fullmatch(STAMP + r" loading the state: 600/600 statements 100% in \d+\.\ds", ln) for ln in lines)
    assert any(re.fullmatch(STAMP + r" applying the plan: 1200/1200 steps 100% in \d+\.\ds", ln) for ln in lines)
    assert any("rehearsal: 3/3 phases 100%" in ln for ln in lines) or any("rehearsal skipped" in ln for ln in lines)
    assert lines[-1].endswith("target converged")
    # throttled: intermediate counts of a phase at least a second apart (timestamps have 0.1 s resolution)
    for phase in ("loading the state", "planning", "applying the plan", "reading the target's catalog"):
        stamps = [float(re.match(r"\[\s*([\d.]+)s\]", ln).group(1)) for ln in lines
                  if re.match(STAMP + " " + re.escape(phase) + r": \d+/\d+ \S+ +\d+%$", ln)]
        assert all(b - a >= 0.9 for a, b in zip(stamps, stamps[1:], strict=False)), (phase, stamps)
    # each step is still listed, as before
    assert sum(1 for ln in lines if re.search(r"\] \[\d+/1200\] create table", ln)) == 600


# --- apply --format json --------------------------------------------------------------------------------


def test_apply_format_json_is_the_plan_plus_the_result(make_db, tmp_path) -> None:
    url = make_db("CREATE TABLE public.old (id int)")
    state = big_state(tmp_path / "s", 5)
    out = run_piped("apply", "--database-url", url, "--state", state, "--allow-hazards", "all", "--yes",
                    "--format", "json", "--commit", "abc123")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    result = doc["result"]
    assert len(doc["steps"]) == 11 and result["applied_steps"] == 11 and result["converged"] is True
    assert isinstance(result["release_id"], int) and result["duration_s"] > 0
    assert len(result["step_durations_s"]) == 11 and result["remaining"] is None
    assert parse_plan_file(doc).plan.fingerprint() == doc["plan_fingerprint"]  # still a valid plan file
    again = run_piped("-q", "apply", "--database-url", url, "--state", state, "--yes", "--format", "json")
    doc = json.loads(again.stdout)
    assert again.returncode == 0 and doc["steps"] == []
    assert doc["result"]["applied_steps"] == 0 and doc["result"]["release_id"] is None


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_format_json_of_plan_and_drift_parses(make_db, tmp_path, command) -> None:
    url = make_db()
    out = run_piped(command, "--database-url", url, "--state", big_state(tmp_path / "s", 3), "--format", "json")
    assert out.returncode == (2 if command == "drift" else 0)
    assert len(json.loads(out.stdout)["steps"]) == 6 and "planning: 4/4" in out.stderr


# --- help -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command, codes", [
    ("plan", ["0  success", "2  changes pending (only with --check)", "1  error"]),
    ("apply", ["0  applied and the target converged", "1  error: hazards not allowed", "apply never exits 2"]),
    ("drift", ["0  no drift", "2  drift found", "1  error"]),
    ("review", ["0  no finding at ERROR level", "2  at least one ERROR finding", "1  error"]),
])
def test_help_has_description_examples_and_exit_codes(command, codes) -> None:
    out = run_piped(command, "--help")
    assert out.returncode == 0
    text = out.stdout
    usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n", 1)[0]
    assert usage.startswith(f"usage: schema-pipeline {command}") and len(description.split()) >= 12, description
    examples = text.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert 1 <= len(examples) <= 2 and all(e.startswith(f"  schema-pipeline {command} ") for e in examples)
    exit_codes = text.split("exit codes:\n", 1)[1]
    for code in codes:
        assert code in exit_codes, (command, code)
    assert "--format" in text and "json" in text and "stderr" in text


# --- the progress API (no database) ----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_renderer_throttles_to_one_line_per_second_per_phase() -> None:
    clock, stream = FakeClock(), io.StringIO()
    r = LineProgress(stream, clock=clock)
    for i in range(81):  # 80 counts over 5 s, interleaved with another phase
        r.count(Count("load", i, 80, "statements"))
        r.count(Count("other", i, 200))
        clock.now += 0.0625
    r("a message")
    lines = stream.getvalue().splitlines()
    load = [ln for ln in lines if " load: " in ln]
    assert load == ["[   1.0s] load: 16/80 statements  20%", "[   2.0s] load: 32/80 statements  40%",
                    "[   3.0s] load: 48/80 statements  60%", "[   4.0s] load: 64/80 statements  80%",
                    "[   5.0s] load: 80/80 statements 100% in 5.0s"]
    assert [ln for ln in lines if " other: " in ln][0] == "[   1.0s] other: 16/200   8%"
    assert lines[-1] == "[   5.1s] a message" and "\r" not in stream.getvalue()


def test_terminal_renderer_rewrites_one_line_and_clears_before_messages() -> None:
    clock, stream = FakeClock(), io.StringIO()
    r = TerminalProgress(stream, tick=0, clock=clock)
    r.count(Count("load", 0, 4, "statements"))
    clock.now += 0.1
    r.count(Count("load", 2, 4, "statements", "half"))
    r("hello")
    clock.now += 0.1
    r.count(Count("load", 4, 4, "statements"))
    r.close()
    text = stream.getvalue()
    assert text.startswith("\r[   0.0s] load [--------------------] 0/4 statements   0% 0.0s")
    assert f"{CLEAR}\r[   0.1s] load [##########----------] 2/4 statements  50% 0.1s half" in text
    assert f"{CLEAR}[   0.1s] hello\n\r[   0.1s] load [##########" in text  # cleared, printed, redrawn
    assert text.endswith(f"{CLEAR}[   0.2s] load: 4/4 statements 100% in 0.2s\n")


def test_counter_throttles_at_the_source_and_plain_callables_see_only_final_counts() -> None:
    events: list[Count] = []

    class Sink:
        def __call__(self, message: str) -> None:
            events.append(Count(message, -1, -1))

        def count(self, event: Count) -> None:
            events.append(event)

    c = Counter(Sink(), "load", 1000, interval=3600)
    for i in range(1001):
        c.update(i)
    c.finish()
    assert [e.done for e in events] == [0, *range(20, 1001, 20)]  # every 2%, the final once
    plain: list[str] = []
    c = Counter(plain.append, "load", 1000, unit="statements", interval=0)
    for i in range(1001):
        c.update(i)
    report(plain.append, "a message")
    assert plain == ["load: 1000/1000 statements", "a message"]


def test_engine_plan_with_a_plain_callable_gets_one_line_per_phase(make_db, tmp_path) -> None:
    url = make_db()
    messages: list[str] = []
    result = engine.plan(url, load_state(big_state(tmp_path / "s", 120)), progress=messages.append)
    assert len(result.plan.steps) == 240
    text = "\n".join(messages)
    assert "loading the state: 120/120 statements" in text and "planning: 4/4 phases (240 step(s))" in text
    assert not any(re.search(r": \d+/\d+", m) and not re.search(r": (\d+)/\1\b", m) for m in messages), messages
