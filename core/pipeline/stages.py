"""Where a run's time goes, stage by stage: the log and the run report say it (one note)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

__all__ = ["STAGES", "STAGES_NOTE", "describe", "merged", "timed"]

# in the order a run goes through them; "read" and "estimates" are per tile, summed over the tiles
STAGES_NOTE = "time by stage: "  # how the note starts
STAGES = ("preparation", "self-validation", "read", "estimates", "fit", "prediction", "refinement", "write")


@contextmanager
def timed(times: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``times[stage]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        times[stage] = times.get(stage, 0.0) + time.perf_counter() - started


def merged(parts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The stage times of several parts (tiles) added up."""
    total: dict[str, float] = {}
    for part in parts:
        for stage, seconds in part.items():
            total[stage] = total.get(stage, 0.0) + seconds
    return total


def describe(times: Mapping[str, float], seconds: float) -> str:
    """One line: each stage's seconds, then the run's wall time (tiles fitted in parallel sum to more)."""
    stages = ", ".join(f"{stage} {times[stage]:.1f} s" for stage in STAGES if times.get(stage))
    return f"{STAGES_NOTE}{stages}; the whole run {seconds:.1f} s"
