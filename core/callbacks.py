"""How a run reports progress and log lines, and learns that it is cancelled (no torch, no QGIS)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from .errors import Cancelled

__all__ = ["Callbacks"]


@dataclass
class Callbacks:
    """How a run reports progress and log lines, learns that it is cancelled, and when its time is up (each
    optional; ``deadline`` is a :func:`time.monotonic` value)."""

    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    log: Callable[[str], None] | None = None
    deadline: float | None = None

    def within(self, minutes: float) -> Callbacks:
        """These callbacks with a deadline ``minutes`` from now (0: none)."""
        return replace(self, deadline=time.monotonic() + 60 * minutes) if minutes > 0 else self

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled by the user")

    def report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def part(self, index: int, count: int, length: int = 1) -> Callbacks:
        """The callbacks of parts ``index`` to ``index + length`` of ``count`` equal parts (tiles, members).

        A part's progress ``(step, total)`` becomes steps of the whole, ``total`` steps a part; asked for as the
        part starts, its deadline is its share of the time left: ``length`` of the ``count - index`` parts to go.
        """
        progress, deadline = self.progress, self.deadline
        if deadline is not None:
            now = time.monotonic()
            deadline = now + max(0.0, deadline - now) * length / max(1, count - index)
        if progress is not None:
            progress = lambda step, total: self.progress(index * total + length * step, count * total)  # noqa: E731
        return Callbacks(progress, self.cancel, self.log, deadline)
