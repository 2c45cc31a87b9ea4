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

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, Callable

from .errors import Cancelled, InputError
from .fitting import CancelCheck, Log, Progress

__all__ = ["run_tiles", "share_progress"]

_POLL_SECONDS = 0.2


def run_tiles(
    jobs: Sequence[Any],
    fit: Callable[..., list[Any]],
    done: Callable[[Any], None],
    *,
    group_size: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
) -> None:
    """Call ``fit(group_of_jobs)`` over all jobs and ``done(result)`` here as each result arrives.

    Here, jobs go to ``fit`` ``group_size`` at a time (fitted together where it
    can), with per-step progress, the cancel check and the log. On Dask each job
    is one task; progress counts finished tiles and a cancel cancels the tasks
    still queued or running.
    """
    if not jobs:
        return
    if not scheduler:
        groups = [list(jobs[i : i + group_size]) for i in range(0, len(jobs), max(1, group_size))]
        for index, group in enumerate(groups):
            for result in fit(group, share_progress(progress, index, len(groups)), cancel, log):
                done(result)
        return
    with _client(scheduler, log) as client:
        pending = client.map(partial(_fit_one, fit), list(jobs), pure=False)
        finished = 0
        while pending:
            if cancel is not None and cancel():
                client.cancel(pending)
                raise Cancelled("cancelled by the user")
            ready = [future for future in pending if future.done()]
            if not ready:
                time.sleep(_POLL_SECONDS)
                continue
            for future in ready:
                pending.remove(future)
                done(future.result())
                finished += 1
                if progress is not None:
                    progress(finished, len(jobs))


def _fit_one(fit: Callable[..., list[Any]], job: Any) -> Any:
    """One Dask task: the fit of one job."""
    return fit([job])[0]


def share_progress(progress: Progress | None, index: int, count: int) -> Progress | None:
    """Progress of part ``index`` of ``count`` equal parts (tiles, groups, members) as steps of the whole."""
    if progress is None:
        return None
    return lambda step, total: progress(index * total + step, count * total)


def _can_spawn_python() -> bool:
    """Whether worker processes can be started: not inside an application embedding Python, such as QGIS.

    There ``sys.executable`` is the application itself or another Python than the one running, so
    the local cluster uses threads instead (torch releases the GIL while it computes).
    """
    embedded = any(name == "qgis" or name.startswith("qgis.") for name in sys.modules)
    return not embedded and os.path.basename(sys.executable).lower().startswith("python")


@contextmanager
def _client(scheduler: str, log: Log | None) -> Iterator[Any]:
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
        if log:
            kind = "processes" if processes else "threads"
            log(f"starting a local Dask cluster of {workers} worker {kind}, {threads} torch thread(s) each")
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
    if log:
        log(f"sending the tiles to the Dask scheduler at {scheduler}")
    try:
        client = Client(scheduler, timeout="5s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    with client:
        yield client
