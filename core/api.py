"""Python API of the MCPN engine: guided inpainting and guided super-resolution.

>>> from mcpn.core.api import inpaint
>>> result = inpaint(target, cloud_mask, [older_image], method="emergent")
>>> filled = result.image

Arrays are ``(bands, H, W)`` (or ``(H, W)`` for one band) in any units; NaN
marks nodata. Nothing here imports QGIS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .device import select_device
from .errors import InputError
from .fitting import CancelCheck, Fit, Log, Problem, Progress, Settings, TracePoint, fit
from .normalisation import BandScaling, to_decibels
from .tiling import Window, feather, tile_windows

__all__ = ["Result", "TracePoint", "inpaint", "super_resolve"]

TILE_SIZE = 256
TILE_OVERLAP = 32
# Super-resolution is not tiled yet: larger output grids would exhaust memory.
MAX_SUPER_RESOLUTION_PIXELS = 1024 * 1024


@dataclass
class Result:
    """What a run returns, in the target's units, on the output grid."""

    image: np.ndarray  # (B, H, W) float64: known pixels unchanged, the rest from the network
    raw: np.ndarray  # (B, H, W) float64: the network's output (NaN in tiles that were not fitted)
    filled: np.ndarray  # (H, W) bool: pixels whose value comes from the network
    trace: list[TracePoint]
    chosen_step: int
    device: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)  # step -> (B, H, W) float32


def _as_bands(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if np.iscomplexobj(array) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(f"the {name} must hold real numbers, not {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(f"the {name} must be a (bands, height, width) array, got shape {array.shape}")
    return array.astype(np.float64)


def _settings(method: str, stopping: str, steps: int, seed: int, options: dict) -> Settings:
    unknown = set(options) - set(Settings.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
    settings = Settings(method=method, stopping=stopping, steps=int(steps), seed=int(seed), **options)
    settings.validate()
    return settings


@dataclass
class _Sample:
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
    ) -> _Sample:
        scaling = BandScaling.fit(target, known, "target")
        scaled, valids = [], []
        for index, guide in enumerate(guides):
            name = f"guide {index + 1}"
            guide = _as_bands(guide, name)
            if guide.shape[1:] != shape:
                found, expected = f"{guide.shape[2]} x {guide.shape[1]}", f"{shape[1]} x {shape[0]}"
                raise InputError(f"the {name} is {found} pixels, expected {expected} (the target's grid)")
            if index in sar:
                guide = to_decibels(guide)
            valid = np.isfinite(guide)
            scaled.append(np.where(valid, BandScaling.fit(guide, valid, name).apply(guide), 0).astype(np.float32))
            valids.append(valid)
        return cls(np.where(known, scaling.apply(target), 0).astype(np.float32), known, scaled, valids, scaling)

    def problem(self, window: Window | None = None) -> Problem:
        """Tensors of the whole sample, or of one window of it (same grid for target and guides)."""
        cut = window.slices if window else (slice(None), slice(None))

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array[(slice(None), *cut)], dtype=np.float32)[None])

        guides = [tensor(g) for g in self.guides]
        shape = tuple(guides[0].shape[-2:]) if guides else tuple(tensor(self.target).shape[-2:])
        return Problem(tensor(self.target), tensor(self.known), guides, [tensor(v) for v in self.guide_valid], shape)


def _fit(
    problem: Problem,
    settings: Settings,
    device: torch.device,
    progress: Progress | None,
    cancel: CancelCheck | None,
    log: Log | None,
) -> tuple[Fit, torch.device]:
    """Fit on ``device``; if a GPU runs out of memory, fit again on the CPU."""
    try:
        return fit(problem, settings, device, progress, cancel, log), device
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        if log:
            log("warning: the GPU ran out of memory; fitting again on the CPU (slower)")
        cpu = torch.device("cpu")
        return fit(problem, settings, cpu, progress, cancel, log), cpu


def _tile_progress(progress: Progress | None, index: int, count: int) -> Progress | None:
    if progress is None:
        return None
    return lambda step, total: progress(index * total + step, count * total)


def inpaint(
    target: np.ndarray,
    mask: np.ndarray,
    guides: Sequence[np.ndarray] = (),
    *,
    method: str = "emergent",
    stopping: str = "fixed",
    steps: int = 4000,
    device: str = "auto",
    seed: int = 0,
    sar_guides: Sequence[int] = (),
    tile_size: int = TILE_SIZE,
    tile_overlap: int = TILE_OVERLAP,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
    **options,
) -> Result:
    """Fill the pixels of ``target`` under ``mask`` (True = missing) using co-registered ``guides``.

    NaN pixels of the target are filled too; NaN pixels of a guide are left out
    of its loss. ``sar_guides`` lists guides given in linear backscatter, to be
    converted to dB. ``method`` is ``emergent``, ``direct`` or ``stacked``;
    ``stopping`` is ``fixed``, ``known_rmse`` or ``patch_consistency``.
    Rasters larger than ``tile_size`` are cut into tiles overlapping by
    ``tile_overlap`` px; only tiles with missing pixels are fitted, and their
    outputs are blended with feathered weights (normalisation is global).
    Further ``options`` are fields of :class:`core.fitting.Settings`
    (``learning_rate``, ``core_channels``, ``check_every``, ``patience``,
    ``input_kind``, ``reg_noise``, ``precision``, ``record_every``, loss weights).
    """
    target = _as_bands(target, "target")
    mask = np.asarray(mask)
    if mask.shape != target.shape[1:]:
        raise InputError(f"the mask is {mask.shape[::-1]} pixels but the target is {target.shape[:0:-1]}")
    known = np.isfinite(target) & ~mask.astype(bool)
    filled = ~known.all(axis=0)
    if not filled.any():
        if log:
            log("the mask marks no pixel as missing: the target is returned unchanged")
        return Result(target.copy(), target.copy(), filled, [], 0, "none", 0.0, ["nothing to fill"])
    if not known.any(axis=(1, 2)).all():
        raise InputError("no pixel of the target is known (the mask or nodata covers it all): nothing to learn from")
    if tile_size < 1 or not 0 <= tile_overlap < tile_size:
        raise InputError("the tile size must be positive and larger than the tile overlap")
    settings = _settings(method, stopping, steps, seed, options)
    torch_device = select_device(device)
    sample = _Sample.prepare(target, known, guides, target.shape[1:], sar_guides)
    windows = tile_windows(*target.shape[1:], tile_size, tile_overlap)
    cloudy = [w for w in windows if filled[w.slices].any()]
    if log:
        tiles = f" in {len(cloudy)} of {len(windows)} tiles" if len(windows) > 1 else ""
        log(f"fitting MCPN {settings.method} on {torch_device} for up to {settings.steps} steps{tiles}")
    blended = np.zeros(target.shape)
    weights = np.zeros(target.shape[1:])
    notes: list[str] = []
    for index, window in enumerate(cloudy):
        if not sample.known[(slice(None), *window.slices)].any() and log:
            log(f"warning: the tile at row {window.row}, column {window.col} has no clear pixel; use larger tiles")
        tile_progress = _tile_progress(progress, index, len(cloudy))
        run, torch_device = _fit(sample.problem(window), settings, torch_device, tile_progress, cancel, log)
        weight = feather(window, tile_overlap) if len(windows) > 1 else 1.0
        blended[(slice(None), *window.slices)] += run.output * weight
        weights[window.slices] += weight
        notes += [n for n in run.notes if n not in notes]
    if len(windows) > 1:
        notes.append(f"tiled: {len(cloudy)} of {len(windows)} tiles of {tile_size} px had gaps and were fitted")
    raw = np.where(weights > 0, sample.scaling.invert(blended / np.maximum(weights, 1e-12)), np.nan)
    image = np.where(known, target, raw)
    snapshots = {} if len(windows) > 1 else _snapshots(run, sample.scaling)
    return Result(image, raw, filled, run.trace, run.chosen_step, str(torch_device), run.seconds, notes, snapshots)


def _snapshots(run: Fit, scaling: BandScaling) -> dict[int, np.ndarray]:
    return {step: scaling.invert(s).astype(np.float32) for step, s in run.snapshots.items()}


def super_resolve(
    low_res: np.ndarray,
    guides: Sequence[np.ndarray],
    *,
    method: str = "direct",
    stopping: str = "fixed",
    steps: int = 4000,
    device: str = "auto",
    seed: int = 0,
    sar_guides: Sequence[int] = (),
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
    **options,
) -> Result:
    """Super-resolve ``low_res`` onto the grid of the high-resolution ``guides``.

    ``low_res`` must cover the same extent as the guides; the scale factor
    (any, not only integers) is the ratio of the grids' sizes. The network's
    target output is downsampled with antialiased bilinear resampling before
    its loss against ``low_res``. Options as for :func:`inpaint`.
    """
    low_res = _as_bands(low_res, "low-resolution input")
    if not guides:
        raise InputError("super-resolution needs at least one high-resolution guide")
    shape = _as_bands(guides[0], "guide 1").shape[1:]
    if shape[0] < low_res.shape[1] or shape[1] < low_res.shape[2] or shape == low_res.shape[1:]:
        raise InputError(
            f"the low-resolution input ({low_res.shape[2]} x {low_res.shape[1]} px) must be coarser than the "
            f"guides ({shape[1]} x {shape[0]} px)"
        )
    if shape[0] * shape[1] > MAX_SUPER_RESOLUTION_PIXELS:
        raise InputError(
            f"the output grid ({shape[1]} x {shape[0]} px) is larger than super-resolution handles in one piece "
            f"({MAX_SUPER_RESOLUTION_PIXELS} px): clip the rasters to a smaller extent"
        )
    known = np.isfinite(low_res)
    if not known.any(axis=(1, 2)).all():
        raise InputError("a band of the low-resolution input has no valid pixel")
    settings = _settings(method, stopping, steps, seed, options)
    torch_device = select_device(device)
    sample = _Sample.prepare(low_res, known, guides, shape, sar_guides)
    if log:
        log(f"fitting MCPN {settings.method} on {torch_device} for up to {settings.steps} steps")
    run, torch_device = _fit(sample.problem(), settings, torch_device, progress, cancel, log)
    raw = sample.scaling.invert(run.output)
    filled = np.ones(shape, dtype=bool)
    snapshots = _snapshots(run, sample.scaling)
    return Result(raw, raw, filled, run.trace, run.chosen_step, str(torch_device), run.seconds, run.notes, snapshots)
