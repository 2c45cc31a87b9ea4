"""Fitting on the run's device: the CPU thread policy, the step timing, and a fall-back when a GPU runs out of memory.

The device itself is chosen once per run (:meth:`core.choices.Device.resolve`, in ``Settings.device``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import torch

from ..callbacks import Callbacks
from ..config import Settings
from .fitting import Fit, Problem, fit
from .scene import Checkpoints, fit_shared
from .threads import StepTimer, cpu_threads

__all__ = ["fit_on_device", "fit_scene_on_device"]


def fit_on_device(
    problems: Sequence[Problem], settings: Settings, callbacks: Callbacks, device: torch.device | None = None
) -> tuple[list[Fit], torch.device]:
    """Fit the problems together on ``device`` (default: the settings'); the device the fits ran on.

    When a GPU runs out of memory, half the samples are fitted at a time, then
    a single sample is fitted again on the CPU (with a warning).
    """
    device = device or settings.device.torch()
    try:
        with _timed(device, callbacks) as timed:
            return fit(problems, settings, device, timed), device
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
    if len(problems) > 1:
        callbacks.say(f"warning: the GPU ran out of memory fitting {len(problems)} tiles together; trying fewer")
        half = len(problems) // 2
        first, _ = fit_on_device(problems[:half], settings, callbacks, device)
        second, used = fit_on_device(problems[half:], settings, callbacks, device)
        return first + second, used
    callbacks.say("warning: the GPU ran out of memory; fitting again on the CPU (slower)")
    return fit_on_device(problems, settings, callbacks, torch.device("cpu"))


def fit_scene_on_device(problems: Sequence[Problem], settings: Settings, callbacks: Callbacks) -> Checkpoints:
    """:func:`core.model.scene.fit_shared` on the settings' device, with the CPU thread policy and step timing."""
    device = settings.device.torch()
    with _timed(device, callbacks) as timed:
        return fit_shared(problems, settings, device, timed)


@contextmanager
def _timed(device: torch.device, callbacks: Callbacks) -> Iterator[Callbacks]:
    """The callbacks with each step timed and fed to the CPU thread policy (:func:`core.model.threads.cpu_threads`);
    afterwards the log says what a step cost (and on how many threads)."""
    timer = StepTimer()
    with cpu_threads(device) as tuner:

        def progress(step: int, total: int) -> None:
            seconds = timer.step(step)
            if tuner is not None and seconds is not None:
                tuner.step(seconds)
            callbacks.report(step, total)

        yield replace(callbacks, progress=progress)
    if timer.durations:
        callbacks.say(f"fit on {device}: {timer.summary()}" + (f"; {tuner.summary()}" if tuner else ""))
