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

__all__ = ["Result", "TracePoint", "inpaint", "super_resolve"]


@dataclass
class Result:
    """What a run returns, in the target's units, on the output grid."""

    image: np.ndarray  # (B, H, W) float64: known pixels unchanged, the rest from the network
    raw: np.ndarray  # (B, H, W) float64: the network's output everywhere
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


def _prepare_guides(
    guides: Sequence[np.ndarray], shape: tuple[int, int], sar_guides: Sequence[int]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    tensors, valids = [], []
    for index, guide in enumerate(guides):
        name = f"guide {index + 1}"
        guide = _as_bands(guide, name)
        if guide.shape[1:] != shape:
            found, expected = f"{guide.shape[2]} x {guide.shape[1]}", f"{shape[1]} x {shape[0]}"
            raise InputError(f"the {name} is {found} pixels, expected {expected} (the target's grid)")
        if index in sar_guides:
            guide = to_decibels(guide)
        valid = np.isfinite(guide)
        scaled = BandScaling.fit(guide, valid, name).apply(guide)
        tensors.append(torch.from_numpy(np.where(valid, scaled, 0)[None]))
        valids.append(torch.from_numpy(valid[None].astype(np.float32)))
    return tensors, valids


def _run(
    target: np.ndarray,
    known: np.ndarray,
    guides: Sequence[np.ndarray],
    shape: tuple[int, int],
    settings: Settings,
    device: str,
    sar_guides: Sequence[int],
    progress: Progress | None,
    cancel: CancelCheck | None,
    log: Log | None,
) -> tuple[Fit, BandScaling, str]:
    torch_device = select_device(device)
    scaling = BandScaling.fit(target, known, "target")
    guide_tensors, guide_valid = _prepare_guides(guides, shape, sar_guides)
    problem = Problem(
        target=torch.from_numpy(np.where(known, scaling.apply(target), 0)[None]),
        target_known=torch.from_numpy(known[None].astype(np.float32)),
        guides=guide_tensors,
        guide_valid=guide_valid,
        shape=shape,
    )
    if log:
        log(f"fitting MCPN {settings.method} on {torch_device} for up to {settings.steps} steps")
    return fit(problem, settings, torch_device, progress, cancel, log), scaling, str(torch_device)


def _result(run: Fit, scaling: BandScaling, device: str, image: np.ndarray, filled: np.ndarray) -> Result:
    raw = scaling.invert(run.output)
    snapshots = {step: scaling.invert(s).astype(np.float32) for step, s in run.snapshots.items()}
    image = np.where(np.isnan(image), raw, image)
    return Result(image, raw, filled, run.trace, run.chosen_step, device, run.seconds, run.notes, snapshots)


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
    settings = _settings(method, stopping, steps, seed, options)
    shape = target.shape[1:]
    run, scaling, used = _run(target, known, guides, shape, settings, device, sar_guides, progress, cancel, log)
    return _result(run, scaling, used, np.where(known, target, np.nan), filled)


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
    known = np.isfinite(low_res)
    if not known.any(axis=(1, 2)).all():
        raise InputError("a band of the low-resolution input has no valid pixel")
    settings = _settings(method, stopping, steps, seed, options)
    run, scaling, used = _run(low_res, known, guides, shape, settings, device, sar_guides, progress, cancel, log)
    filled = np.ones(shape, dtype=bool)
    return _result(run, scaling, used, np.full((low_res.shape[0], *shape), np.nan), filled)
