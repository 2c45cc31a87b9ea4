"""Tiles on Dask (core.pipeline.distributed): the output of the local run with worker threads (as inside QGIS)
and with worker processes (plain Python), clear errors, and a cancel that leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from mcpn.core.callbacks import Callbacks
from mcpn.core.errors import Cancelled, InputError
from mcpn.core.pipeline import distributed
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.raster.masks import CloudMask


@pytest.fixture
def cloudy(tmp_path, scene, rasters):
    """A 64 px scene whose cloud needs 4 tiles of 40 px: (target, mask, guide) paths."""
    s = scene(size=64)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(64, 10, 54, 10, 30))
    return str(s["target"]), str(mask), str(s["guide"])


def test_dask_worker_threads_give_the_output_of_the_local_run(tmp_path, cloudy, rasters, fast, monkeypatch):
    """Inside QGIS the local cluster runs threads (QGIS's executable cannot start Python workers)."""
    monkeypatch.setattr(distributed, "_can_spawn_python", lambda: False)
    target, mask, guide = cloudy
    here = inpaint_raster(target, CloudMask(mask), [guide], str(tmp_path / "here.tif"), fast(tile_size=40))
    logs: list[str] = []
    dask = inpaint_raster(
        target, CloudMask(mask), [guide], str(tmp_path / "dask.tif"), fast(tile_size=40, scheduler="local:2"),
        callbacks=Callbacks(log=logs.append),
    )  # fmt: skip
    assert here.fitted == dask.fitted == 4
    assert any("local Dask cluster of 2 worker threads" in line for line in logs), logs
    a, b = rasters.info(tmp_path / "here.tif")["data"], rasters.info(tmp_path / "dask.tif")["data"]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


PROCESSES = """
import json, sys
import numpy as np
from osgeo import gdal
from mcpn.core.config import Settings
from mcpn.core.callbacks import Callbacks
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.raster.masks import CloudMask

target, mask, guide, folder = sys.argv[1:5]
logs, fitted, data = [], [], []
for name, scheduler in (("here", None), ("dask", "local:2")):
    settings = Settings(method="stacked", steps=2, device="cpu", tile_size=40, scheduler=scheduler)
    out = f"{folder}/{name}.tif"
    result = inpaint_raster(target, CloudMask(mask), [guide], out, settings, callbacks=Callbacks(log=logs.append))
    fitted.append(result.fitted)
    data.append(gdal.Open(out).ReadAsArray().astype(int))
qgis = [m for m in sys.modules if m.split(".")[0] == "qgis"]
print(json.dumps({"logs": logs, "fitted": fitted, "difference": int(np.abs(data[0] - data[1]).max()), "qgis": qgis}))
"""


def test_dask_worker_processes_from_plain_python_give_the_output_of_the_local_run(tmp_path, cloudy, plain_python_env):
    """From plain Python (no QGIS imported) the local cluster starts worker processes: the tile jobs are pickled,
    sent and fitted there."""
    done = subprocess.run(
        [sys.executable, "-c", PROCESSES, *cloudy, str(tmp_path)],
        capture_output=True, text=True, env={**plain_python_env, "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert any("local Dask cluster of 2 worker processes" in line for line in result["logs"]), result["logs"]
    assert result["fitted"] == [4, 4] and result["qgis"] == []
    assert result["difference"] <= 1


SAFETY_NET = 600  # s: only a hung run waits this long; the tests wait on the events themselves
_STARTED: list[object] = []  # the tile fits started on the Dask workers (threads of this process) ...
_ENDED: list[str] = []  # ... and how each ended
_CHANGED = threading.Condition()
_FIT_ONE = distributed._fit_one


def _watched_fit_one(fit, stopped, job):
    """:func:`distributed._fit_one`, noting when the fit starts and how it ends (module level: Dask pickles it)."""
    with _CHANGED:
        _STARTED.append(job)
    outcome = "finished"
    try:
        return _FIT_ONE(fit, stopped, job)
    except Cancelled:
        outcome = "cancelled"
        raise
    except BaseException as error:
        outcome = f"failed: {error!r}"
        raise
    finally:
        with _CHANGED:
            _ENDED.append(outcome)
            _CHANGED.notify_all()


def test_cancel_on_dask_stops_the_tiles_and_leaves_no_file(tmp_path, cloudy, fast, monkeypatch):
    """A cancel while the tiles run on the workers stops their fits too (each ends at once, not after its 3000
    steps), and no worker thread keeps computing; no output, no scratch file. The test waits for those events
    (every started fit ended, every fitting thread gone), however slowly a loaded CPU tears the cluster down."""
    monkeypatch.setattr(distributed, "_can_spawn_python", lambda: False)
    monkeypatch.setattr(distributed, "_fit_one", _watched_fit_one)
    _STARTED.clear()
    _ENDED.clear()
    target, mask, guide = cloudy
    logs: list[str] = []
    asked: list[float] = []

    def cancel() -> bool:  # asked every 0.2 s while the tiles run: cancel a second after they started
        if any("Dask cluster" in line for line in logs):
            asked.append(time.monotonic())
        return len(asked) > 5

    threads = set(threading.enumerate())
    with pytest.raises(Cancelled):
        inpaint_raster(
            target, CloudMask(mask), [guide], str(tmp_path / "out" / "o.tif"),
            fast(tile_size=40, steps=3000, scheduler="local:2", scope="tile"),
            callbacks=Callbacks(cancel=cancel, log=logs.append),
        )  # fmt: skip
    assert list((tmp_path / "out").iterdir()) == []
    with _CHANGED:
        assert _CHANGED.wait_for(lambda: len(_ENDED) == len(_STARTED), timeout=SAFETY_NET)
    # each ends at its next step as cancelled, also when the cluster closes under it (the run closes it right
    # after setting the cancel event); none runs on to its last step, none fails
    assert _STARTED and all(end == "cancelled" for end in _ENDED), _ENDED

    def left() -> set:  # threads that could still be fitting: Dask's idle infrastructure threads are not
        # (its offload thread stays for every later run; its event loop, profiler and asyncio executor
        # threads may outlive the closed cluster on a loaded CPU)
        infrastructure = ("Dask-Offload", "IO loop", "Profile", "asyncio_")
        return {t for t in set(threading.enumerate()) - threads if not t.name.startswith(infrastructure)}

    for thread in left():
        thread.join(timeout=SAFETY_NET)
    assert not left(), left()


def test_an_unreachable_dask_scheduler_is_a_clear_error(tmp_path, cloudy, fast):
    target, mask, guide = cloudy
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        inpaint_raster(target, CloudMask(mask), [guide], str(tmp_path / "o.tif"), fast(scheduler="tcp://127.0.0.1:9"))
    assert not (tmp_path / "o.tif").exists()


def test_dask_missing_is_a_clear_error(tmp_path, cloudy, fast, monkeypatch):
    """Where dask[distributed] is not installed (it is optional for users): the message says how to install it."""
    for name in ("dask.distributed", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # any import of it fails, as where it is not installed
    target, mask, guide = cloudy
    with pytest.raises(InputError, match=r"running on Dask needs the package dask\[distributed\]: install it with"):
        inpaint_raster(target, CloudMask(mask), [guide], str(tmp_path / "o.tif"), fast(scheduler="local"))
    assert not (tmp_path / "o.tif").exists()
