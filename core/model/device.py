"""The compute device: its choice, and fitting there with a fall-back when a GPU runs out of memory."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..config import Settings
from ..errors import DeviceError
from .fitting import Callbacks, Fit, Problem, fit
from .threads import StepTimer, cpu_threads

__all__ = ["fit_on_device", "select_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def select_device(name: str = "auto") -> torch.device:
    """Resolve ``auto`` (CUDA, then Apple MPS, then CPU) or check a named device (one of :data:`core.config.DEVICES`).

    A named device that is not usable raises :class:`DeviceError` instead of
    silently running somewhere else.
    """
    kind = name.split(":")[0]
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(
            f"device 'cuda' was requested but no CUDA GPU is usable (PyTorch {torch.__version__} is {build}); "
            "choose 'auto' or 'cpu'"
        )
    if kind == "mps" and not _mps_available():
        raise DeviceError("device 'mps' was requested but Apple Metal is not available; choose 'auto' or 'cpu'")
    return torch.device(name)


def fit_on_device(
    problems: Sequence[Problem], settings: Settings, device: torch.device, callbacks: Callbacks
) -> tuple[list[Fit], torch.device]:
    """Fit the problems together on ``device``; the device the fits ran on.

    When a GPU runs out of memory, half the samples are fitted at a time, then
    a single sample is fitted again on the CPU (with a warning).
    """
    try:
        return _timed_fit(problems, settings, device, callbacks), device
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
    if len(problems) > 1:
        callbacks.say(f"warning: the GPU ran out of memory fitting {len(problems)} tiles together; trying fewer")
        half = len(problems) // 2
        first, _ = fit_on_device(problems[:half], settings, device, callbacks.part(0, 2))
        second, used = fit_on_device(problems[half:], settings, device, callbacks.part(1, 2))
        return first + second, used
    callbacks.say("warning: the GPU ran out of memory; fitting again on the CPU (slower)")
    cpu = torch.device("cpu")
    return _timed_fit(problems, settings, cpu, callbacks), cpu


def _timed_fit(
    problems: Sequence[Problem], settings: Settings, device: torch.device, callbacks: Callbacks
) -> list[Fit]:
    """:func:`fit` with the CPU thread policy (:func:`core.model.threads.cpu_threads`), its steps timed from its
    progress calls; the log says what a step cost (and on how many threads)."""
    timer = StepTimer()
    progress = callbacks.progress
    with cpu_threads(device) as tuner:

        def report(step: int, total: int) -> None:
            seconds = timer.step(step)
            if tuner is not None and seconds is not None:
                tuner.step(seconds)
            if progress is not None:
                progress(step, total)

        fits = fit(problems, settings, device, Callbacks(report, callbacks.cancel, callbacks.log))
    if timer.durations:
        callbacks.say(f"fit on {device}: {timer.summary()}" + (f"; {tuner.summary()}" if tuner else ""))
    return fits
