"""Python API of the MCPN engine: guided inpainting and guided super-resolution of arrays.

>>> from mcpn.core.pipeline.api import inpaint
>>> result = inpaint(target, cloud_mask, [older_image], method="emergent")
>>> filled = result.image

Arrays are ``(bands, H, W)`` (or ``(H, W)`` for one band) in any units; NaN
marks nodata. Settings are those of :class:`core.config.Settings`, given as one
object or as keyword arguments. Nothing here imports QGIS or GDAL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..callbacks import Callbacks
from ..classic import as_bands
from ..config import Settings
from ..errors import InputError
from ..model.device import fit_on_device
from ..model.fitting import TracePoint
from ..sharpening import describe_blur
from .sample import Sample, guide_bands

__all__ = ["Result", "Settings", "TracePoint", "inpaint", "super_resolve"]


@dataclass
class Result:
    """What a run returns, in the target's units, on the output grid."""

    image: np.ndarray  # (B, H, W) float64: known pixels unchanged, the rest from the network
    raw: np.ndarray  # (B, H, W) float64: the network's output
    filled: np.ndarray  # (H, W) bool: pixels whose value comes from the network
    trace: list[TracePoint]
    chosen_step: int  # 0: the anchor (the instant estimate) was kept
    device: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)  # step -> (B, H, W) float32


def _settings(settings: Settings | None, options: dict, super_resolution: bool = False) -> Settings:
    """The run's settings (:meth:`Settings.resolved`), given as one object or as keyword arguments."""
    if settings is not None and options:
        raise InputError("give the settings as one Settings object or as keyword arguments, not both")
    return (settings or Settings.of(**options)).resolved(super_resolution)


def inpaint(
    target: np.ndarray,
    mask: np.ndarray,
    guides: Sequence[np.ndarray] = (),
    settings: Settings | None = None,
    *,
    radar_guides: Sequence[int] = (),
    callbacks: Callbacks | None = None,
    **options: object,
) -> Result:
    """Fill the pixels of ``target`` under ``mask`` (True = missing) using co-registered ``guides``.

    NaN pixels of the target are filled too; NaN pixels of a guide are left out
    of its loss. ``radar_guides`` lists the guides given in linear backscatter,
    converted to dB. The arrays are fitted as one sample: for rasters larger
    than a few hundred pixels use :func:`core.pipeline.inpainting.inpaint_raster`, which tiles them.
    """
    settings = _settings(settings, options)
    callbacks = (callbacks or Callbacks()).within(settings.time_limit)
    target = as_bands(target, "target")
    mask = np.asarray(mask)
    if mask.shape != target.shape[1:]:
        raise InputError(f"the mask is {mask.shape[::-1]} pixels but the target is {target.shape[:0:-1]}")
    guides = guide_bands(guides, target.shape[1:])  # checked even when there is nothing to fill
    known = np.isfinite(target) & ~mask.astype(bool)
    filled = ~known.all(axis=0)
    if not filled.any():
        callbacks.say("the mask marks no pixel as missing: the target is returned unchanged")
        return Result(target.copy(), target.copy(), filled, [], 0, "none", 0.0, ["nothing to fill"])
    if not known.any(axis=(1, 2)).all():
        raise InputError("no pixel of the target is known (the mask or nodata covers it all): nothing to learn from")
    raw, result = _fit_sample(target, known, guides, target.shape[1:], settings, radar_guides, callbacks)
    result.image = np.where(known, target, raw)
    result.filled = filled
    return result


def super_resolve(
    low_res: np.ndarray,
    guides: Sequence[np.ndarray],
    settings: Settings | None = None,
    *,
    radar_guides: Sequence[int] = (),
    callbacks: Callbacks | None = None,
    **options: object,
) -> Result:
    """Super-resolve ``low_res`` onto the grid of the high-resolution ``guides``.

    ``low_res`` must cover the same extent as the guides; the scale factor
    (any, not only integers) is the ratio of the grids' sizes. The network's
    target output is degraded (``settings.degradation``) before its loss
    against ``low_res``; with an anchor, the result degrades exactly to
    ``low_res``. For large rasters use :func:`core.pipeline.super_resolution.super_resolve_raster`.
    """
    settings = _settings(settings, options, super_resolution=True)
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
    callbacks = (callbacks or Callbacks()).within(settings.time_limit)
    raw, result = _fit_sample(low_res, known, guides, shape, settings, radar_guides, callbacks)
    result.image = raw
    return result


def _fit_sample(
    target: np.ndarray,
    known: np.ndarray,
    guides: Sequence[np.ndarray],
    shape: tuple[int, int],
    settings: Settings,
    radar: Sequence[int],
    callbacks: Callbacks,
) -> tuple[np.ndarray, Result]:
    """Fit one sample; its raw output in the target's units and the result (``image`` still to be set)."""
    sample = Sample.prepare(target, known, guides, shape, settings, radar)
    callbacks.say(f"fitting MCPN {settings.method} on {settings.device} for up to {settings.steps} steps")
    (run,), device = fit_on_device([sample.problem()], settings, callbacks)
    raw = sample.scaling.invert(run.output)
    notes = [n for n in [sample.describe_anchor(), *run.notes] if n]
    if sample.degradation is not None:
        notes.append(describe_blur(sample.degradation.blur, settings.sensor_blur is None))
    snapshots = {step: sample.scaling.invert(s).astype(np.float32) for step, s in run.snapshots.items()}
    result = Result(raw, raw, np.ones(shape, dtype=bool), run.trace, run.chosen_step, str(device), run.seconds)
    result.notes, result.snapshots = notes, snapshots
    return raw, result
