"""One sample ready for fitting: every domain normalised, and the fit with its GPU-memory fallback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError
from .fitting import CancelCheck, Fit, Log, Problem, Progress, Settings, fit
from .normalisation import BandScaling, to_decibels

__all__ = ["Sample", "as_bands", "domain_scalings", "fit_with_fallback", "guide_bands", "make_settings"]


def as_bands(array: np.ndarray, name: str) -> np.ndarray:
    """A real-valued ``(bands, H, W)`` float64 array from a 2-D or 3-D array, or an :class:`InputError`."""
    array = np.asarray(array)
    if np.iscomplexobj(array) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(f"the {name} must hold real numbers, not {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(f"the {name} must be a (bands, height, width) array, got shape {array.shape}")
    return array.astype(np.float64)


def guide_bands(guides: Sequence[np.ndarray], shape: tuple[int, int]) -> list[np.ndarray]:
    """The guides as ``(bands, H, W)`` float64 arrays, or an :class:`InputError` if one is not on the ``shape`` grid."""
    guides = [as_bands(g, f"guide {i + 1}") for i, g in enumerate(guides)]
    for index, guide in enumerate(guides):
        if guide.shape[1:] != tuple(shape):
            found, expected = f"{guide.shape[2]} x {guide.shape[1]}", f"{shape[1]} x {shape[0]}"
            raise InputError(f"the guide {index + 1} is {found} pixels, expected {expected} (the target's grid)")
    return guides


def make_settings(method: str, stopping: str, steps: int, seed: int, options: dict) -> Settings:
    """Validated :class:`Settings` from the run's arguments and the further ``options`` (Settings fields)."""
    unknown = set(options) - set(Settings.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
    settings = Settings(method=method, stopping=stopping, steps=int(steps), seed=int(seed), **options)
    settings.validate()
    return settings


def _guide_in_db(guide: np.ndarray, index: int, sar: Sequence[int]) -> np.ndarray:
    return to_decibels(guide).astype(np.float64) if index in sar else guide


def domain_scalings(
    target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], sar: Sequence[int] = ()
) -> list[BandScaling]:
    """Normalisation of the target (from its ``known`` pixels) and of each guide (from its valid pixels)."""
    scalings = [BandScaling.fit(target, known, "target")]
    for index, guide in enumerate(guides):
        guide = _guide_in_db(guide, index, sar)
        scalings.append(BandScaling.fit(guide, np.isfinite(guide), f"guide {index + 1}"))
    return scalings


@dataclass
class Sample:
    """One sample with every domain normalised (NumPy, no batch dimension)."""

    target: np.ndarray  # (B, h, w) float32, zero where unknown
    known: np.ndarray  # (B, h, w) bool
    guides: list[np.ndarray]  # (Bg, H, W) float32, zero where invalid
    guide_valid: list[np.ndarray]  # (Bg, H, W) bool
    scaling: BandScaling  # of the target

    @classmethod
    def prepare(
        cls,
        target: np.ndarray,
        known: np.ndarray,
        guides: Sequence[np.ndarray],
        shape: tuple[int, int],
        sar: Sequence[int],
        scalings: Sequence[BandScaling] | None = None,
    ) -> Sample:
        """Normalise ``target`` and ``guides`` (on the output grid ``shape``); ``scalings`` default to their own."""
        guides = guide_bands(guides, shape)
        scalings = list(scalings) if scalings is not None else domain_scalings(target, known, guides, sar)
        scaled, valids = [], []
        for index, (guide, scaling) in enumerate(zip(guides, scalings[1:])):
            guide = _guide_in_db(guide, index, sar)
            valid = np.isfinite(guide)
            scaled.append(np.where(valid, scaling.apply(guide), 0).astype(np.float32))
            valids.append(valid)
        target_scaled = np.where(known, scalings[0].apply(target), 0).astype(np.float32)
        return cls(target_scaled, known, scaled, valids, scalings[0])

    def problem(self) -> Problem:
        """The sample as tensors (batch dimension 1)."""

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)[None])

        guides = [tensor(g) for g in self.guides]
        shape = tuple(guides[0].shape[-2:]) if guides else tuple(tensor(self.target).shape[-2:])
        return Problem(tensor(self.target), tensor(self.known), guides, [tensor(v) for v in self.guide_valid], shape)


def fit_with_fallback(
    problem: Problem,
    settings: Settings,
    device: torch.device,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
) -> tuple[Fit, torch.device]:
    """Fit on ``device``; if a GPU runs out of memory, fit again on the CPU (with a warning)."""
    try:
        return fit(problem, settings, device, progress, cancel, log), device
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        if log:
            log("warning: the GPU ran out of memory; fitting again on the CPU (slower)")
        cpu = torch.device("cpu")
        return fit(problem, settings, cpu, progress, cancel, log), cpu
