"""Progress for long work: rich's indicator on stderr, only on a terminal, only when slow.

    from convcalc.render.progress import progress, track

    for size in track(range(low, high + 1), "finding sizes"):   # wraps an iterable
        ...
    with progress(total=len(rows), description="batch") as bar:  # or advance by hand
        for chunk in chunks:
            ...
            bar.advance(len(chunk))
    with status("running the torch layers"):                       # one long step: a spinner
        report = engine.verify_summary(...)                         # (shown after ~1 s only)

Nothing is shown (and rich is not imported) when stderr is not a terminal, under ``NO_COLOR``
or ``TERM=dumb`` (a progress bar is made of escape codes), or when the work turns out to be
quick: the indicator appears only once the elapsed time says the whole will take more than
about ``SHOW_AFTER`` seconds. The fast path costs a counter and, every ``CHECK_EVERY`` steps, a
clock read. Stdout is never touched, so ``--json`` output stays one document.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .output import is_terminal, no_escape_codes

T = TypeVar("T")

#: Show the indicator when the work is expected to take longer than this (seconds) ...
SHOW_AFTER = 1.0
#: ... judged once at least this much time has passed (seconds).
JUDGE_AFTER = 0.25
CHECK_EVERY = 64


def wanted() -> bool:
    """Whether a progress indicator may be drawn at all (stderr a terminal, escape codes allowed)."""
    return is_terminal(sys.stderr) and not no_escape_codes()


class Tracker:
    """Counts steps; draws rich's progress bar on stderr once the work looks long."""

    def __init__(self, total: int | None, description: str, *, enabled: bool) -> None:
        self.total = total
        self.description = description
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._next_check = CHECK_EVERY
        self._bar: Any = None
        self._task: Any = None

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self.enabled and self.done >= self._next_check:
            self._next_check = self.done + CHECK_EVERY
            self._maybe_show()

    def update(self, done: int) -> None:
        """Set how much is done (e.g. bytes read so far) instead of counting steps."""
        self.advance(done - self.done)

    def _maybe_show(self) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed < JUDGE_AFTER:
            return
        expected = elapsed / self.done * self.total if self.total else elapsed * 4
        if expected < SHOW_AFTER:
            self.enabled = False  # quick: never look again
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn()]
        self._bar = Progress(*columns, console=Console(file=sys.stderr), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total, completed=self.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextmanager
def progress(total: int | None, description: str, *, enabled: bool | None = None) -> Iterator[Tracker]:
    """A Tracker for work of ``total`` steps (None: unknown), closed (bar removed) at the end."""
    tracker = Tracker(total, description, enabled=wanted() if enabled is None else enabled)
    try:
        yield tracker
    finally:
        tracker.close()


def track(items: Iterable[T], description: str, *, total: int | None = None, enabled: bool | None = None) -> Iterator[T]:
    """``items``, one by one, with a progress indicator when that turns out to be slow."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not (wanted() if enabled is None else enabled):
        yield from items
        return
    with progress(total, description, enabled=True) as tracker:
        for item in items:
            yield item
            tracker.advance()


@contextmanager
def status(description: str, *, after: float = SHOW_AFTER, enabled: bool | None = None) -> Iterator[None]:
    """A spinner with ``description`` on stderr for one long step, shown only if the step is
    still running ``after`` seconds later (a timer thread starts it; nothing runs on a pipe)."""
    if not (wanted() if enabled is None else enabled):
        yield
        return
    import threading

    lock = threading.Lock()
    state: dict[str, Any] = {"done": False, "spinner": None}

    def start() -> None:
        with lock:
            if state["done"]:
                return
            from rich.console import Console

            spinner = Console(file=sys.stderr).status(description)
            spinner.start()
            state["spinner"] = spinner

    timer = threading.Timer(after, start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            if state["spinner"] is not None:
                state["spinner"].stop()
