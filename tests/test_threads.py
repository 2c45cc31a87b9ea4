"""The engine's own step timing and CPU thread policy (core.model.threads), on real fits."""

from __future__ import annotations

import re

import torch
from conftest import fast
from mcpn.core.model.device import fit_on_device
from mcpn.core.model.fitting import Callbacks, Problem
from mcpn.core.model.threads import StepTimer

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


def test_a_fit_logs_what_a_step_cost_and_still_reports_progress():
    logs, progress = [], []
    fit_on_device(
        [problem()], fast(steps=5, stopping="fixed"), CPU, Callbacks(lambda s, n: progress.append(s), None, logs.append)
    )
    assert progress[:5] == [1, 2, 3, 4, 5]
    line = next(line for line in logs if "ms per step" in line)
    assert re.fullmatch(r"fit on cpu: \d+\.\d ms per step \(mean of steps 2-5\)", line), line
