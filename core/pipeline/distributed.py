"""Running tile fits: one after the other in this process, or one Dask task per tile.

``scheduler`` chooses where:

- ``None`` or ``""``: here, one tile after the other, with per-step progress;
- ``"local"`` or ``"local:N"``: a Dask ``LocalCluster`` of N workers (default:
  half the CPU cores), one thread each, started for the run and closed after;
- any other text: the address of a running Dask scheduler
  (``tcp://host:8786``), whose workers must see the same raster paths and
  have this package and torch installed.

Dask (``dask[distributed]``) is imported only when a scheduler is given.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, Callable

from ..callbacks import Callbacks
from ..errors import InputError

__all__ = ["run_tiles"]

_CANCEL_CHECK_SECONDS = 0.2


def run_tiles(
    jobs: Sequence[Any],
    fit: Callable[..., list[Any]],
    done: Callable[[Any], None],
    group_size: int,
    scheduler: str | None,
    callbacks: Callbacks,
) -> None:
    """Call ``fit(group_of_jobs, callbacks)`` over all jobs and ``done(result)`` here as each result arrives.

    Here, jobs go to ``fit`` ``group_size`` at a time (fitted together where it
    can), with per-step progress, the cancel check and the log. On Dask each job
    is one task; progress counts finished tiles, and a cancel (or a failed tile)
    drops the tasks still queued and stops the fits running on the workers at
    their next step.
    """
    if not jobs:
        return
    if not scheduler:
        groups = [list(jobs[i : i + group_size]) for i in range(0, len(jobs), max(1, group_size))]
        for index, group in enumerate(groups):
            for result in fit(group, callbacks.part(index, len(groups))):
                done(result)
        return
    with _client(scheduler, callbacks) as client:
        from dask.distributed import Event, wait  # importable: _client has checked

        stop = Event(f"mcpn-cancel-{uuid.uuid4().hex}", client=client)
        pending = set(client.map(partial(_fit_one, fit, _Stopped(stop.name)), list(jobs), pure=False))
        try:
            while pending:
                callbacks.check_cancel()
                try:
                    ready, pending = wait(pending, timeout=_CANCEL_CHECK_SECONDS, return_when="FIRST_COMPLETED")
                except (TimeoutError, asyncio.TimeoutError):
                    continue
                for future in ready:
                    done(future.result())
                callbacks.report(len(jobs) - len(pending), len(jobs))
        except BaseException:  # cancelled, or a tile failed: the fits still running stop at their next step
            stop.set()
            client.cancel(list(pending))
            raise


class _Stopped:
    """The cancel check of the tile fits on the workers: whether the run's Dask event is set (asked of the
    scheduler at most every ``_CANCEL_CHECK_SECONDS``); picklable, for worker processes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked = 0.0
        self.stopped = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.stopped and now - self.asked >= _CANCEL_CHECK_SECONDS:
            from dask.distributed import Event

            try:
                self.stopped = Event(self.name).is_set()
            except Exception:  # no client, or its connections closed: the run that started this fit is over
                self.stopped = True
            self.asked = now
        return self.stopped


def _fit_one(fit: Callable[..., list[Any]], stopped: _Stopped, job: Any) -> Any:
    """One Dask task: the fit of one job, stopped at its next step once the run is cancelled."""
    return fit([job], Callbacks(cancel=stopped))[0]


def _can_spawn_python() -> bool:
    """Whether worker processes can be started: not inside an application embedding Python, such as QGIS.

    There ``sys.executable`` is the application itself or another Python than the one running, so
    the local cluster uses threads instead (torch releases the GIL while it computes).
    """
    embedded = any(name == "qgis" or name.startswith("qgis.") for name in sys.modules)
    return not embedded and os.path.basename(sys.executable).lower().startswith("python")


@contextmanager
def _client(scheduler: str, callbacks: Callbacks) -> Iterator[Any]:
    """A Dask client on a local cluster made for the run, or on the scheduler at an address."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "running on Dask needs the package dask[distributed]: install it with "
            "'python -m pip install \"dask[distributed]\"' in the Python that runs QGIS"
        ) from None
    if scheduler == "local" or scheduler.startswith("local:"):
        cores = os.cpu_count() or 1
        try:
            workers = int(scheduler.partition(":")[2] or max(1, cores // 2))
        except ValueError:
            raise InputError(f"cannot read the worker count in {scheduler!r}: use local or local:N") from None
        if workers < 1:
            raise InputError("a local Dask cluster needs at least one worker")
        threads = str(max(1, cores // workers))
        processes = _can_spawn_python()
        kind = "processes" if processes else "threads"
        callbacks.say(f"starting a local Dask cluster of {workers} worker {kind}, {threads} torch thread(s) each")
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            **({"env": env} if processes else {}),
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    callbacks.say(f"sending the tiles to the Dask scheduler at {scheduler}")
    try:
        client = Client(scheduler, timeout="5s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    with client:
        yield client
