"""The CPU threads of a fit, and its steps as the engine times them.

**Timing.** The fitting loop reports progress after every step; the time between
two consecutive reports is one step. The first report comes after step 1, so the
network's construction and the first step (which also prepares the CPU's
convolution kernels) are left out: what remains is what every further step
costs, the number to compare between runs, machines and ways of running (plain
Python, ``qgis_process``, the QGIS desktop).

**Threads.** Torch runs each operation of a step on one thread per core, and the
threads wait for each other between operations by spinning. Alone on the CPU
that is the fastest; beside another CPU job (a second fit, a map being drawn, a
build) the cores are shared, a descheduled thread holds up every operation and
the spinning burns the time the others need: measured on two cores, a step took
6x its idle time beside another fit and 2-3x beside one busy process, where a
fair share is 2x and 1-2x (``benchmarks/results/desktop/desktop_speed_before.md``).
Which count is fastest at the moment shows in the steps' own times, so
:class:`ThreadTuner` chooses it from them, during the fit, whenever other
processes use the CPU (on Linux, where ``/proc/stat`` says so; elsewhere torch's
count is kept); it never goes above ``Settings.threads`` when that is set. On a
quiet CPU it keeps all cores (or that many) and tries nothing else: the
thread count changes the order of a step's sums, and so the result (one thread
against two gave another fit within its noise), and the same seed must give the
same result. (Threads that sleep
instead of spinning, ``OMP_WAIT_POLICY=PASSIVE``, soften the collapse but made an
idle step as slow as one thread: 210 instead of 132 ms at 256 px.) One more competitor
lives inside the QGIS executables on Linux: they load the system's OpenBLAS
before Python starts, so torch's matrix products bind to it (the first library
loaded wins the symbol) and OpenBLAS's own pool of spinning threads competes
with torch's; during a fit it is set to one thread.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch

__all__ = ["OtherLoad", "StepTimer", "ThreadTuner", "cpu_threads", "thread_counts"]


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


def thread_counts(most: int) -> list[int]:
    """The thread counts a tuner chooses from: ``most``, then halved down to 1 (8: 8, 4, 2, 1; 6: 6, 3, 1)."""
    counts = [max(1, most)]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return counts


class OtherLoad:
    """The CPU time other processes used, in cores, from ``/proc/stat`` (Linux), over the last ``interval`` seconds
    at least: long enough that a command run meanwhile (a fraction of a second) does not count as another job."""

    def __init__(self, children: bool = False, interval: float = 1.0) -> None:
        self.children = children  # count this process's waited-for children as its own
        self.interval = interval
        self.last = self._now()
        self.value = 0.0

    @staticmethod
    def available() -> bool:
        return Path("/proc/stat").is_file()

    def _now(self) -> tuple[float, float, float]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal (not idle, iowait)
        own = sum(os.times()[: 4 if self.children else 2])
        return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own

    def cores(self) -> float:
        """Other processes' CPU use since the last reading (the previous value until ``interval`` has passed)."""
        if time.monotonic() - self.last[0] < self.interval:
            return self.value  # called after every step: /proc/stat is read once per interval only
        now = self._now()
        (t0, busy0, own0), (t1, busy1, own1) = self.last, now
        self.last, self.value = now, max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)
        return self.value


class ThreadTuner:
    """Chooses how many CPU threads the steps use, from the steps' own times: all cores alone, fewer beside other jobs.

    While other processes leave the CPU alone (``others``: their use in cores, read after every step, below
    ``busy``), the steps keep all cores and nothing is tried, so a fit on a quiet machine runs the same operations
    every time (same seed, same result). When other processes take the CPU, a round compares the current count (its
    last ``window`` steps) with the next count down and up, ``window`` steps each, going further while a count beats
    the best so far by the factor ``gain``, and keeps the fastest; the step after a change is not counted (it
    prepares the kernels for the new count). The count is then held for ``hold`` steps (twice as long after each
    round that confirms it, up to 16 times), unless its steps become ``slower`` times slower than in the round or
    the other processes stop or start: a new round begins at once.
    """

    def __init__(
        self,
        most: int,
        apply: Callable[[int], None],
        others: Callable[[], float],
        window: int = 3,
        hold: int = 100,
        slower: float = 1.3,
        gain: float = 0.9,
        busy: float = 0.5,
    ) -> None:
        self.counts = thread_counts(most)
        self.apply, self.others = apply, others
        self.window, self.base_hold, self.slower, self.gain, self.busy = window, hold, slower, gain, busy
        self.hold = hold
        self.used: dict[int, int] = {}  # steps run per thread count
        self.alone, self.changed = True, False  # other processes leave the CPU alone; since the last round
        self.round: dict[int, float] | None = None  # count -> median step time, while a round is under way
        self.reference, self.held = 0.0, 0  # the kept count's step time in its round; steps since
        self._set(self.counts[0])
        self.fresh = False  # the first step given is timed: the fit's own first step is not given (StepTimer)

    def _set(self, count: int) -> None:
        self.current = count
        self.apply(count)
        self.times: list[float] = []  # the current count's timed steps since it was set or held
        self.fresh = True  # the first step after a change is not timed

    def _begin_round(self, periodic: bool) -> None:
        self.first = self.best = self.current
        self.round = {}
        self.queue: list[int] | None = None  # counts still to time; None until the first count is timed
        self.periodic = periodic
        if len(self.times) >= self.window:
            self._timed()

    def step(self, seconds: float) -> None:
        """One step took ``seconds`` on the current count."""
        self.used[self.current] = self.used.get(self.current, 0) + 1
        alone = self.others() < self.busy
        if alone != self.alone:  # other processes started or stopped using the CPU
            self.alone, self.changed = alone, True
        if self.fresh:
            self.fresh = False
            return
        self.times = (self.times + [seconds])[-self.window :]
        at_rest = self.alone and self.current == self.counts[0]  # all cores and no one else: nothing to tune
        if self.changed and self.round is None:
            self.changed = False
            self.times = [seconds]  # the steps before say nothing of the CPU now
            if not at_rest:
                self._begin_round(periodic=False)
            return
        if len(self.times) < self.window:
            return
        if self.round is not None:
            self._timed()
            return
        if at_rest:
            return
        self.held += 1
        slow = statistics.median(self.times) > self.slower * self.reference
        if slow or self.held >= self.hold:
            self._begin_round(periodic=not slow)

    def _timed(self) -> None:
        """The current count has its ``window`` steps: time the next count, or end the round."""
        self.round[self.current] = statistics.median(self.times)
        if self.queue is None:
            self.queue = self._neighbours(self.current)
        elif self.round[self.current] < self.gain * self.round[self.best]:  # better: go on in that direction
            direction = self.current - self.best
            self.best = self.current
            self.queue = [c for c in self._neighbours(self.current) if (c - self.current) * direction > 0]
        if self.queue:
            self._set(self.queue.pop(0))
            return
        confirmed = self.best == self.first and self.periodic
        self.hold = min(2 * self.hold, 16 * self.base_hold) if confirmed else self.base_hold
        self.reference, self.round, self.held = self.round[self.best], None, 0
        if self.current != self.best:
            self._set(self.best)
        else:
            self.times = []

    def _neighbours(self, count: int) -> list[int]:
        """The next count down, then the next count up (those that exist)."""
        index = self.counts.index(count)
        down = self.counts[index + 1 : index + 2]
        up = self.counts[index - 1 : index] if index > 0 else []
        return down + up

    def summary(self) -> str:
        """``"CPU threads: 2 for 35 steps, 1 for 4"`` (the most used first)."""
        parts = [f"{count} for {steps}" for count, steps in sorted(self.used.items(), key=lambda item: -item[1])]
        return "CPU threads: " + ", ".join(parts) + " steps" if parts else ""


_TUNING = threading.Lock()  # torch's thread count is the process's: one tuner at a time (Dask threads share it)


@contextmanager
def cpu_threads(device: torch.device, threads: int | None = None) -> Iterator[ThreadTuner | None]:
    """The thread policy of one fit on ``device``: torch's CPU thread count, at most ``threads`` (None: no cap),
    tuned from the steps' times on Linux (the tuner; None elsewhere, on one thread, or while another fit of this
    process holds torch's count); torch's thread count and OpenBLAS's are as they were afterwards."""
    if device.type != "cpu" or not _TUNING.acquire(blocking=False):
        yield None
        return
    before = torch.get_num_threads()  # torch's default (one per core) or what the user or a Dask worker set
    most = min(threads, before) if threads else before  # the most the steps use
    try:
        torch.set_num_threads(most)
        with _single_threaded_openblas():
            tuned = most > 1 and OtherLoad.available()
            yield ThreadTuner(most, torch.set_num_threads, OtherLoad().cores) if tuned else None
    finally:
        torch.set_num_threads(before)
        _TUNING.release()


@contextmanager
def _single_threaded_openblas() -> Iterator[None]:
    """OpenBLAS on one thread meanwhile, where the process loaded it globally (the QGIS executables on Linux)."""
    functions = _global_openblas()
    if functions is None:
        yield
        return
    get, set_threads = functions
    before = get()
    set_threads(1)
    try:
        yield
    finally:
        set_threads(before)


def _global_openblas() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """OpenBLAS's thread functions when its symbols are global in this process (torch's BLAS calls then reach it);
    None in plain Python, whose NumPy keeps its OpenBLAS private, and on Windows and macOS, which bind per library."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        process = ctypes.CDLL(None)
        get, set_threads = process.openblas_get_num_threads, process.openblas_set_num_threads
    except (OSError, AttributeError):
        return None
    get.restype, set_threads.argtypes = ctypes.c_int, [ctypes.c_int]
    return get, set_threads
