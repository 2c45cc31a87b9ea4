"""The steps of a fit as the engine times them: how long each took, and the line that says so in the log.

The fitting loop reports progress after every step; the time between two
consecutive reports is one step. The first report comes after step 1, so the
network's construction and the first step (which also prepares the CPU's
convolution kernels) are left out: what remains is what every further step
costs, the number to compare between runs, machines and ways of running
(plain Python, ``qgis_process``, the QGIS desktop).
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["StepTimer"]


class StepTimer:
    """Times the steps of one fit from its progress calls ``(step, total)``."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.durations: list[float] = []  # seconds of each timed step, in order
        self.first = self.last = 0  # the first and the last step timed
        self._last: tuple[int, float] | None = None  # step and time of the last progress call

    def step(self, step: int) -> float | None:
        """Note a progress call at ``step``; the step's duration when the previous call was the step before."""
        now = self.clock()
        last, self._last = self._last, (step, now)
        if last is None or step != last[0] + 1:
            return None  # the first call, or a repeated final call: no step between
        duration = now - last[1]
        self.durations.append(duration)
        self.first, self.last = self.first or step, step
        return duration

    def summary(self) -> str:
        """``"X ms per step (mean of steps 2-N)"`` (empty when no step was timed)."""
        if not self.durations:
            return ""
        mean = sum(self.durations) / len(self.durations)
        return f"{1000 * mean:.1f} ms per step (mean of steps {self.first}-{self.last})"
