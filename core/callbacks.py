"""How a run reports progress and log lines, and learns that it is cancelled (no torch, no QGIS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import Cancelled

__all__ = ["Callbacks"]


@dataclass
class Callbacks:
    """How a run reports progress and log lines and learns that it is cancelled (each optional)."""

    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    log: Callable[[str], None] | None = None

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

        A part's progress ``(step, total)`` becomes steps of the whole, ``total`` steps a part.
        """
        if self.progress is None:
            return self
        progress = self.progress
        return Callbacks(
            lambda step, total: progress(index * total + length * step, count * total), self.cancel, self.log
        )
