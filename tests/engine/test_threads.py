"""The engine's own step timing and CPU thread policy (core.model.threads), on real fits."""

from __future__ import annotations

import ctypes.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mcpn.core.callbacks import Callbacks
from mcpn.core.model import threads
from mcpn.core.model.device import fit_on_device
from mcpn.core.model.fitting import Problem
from mcpn.core.model.threads import StepTimer, ThreadTuner, thread_counts

CPU = torch.device("cpu")


def problem(size: int = 32) -> Problem:
    generator = torch.Generator().manual_seed(0)
    known = (torch.rand(1, 3, size, size, generator=generator) > 0.2).float()
    return Problem(
        target=torch.rand(1, 3, size, size, generator=generator) * known,
        target_known=known,
        guides=[torch.rand(1, 3, size, size, generator=generator)],
        guide_valid=[torch.ones(1, 3, size, size)],
        shape=(size, size),
    )


def test_step_timer_times_consecutive_progress_calls_only():
    ticks = iter([0.0, 1.0, 1.5, 2.5, 2.5])
    timer = StepTimer(clock=lambda: next(ticks))
    assert [timer.step(s) for s in (1, 2, 3, 4, 4)] == [None, 1.0, 0.5, 1.0, None]  # the final call repeats step 4
    assert timer.summary() == "833.3 ms per step (mean of steps 2-4)"


def test_a_fit_logs_what_a_step_cost_and_still_reports_progress(fast):
    logs, progress = [], []
    fit_on_device(
        [problem()], fast(steps=5, stopping="fixed"), Callbacks(lambda s, n: progress.append(s), None, logs.append), CPU
    )
    assert progress[:5] == [1, 2, 3, 4, 5]
    line = next(line for line in logs if "ms per step" in line)
    assert re.match(r"fit on cpu: \d+\.\d ms per step \(mean of steps 2-5\)", line), line


def steps(tuner: ThreadTuner, cost: dict[int, float], count: int) -> str:
    """Run ``count`` steps whose time depends on the thread count (seconds per count); the counts used, as digits."""
    used = ""
    for _ in range(count):
        used += str(tuner.current)
        tuner.step(cost[tuner.current])
    return used


class Others:
    """Other processes' CPU use as a tuner reads it, set by the test (cores)."""

    def __init__(self) -> None:
        self.cores = 0.0

    def __call__(self) -> float:
        return self.cores


IDLE = {2: 0.13, 1: 0.20}  # stacked at 256 px on this 2-core machine: two threads are faster alone ...
SHARED = {2: 0.60, 1: 0.19}  # ... and 3x slower beside another CPU job, one thread is not


def test_thread_counts_halve_down_to_one():
    assert thread_counts(8) == [8, 4, 2, 1] and thread_counts(6) == [6, 3, 1] and thread_counts(1) == [1]


def test_alone_the_tuner_keeps_all_cores_and_tries_nothing_else():
    applied = []
    tuner = ThreadTuner(2, applied.append, Others())
    assert steps(tuner, IDLE, 500) == "2" * 500 and applied == [2]


def test_beside_another_job_the_tuner_drops_a_thread_and_takes_it_back_when_the_job_ends():
    others = Others()
    tuner = ThreadTuner(2, torch.set_num_threads, others)
    before = torch.get_num_threads()
    try:
        assert steps(tuner, IDLE, 20) == "2" * 20
        others.cores = 1.0  # another job starts: a round after the next step
        shared = steps(tuner, SHARED, 60)
        assert shared.startswith("222") and set(shared[3:]) == {"1"}  # 3 steps timed on 2 threads, then 1
        assert torch.get_num_threads() == 1
        others.cores = 0.0  # it ends: a round at the next reading, and all cores again
        again = steps(tuner, IDLE, 60)
        assert set(again[-40:]) == {"2"}
        assert tuner.summary().startswith("CPU threads: 2 for ")
    finally:
        torch.set_num_threads(before)


def test_the_tuner_goes_further_down_while_it_gains():
    others = Others()
    others.cores = 1.0
    tuner = ThreadTuner(8, lambda count: None, others)
    used = steps(tuner, {8: 1.0, 4: 0.5, 2: 0.3, 1: 0.35}, 60)
    assert used.endswith("2" * 30) and "1" in used


def test_quiet_cpu_fits_run_on_all_cores_only_and_one_seed_gives_one_result(monkeypatch, fast):
    """The same seed gives the same result: alone on the CPU no other thread count is ever tried."""
    monkeypatch.setattr(threads.OtherLoad, "cores", lambda self: 0.0)  # this test's CPU is quiet, whatever else runs
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    logs, outputs = [], []
    try:
        for _ in range(2):
            fits, _ = fit_on_device([problem(64)], fast(steps=20, stopping="fixed"), Callbacks(log=logs.append), CPU)
            outputs.append(fits[0].output)
    finally:
        torch.set_num_threads(before)
    assert [line.split("; ")[-1] for line in logs if "ms per step" in line] == [
        "CPU threads: 2 for 19 steps"
    ] * 2  # steps 2-20 timed
    assert np.array_equal(*outputs)


def test_a_cpu_fit_tunes_its_threads_and_gives_torchs_count_back(monkeypatch, fast):
    """Beside another job (its load held at one core here), a 12-step fit on 2 threads times 2, then 1 thread in
    one round (3 steps each, the step after a change not counted) and keeps the faster: the log's split is one of
    the two the policy can give, and torch ran each step on the count the tuner chose."""
    monkeypatch.setattr(threads.OtherLoad, "cores", lambda self: 1.0)
    kept_two, kept_one = "22211112222", "22211111111"  # counts of steps 2-12 as ThreadTuner gives them
    splits = {"CPU threads: 2 for 7, 1 for 4 steps": kept_two, "CPU threads: 1 for 8, 2 for 3 steps": kept_one}
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        logs, seen = [], []
        callbacks = Callbacks(lambda step, total: seen.append(str(torch.get_num_threads())), None, logs.append)
        fit_on_device([problem()], fast(steps=12, stopping="fixed"), callbacks, CPU)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    line = next(line for line in logs if "ms per step" in line)
    split = line.split("; ")[-1]
    assert split in splits, line
    assert "".join(seen[:11]) == splits[split]  # after step k's report: the count of step k + 1


def test_the_threads_setting_caps_a_cpu_fit_and_the_log_says_so(fast):
    """``Settings.threads`` (the provider's *CPU threads*): one thread is not tuned, and the log still says it."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        logs, seen = [], []
        callbacks = Callbacks(lambda step, total: seen.append(torch.get_num_threads()), None, logs.append)
        fit_on_device([problem()], fast(steps=4, stopping="fixed", threads=1), callbacks, CPU)
        assert set(seen) == {1} and torch.get_num_threads() == 2  # torch's count is given back
        line = next(line for line in logs if "ms per step" in line)
        assert line.endswith("; CPU threads: 1 for 3 steps"), line
    finally:
        torch.set_num_threads(before)


OPENBLAS_CHECK = """
import ctypes, torch
from mcpn.core.model.threads import cpu_threads
blas = ctypes.CDLL(None)
blas.openblas_set_num_threads(2)
with cpu_threads(torch.device("cpu")):
    during = blas.openblas_get_num_threads()
print(during, blas.openblas_get_num_threads())
"""


def test_an_openblas_loaded_before_python_runs_on_one_thread_during_a_fit():
    """As in the QGIS executables on Linux, which link the system's OpenBLAS (torch's BLAS calls then reach it)."""
    library = ctypes.util.find_library("openblas")
    if sys.platform != "linux" or library is None:
        pytest.skip("no system OpenBLAS to load")
    env = {**os.environ, "LD_PRELOAD": library, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", OPENBLAS_CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "2"]
