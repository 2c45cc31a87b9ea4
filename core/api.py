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

from .device import select_device
from .errors import InputError
from .fitting import CancelCheck, Fit, Log, Progress, TracePoint
from .normalisation import BandScaling
from .sample import Sample, as_bands, fit_with_fallback, guide_bands, make_settings

__all__ = ["Result", "TracePoint", "inpaint", "super_resolve"]


@dataclass
class Result:
    """What a run returns, in the target's units, on the output grid."""

    image: np.ndarray  # (B, H, W) float64: known pixels unchanged, the rest from the network
    raw: np.ndarray  # (B, H, W) float64: the network's output
    filled: np.ndarray  # (H, W) bool: pixels whose value comes from the network
    trace: list[TracePoint]
    chosen_step: int
    device: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)  # step -> (B, H, W) float32


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
    The arrays are fitted as one sample: for rasters larger than a few hundred
    pixels use :func:`core.scene.inpaint_raster`, which tiles them.
    Further ``options`` are fields of :class:`core.fitting.Settings`
    (``learning_rate``, ``core_channels``, ``check_every``, ``patience``,
    ``input_kind``, ``reg_noise``, ``precision``, ``record_every``, loss weights).
    """
    target = as_bands(target, "target")
    mask = np.asarray(mask)
    if mask.shape != target.shape[1:]:
        raise InputError(f"the mask is {mask.shape[::-1]} pixels but the target is {target.shape[:0:-1]}")
    guides = guide_bands(guides, target.shape[1:])  # checked even when there is nothing to fill
    known = np.isfinite(target) & ~mask.astype(bool)
    filled = ~known.all(axis=0)
    if not filled.any():
        if log:
            log("the mask marks no pixel as missing: the target is returned unchanged")
        return Result(target.copy(), target.copy(), filled, [], 0, "none", 0.0, ["nothing to fill"])
    if not known.any(axis=(1, 2)).all():
        raise InputError("no pixel of the target is known (the mask or nodata covers it all): nothing to learn from")
    settings = make_settings(method, stopping, steps, seed, options)
    torch_device = select_device(device)
    sample = Sample.prepare(target, known, guides, target.shape[1:], sar_guides)
    if log:
        log(f"fitting MCPN {settings.method} on {torch_device} for up to {settings.steps} steps")
    run, torch_device = fit_with_fallback(sample.problem(), settings, torch_device, progress, cancel, log)
    raw = sample.scaling.invert(run.output)
    image = np.where(known, target, raw)
    snapshots = _snapshots(run, sample.scaling)
    return Result(image, raw, filled, run.trace, run.chosen_step, str(torch_device), run.seconds, run.notes, snapshots)


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
    its loss against ``low_res``. Options as for :func:`inpaint`; for large
    rasters use :func:`core.scene.super_resolve_raster`, which tiles them.
    """
    low_res = as_bands(low_res, "low-resolution input")
    if not guides:
        raise InputError("super-resolution needs at least one high-resolution guide")
    shape = as_bands(guides[0], "guide 1").shape[1:]
    if shape[0] < low_res.shape[1] or shape[1] < low_res.shape[2] or shape == low_res.shape[1:]:
        raise InputError(
            f"the low-resolution input ({low_res.shape[2]} x {low_res.shape[1]} px) must be coarser than the "
            f"guides ({shape[1]} x {shape[0]} px)"
        )
    known = np.isfinite(low_res)
    if not known.any(axis=(1, 2)).all():
        raise InputError("a band of the low-resolution input has no valid pixel")
    settings = make_settings(method, stopping, steps, seed, options)
    torch_device = select_device(device)
    sample = Sample.prepare(low_res, known, guides, shape, sar_guides)
    if log:
        log(f"fitting MCPN {settings.method} on {torch_device} for up to {settings.steps} steps")
    run, torch_device = fit_with_fallback(sample.problem(), settings, torch_device, progress, cancel, log)
    raw = sample.scaling.invert(run.output)
    filled = np.ones(shape, dtype=bool)
    snapshots = _snapshots(run, sample.scaling)
    return Result(raw, raw, filled, run.trace, run.chosen_step, str(torch_device), run.seconds, run.notes, snapshots)
