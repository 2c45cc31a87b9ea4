"""Instant super-resolution estimates: bicubic, guide regression, and the anchor a super-resolution starts from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .classic import Anchor, as_bands, fill_nodata, global_fit, guide_design, local_fit
from .model.degradation import Degradation

__all__ = [
    "bicubic",
    "consistent_bicubic",
    "detail_agreement",
    "regression_and_residual",
    "super_resolution_anchor",
]

DETAIL_SIGMA = 1.0  # px of the low-resolution input: the blur whose residual is its finest detail


def bicubic(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic interpolation of every band of ``low`` to ``shape`` (GDAL's cubic resampling, as QGIS's Warp)."""
    from skimage.transform import resize

    low = as_bands(low, "low-resolution input")
    return np.stack([resize(b, shape, order=3, mode="edge", anti_aliasing=False) for b in low])


def super_resolution_anchor(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], degradation: Degradation
) -> Anchor:
    """Bicubic interpolation plus as much of the guide regression's detail as the guides explain of the input's.

    Per band, the weight is the share of the input's finest detail (the image
    minus its slight blur, at the input's resolution) that the guides' detail,
    degraded the same way, explains linearly (R², in 0..1): with a guide whose
    fine structure follows the target's (an older image of the same bands) the
    estimate is the guide regression, with one that does not (near-infrared
    from visible bands) it stays near bicubic. It is returned as it is, not yet
    consistent with the input: what it gets wrong is what the network learns to correct.
    """
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    estimates = _estimates(low, known, guides, degradation)
    if not guides:
        return Anchor(estimates["bicubic"], ["bicubic"] * len(low))
    weights = detail_agreement(low, known, guides, degradation)
    image = estimates["bicubic"] + weights[:, None, None] * (estimates["guide regression"] - estimates["bicubic"])
    return Anchor(image, [f"bicubic + {w:.0%} of the guide regression's detail" for w in weights])


def detail_agreement(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], degradation: Degradation
) -> np.ndarray:
    """Per band of ``low``, the share (R², 0..1) of its finest detail that the degraded guides' detail explains."""
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    filled = fill_nodata(low, ~known) if not known.all() else low
    guide_detail = _detail(degradation.numpy(guide_design(guides)))
    weights = []
    for band, mask in zip(_detail(filled), known):
        x, y = guide_detail[:, mask].T, band[mask]
        slopes = np.linalg.lstsq(x, y, rcond=None)[0]
        total = float(np.sum(y**2))
        weights.append(1 - float(np.sum((y - x @ slopes) ** 2)) / total if total > 0 else 0.0)
    return np.clip(weights, 0, 1)


def _detail(image: np.ndarray) -> np.ndarray:
    """An image minus its slight (1 px) Gaussian blur, band by band: its finest structure."""
    return np.stack([band - ndimage.gaussian_filter(band, DETAIL_SIGMA) for band in image])


def _estimates(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], degradation: Degradation, names=None
) -> dict[str, np.ndarray]:
    """Bicubic and (with guides) guide-regression estimates on the output grid, not yet made consistent."""
    wanted = names or {"bicubic", *(("guide regression",) if guides else ())}
    estimates = {}
    if "bicubic" in wanted:
        estimates["bicubic"] = bicubic(fill_nodata(low, ~known) if not known.all() else low, degradation.high)
    if "guide regression" in wanted:
        design = guide_design(guides)
        degraded = degradation.numpy(design)
        fill = np.where(known, low, 0.0)
        estimates["guide regression"] = np.stack(
            [_upsampled_fit(b, k, degraded, design, degradation) for b, k in zip(fill, known)]
        )
    return estimates


def consistent_bicubic(low: np.ndarray, known: np.ndarray, degradation: Degradation) -> np.ndarray:
    """Bicubic interpolation of ``low``, changed by the least amount that makes it degrade exactly to ``low``."""
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    estimate = _estimates(low, known, (), degradation)["bicubic"]
    return degradation.project_numpy(estimate, np.where(known, low, 0.0), known)


def regression_and_residual(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], degradation: Degradation
) -> np.ndarray:
    """Guide regression plus residual (area-to-point regression style), exactly consistent with ``low``.

    Each band of ``low`` is regressed (moving window) on the guides degraded
    the same way; the global slopes are applied to the full guides and the
    local correction is interpolated; the estimate is then changed by the least
    amount that makes it degrade to ``low`` (its residual, spread back).
    """
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    estimate = _estimates(low, known, guides, degradation, {"guide regression"})["guide regression"]
    return degradation.project_numpy(estimate, np.where(known, low, 0.0), known)


def _upsampled_fit(
    band: np.ndarray, known: np.ndarray, degraded: np.ndarray, design: np.ndarray, degradation: Degradation
) -> np.ndarray:
    """The low-resolution regression's estimate on the output grid: its slopes applied to the full guides."""
    low_estimate = local_fit(band, known, degraded)  # the fit's estimate at low resolution
    slopes, intercept = global_fit(band, known, degraded)
    # The local part is a smooth correction of the global fit: bring it to the output grid and add it.
    correction = low_estimate - (np.tensordot(slopes, degraded, 1) + intercept)
    upsampled = bicubic(correction[None], degradation.high)[0]
    return np.tensordot(slopes, design, 1) + intercept + upsampled
