"""Progress reporting shared by the engine, the apply executor, the rehearsal, the backends and the CLI.

A progress callback is any `ProgressFn`: `progress("message")`. Long work also reports counted
progress with `report(progress, phase, done=k, total=n)`, or through a throttled `Counter`:

- a callback that implements `CountedProgress` (the CLI's renderers below) receives every `Count`
  through `progress.count(event)` and shows a bar or k/n;
- a plain callable (a Dagster log, a test collecting messages) only receives the completed count
  of each phase, as one line (`str(event)`), so logs are not flooded with intermediate counts.

The renderers (`make_renderer`) write to a stream (the CLI passes stderr, never stdout): on a
terminal one line updated in place plus one permanent line per message and finished phase; elsewhere
plain timestamped lines, counted ones at most once a second per phase.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TextIO, runtime_checkable

__all__ = ["Count", "CountedProgress", "Counter", "LineProgress", "NullProgress", "ProgressFn", "Renderer",
           "TerminalProgress", "make_renderer", "report", "stop"]

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Count:
    """Counted progress of one phase: `done` of `total` units. The phase ends when done >= total, or
    early when `stopped` (the emitter then says why in a plain message)."""

    phase: str
    done: int
    total: int
    unit: str = ""
    detail: str = ""
    stopped: bool = False

    @property
    def final(self) -> bool:
        return self.stopped or self.done >= self.total

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, max(0.0, self.done / self.total))

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.phase}: {self.done}/{self.total}{unit}" + (f" ({self.detail})" if self.detail else "")


@runtime_checkable
class CountedProgress(Protocol):
    """A progress callback that also shows counted work."""

    def __call__(self, message: str, /) -> None: ...

    def count(self, event: Count, /) -> None: ...


def report(progress: ProgressFn | None, message: str, done: int | None = None, total: int | None = None, *,
           unit: str = "", detail: str = "") -> None:
    """Send `message` to `progress` (None: nothing). With `done` and `total`, `message` is the name of a
    phase and this is its counted progress (see the module docstring for who receives what)."""
    if progress is None:
        return
    if done is None or total is None:
        progress(message)
        return
    event = Count(message, done, total, unit, detail)
    if isinstance(progress, CountedProgress):
        progress.count(event)
    elif event.final:
        progress(str(event))


def stop(progress: ProgressFn | None, phase: str) -> None:
    """End a counted phase before its total (skipped work); plain callables see nothing."""
    if isinstance(progress, CountedProgress):
        progress.count(Count(phase, 0, 0, stopped=True))


class Counter:
    """Counted progress of one phase, throttled at the source: an update is sent when the count moved by
    `fraction` of the total or `interval` seconds passed since the last one; the final count always is
    (once). Creating one starts the phase (sends 0/total). Thread-safe."""

    def __init__(self, progress: ProgressFn | None, phase: str, total: int, *, unit: str = "",
                 interval: float = 0.2, fraction: float = 0.02) -> None:
        self.progress, self.phase, self.total, self.unit = progress, phase, max(0, total), unit
        self.done = 0
        self._interval, self._step = interval, max(1, int(self.total * fraction))
        self._sent_done, self._sent_at = -1, float("-inf")
        self._lock = threading.Lock()
        self.update(0)

    def update(self, done: int, detail: str = "") -> None:
        """The phase has done `done` units."""
        with self._lock:
            self.done = min(done, self.total)
            self._maybe_send(detail)

    def advance(self, n: int = 1, detail: str = "") -> None:
        """`n` more units are done."""
        with self._lock:
            self.done = min(self.done + n, self.total)
            self._maybe_send(detail)

    def finish(self, detail: str = "") -> None:
        """The phase is complete (sends the final count)."""
        self.update(self.total, detail)

    def _maybe_send(self, detail: str) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if self.done >= self.total:
            if self._sent_done >= self.total:
                return
        elif self.done - self._sent_done < self._step and now - self._sent_at < self._interval:
            return
        self._sent_done, self._sent_at = self.done, now
        report(self.progress, self.phase, self.done, self.total, unit=self.unit, detail=detail)


# --- rendering (the CLI) -------------------------------------------------------------------------------

_DIM, _GREEN, _RESET, _CLEAR_LINE = "\033[2m", "\033[32m", "\033[0m", "\r\033[K"
BAR_WIDTH = 20


def color_allowed(stream: TextIO) -> bool:
    """ANSI colors on `stream`: a terminal, NO_COLOR unset or empty, TERM not 'dumb'."""
    return _isatty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _width(stream: TextIO) -> int:
    """Columns of the terminal behind `stream` (COLUMNS, else 100 when unknown)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    return max(40, columns or int(os.environ.get("COLUMNS", "0") or 0) or 100)


def _counted(event: Count, elapsed: float | None = None) -> str:
    """'phase: k/n unit 45%', with the phase's duration when it is done."""
    unit = f" {event.unit}" if event.unit else ""
    took = f" in {elapsed:.1f}s" if elapsed is not None else ""
    detail = f" ({event.detail})" if event.detail else ""
    return f"{event.phase}: {event.done}/{event.total}{unit} {event.fraction:4.0%}{took}{detail}"


class Renderer:
    """Common part of the CLI renderers: timestamps relative to the start, one lock, an output stream."""

    def __init__(self, stream: TextIO, *, color: bool = False, clock: Callable[[], float] = time.monotonic):
        self.stream, self.color, self.clock = stream, color, clock
        self.started = clock()
        self._lock = threading.Lock()
        self._starts: dict[str, float] = {}  # phase -> when its first count arrived

    def _stamp(self) -> str:
        stamp = f"[{self.clock() - self.started:6.1f}s]"
        return f"{_DIM}{stamp}{_RESET}" if self.color else stamp

    def _done(self, text: str) -> str:
        return f"{_GREEN}{text}{_RESET}" if self.color else text

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def __call__(self, message: str, /) -> None:
        raise NotImplementedError

    def count(self, event: Count, /) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Before anything else is printed (output, prompt, error): leave a clean line; forget open phases."""
        with self._lock:
            self._starts.clear()


class LineProgress(Renderer):
    """Not a terminal (CI logs): one timestamped line per message; counted phases at most once every
    `interval` seconds each (a phase shorter than that shows only its final count)."""

    def __init__(self, stream: TextIO, *, interval: float = 1.0, color: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(stream, color=color, clock=clock)
        self.interval = interval
        self._last: dict[str, float] = {}  # phase -> when its last line was written

    def __call__(self, message: str, /) -> None:
        with self._lock:
            self._write(f"{self._stamp()} {message}\n")

    def count(self, event: Count, /) -> None:
        with self._lock:
            now = self.clock()
            start = self._starts.setdefault(event.phase, now)
            if event.final:
                self._starts.pop(event.phase, None)
                self._last.pop(event.phase, None)
                if not event.stopped:
                    self._write(f"{self._stamp()} {self._done(_counted(event, now - start))}\n")
            elif now - self._last.get(event.phase, start) >= self.interval:
                self._last[event.phase] = now
                self._write(f"{self._stamp()} {_counted(event)}\n")

    def close(self) -> None:
        super().close()
        with self._lock:
            self._last.clear()


class TerminalProgress(Renderer):
    """A terminal: messages and finished phases are permanent lines; the phases in progress share one
    line below them, rewritten in place ('\\r' + clear to end of line) with a bar, k/n, percentage and
    the elapsed time (refreshed every `tick` seconds even when no count arrives)."""

    def __init__(self, stream: TextIO, *, color: bool = False, tick: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(stream, color=color, clock=clock)
        self.tick = tick
        self._active: dict[str, Count] = {}
        self._shown = False
        self._drawn_at = 0.0
        self._ticker: threading.Thread | None = None
        self._closed = threading.Event()

    def __call__(self, message: str, /) -> None:
        with self._lock:
            self._erase()
            self._write(f"{self._stamp()} {message}\n")
            self._draw()

    def count(self, event: Count, /) -> None:
        with self._lock:
            now = self.clock()
            start = self._starts.setdefault(event.phase, now)
            if event.final:
                self._active.pop(event.phase, None)
                self._starts.pop(event.phase, None)
                self._erase()
                if not event.stopped:
                    self._write(f"{self._stamp()} {self._done(_counted(event, now - start))}\n")
                self._draw()
                return
            self._active[event.phase] = event
            if now - self._drawn_at >= 0.05 or not self._shown:
                self._erase()
                self._draw()
            self._start_ticker()

    def close(self) -> None:
        with self._lock:
            self._active.clear()
            self._starts.clear()
            self._erase()
        self._closed.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=2 * self.tick)
        self._ticker = None
        self._closed = threading.Event()

    def _bar(self, event: Count) -> str:
        filled = int(event.fraction * BAR_WIDTH)  # full only when done
        return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"

    def _draw(self) -> None:
        """The latest phase in full (bar, k/n, percentage, its elapsed time, detail), the others as k/n."""
        if not self._active:
            return
        *others, (phase, event) = self._active.items()
        unit = f" {event.unit}" if event.unit else ""
        elapsed = self.clock() - self._starts.get(phase, self.clock())
        line = (f"{phase} {self._bar(event)} {event.done}/{event.total}{unit} {event.fraction:4.0%} {elapsed:.1f}s"
                + (f" {event.detail}" if event.detail else ""))
        line += "".join(f" | {name} {e.done}/{e.total}" for name, e in reversed(others))
        line = line[: _width(self.stream) - 11]  # 11: '[  12.3s] ' and the cursor
        self._write(f"\r{self._stamp()} {line}")
        self._shown, self._drawn_at = True, self.clock()

    def _erase(self) -> None:
        if self._shown:
            self._write(_CLEAR_LINE)
            self._shown = False

    def _start_ticker(self) -> None:
        if self._ticker is None and self.tick > 0:
            self._ticker = threading.Thread(target=self._tick, args=(self._closed,), name="progress-ticker",
                                            daemon=True)
            self._ticker.start()

    def _tick(self, closed: threading.Event) -> None:
        while not closed.wait(self.tick):
            with self._lock:
                if self._active and self.clock() - self._drawn_at >= self.tick:
                    self._erase()
                    self._draw()


class NullProgress(Renderer):
    """-q: nothing at all."""

    def __call__(self, message: str, /) -> None:
        pass

    def count(self, event: Count, /) -> None:
        pass


def make_renderer(stream: TextIO, *, quiet: bool = False) -> Renderer:
    """The renderer for `stream`: nothing when quiet; in place on a terminal (unless TERM=dumb); else lines."""
    if quiet:
        return NullProgress(stream)
    if _isatty(stream) and os.environ.get("TERM") != "dumb":
        return TerminalProgress(stream, color=color_allowed(stream))
    return LineProgress(stream)

