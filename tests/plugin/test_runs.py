# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs in one long-lived QGIS (it stays open for days): a cancel through Processing or the dialog's task
stops within a step and writes nothing, and ten runs in a row leave no memory, thread, file handle or
temporary file behind."""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from mcpn.core.model import threads as threads_policy
from qgis.core import (
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsTask,
)

INPAINT = "mcpn:guidedcloudinpainting"
FAST = {"STEPS": 3, "DEVICE": 1, "SEED": 0}


def run(params, feedback=None):
    import processing

    return processing.run(INPAINT, params, feedback=feedback or QgsProcessingFeedback())


def inpaint_params(scene, out, **changes) -> dict:
    params = {"INPUT": str(scene["target"]), "MASK": str(scene["mask"]), "GUIDES": [str(scene["guide"])]}
    return {**params, **FAST, "OUTPUT": str(out), **changes}


def tif_files(folder) -> list[str]:
    """Files in a folder, without the .aux.xml statistics side files GDAL/QGIS may add."""
    return sorted(name for name in os.listdir(folder) if not name.endswith(".aux.xml"))


class CancelAtStep(QgsProcessingFeedback):
    """Counts the engine's steps (each reports its progress once) and presses Cancel at step ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.steps = at, 0

    def setProgress(self, progress):  # noqa: N802 (QGIS API)
        self.steps += 1
        if self.steps == self.at:
            self.cancel()
        super().setProgress(progress)


def test_cancel_through_processing_stops_at_the_next_step_and_writes_nothing(mcpn_provider, s2_scene):
    out = s2_scene["tmp"] / "cancelled.tif"
    feedback = CancelAtStep(3)
    with pytest.raises(QgsProcessingException, match="The run was cancelled; no output was written"):
        run(inpaint_params(s2_scene, out, STEPS=5000), feedback)
    assert feedback.isCanceled() and feedback.steps == 3  # not one step after the cancel
    assert not out.exists()
    assert tif_files(s2_scene["tmp"]) == ["guide.tif", "mask.tif", "target.tif"]


def test_the_background_task_of_the_dialog_completes_and_cancels(mcpn_provider, s2_scene):
    """As the Processing dialog runs it: a QgsProcessingAlgRunnerTask in QGIS's task manager, then cancelled."""
    alg = QgsApplication.processingRegistry().algorithmById(INPAINT)

    def run_task(out, steps, cancel_on_progress):
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        task = QgsProcessingAlgRunnerTask(alg, inpaint_params(s2_scene, out, STEPS=steps), context, feedback)
        if cancel_on_progress:
            feedback.progressChanged.connect(lambda progress: progress > 0 and task.cancel())
        QgsApplication.taskManager().addTask(task)
        deadline = time.monotonic() + 120
        while (
            task.status() not in (QgsTask.TaskStatus.Complete, QgsTask.TaskStatus.Terminated)
            and time.monotonic() < deadline
        ):
            QgsApplication.processEvents()
            time.sleep(0.01)
        return task.status(), feedback.isCanceled()

    done = s2_scene["tmp"] / "done.tif"
    assert run_task(done, 3, False) == (QgsTask.TaskStatus.Complete, False) and done.is_file()
    cancelled = s2_scene["tmp"] / "cancelled.tif"
    assert run_task(cancelled, 5000, True) == (QgsTask.TaskStatus.Terminated, True)
    assert not cancelled.exists() and tif_files(s2_scene["tmp"]) == ["done.tif", "guide.tif", "mask.tif", "target.tif"]


def status(field: str) -> int:
    """A number of this process's /proc/self/status (Linux): ``VmRSS`` (kB), ``Threads`` ..."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def open_files() -> list[str]:
    """What this process's file descriptors point to (Linux /proc)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor that listed the folder, closed since
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sorted(targets)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
def test_ten_runs_leave_no_memory_thread_file_handle_or_temporary_file(mcpn_provider, s2_scene, monkeypatch):
    """Ten runs in this QGIS, as a batch or a model in a loop: after the tenth the resident memory is within
    10 % of its value after the second (the first runs load torch and warm its pools), and the threads, the
    open files and the temporary files are those after the second run. The CPU is seen as quiet: the thread
    tuner, reacting to other jobs, would otherwise run some fits on other thread counts (other pools, other
    kernels' memory) depending on the machine's load (it has tests of its own)."""
    monkeypatch.setattr(threads_policy.OtherLoad, "cores", lambda self: 0.0)
    outputs = s2_scene["tmp"] / "outputs"
    temporary = Path(tempfile.gettempdir())
    before = {p.name for p in temporary.iterdir()}
    seen = {}
    for index in range(1, 11):
        run(inpaint_params(s2_scene, outputs / f"filled_{index}.tif", SEED=index))
        gc.collect()
        if index in (2, 10):
            threads = (status("Threads"), sorted(t.name for t in threading.enumerate()))  # all, and Python's
            seen[index] = (status("VmRSS") / 1024, threads, open_files())
    (memory_2, threads_2, files_2), (memory_10, threads_10, files_10) = seen[2], seen[10]
    assert memory_10 <= 1.1 * memory_2, f"{memory_2:.0f} MiB after run 2, {memory_10:.0f} MiB after run 10"
    assert threads_10 == threads_2
    assert files_10 == files_2 and not [f for f in files_10 if str(s2_scene["tmp"]) in f]
    assert tif_files(outputs) == sorted(f"filled_{index}.tif" for index in range(1, 11))
    assert tif_files(s2_scene["tmp"]) == ["guide.tif", "mask.tif", "outputs", "target.tif"]
    assert not [name for name in {p.name for p in temporary.iterdir()} - before if "mcpn" in name.lower()]
