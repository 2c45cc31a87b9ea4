"""Instant super-resolution estimates, and the choice between them on evidence the input itself gives.

The anchor of a super-resolution is bicubic interpolation plus a share of the
guide regression's detail. The share is chosen per band by a reduced-resolution
check (Wald's protocol on the input itself): the input and the guides are
degraded once more by the same factor, each candidate share predicts the input
from them (made consistent with the coarser input, as the fit's output is with
the input), and a share is kept only where its gain over bicubic is above the
check's own noise (a block-bootstrap lower bound). The detail between the two
coarser levels is not the detail between the input and the output, so the share
is also capped by the part of the input's finest detail the guides explain
(:func:`detail_agreement`). Bicubic is always a candidate: on the check, the
anchor is never below it.

A sensor's pixels are blurrier than a plain average of the finer ones (its
point spread). How much is estimated from the data (:func:`sensor_blur`): the
Gaussian blur that gives the degraded guides the input's balance of fine to
coarser detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .choices import DegradationKind
from .classic import Anchor, as_bands, fill_nodata, global_fit, guide_design, local_fit
from .metrics import ssim_map
from .model.degradation import Degradation

__all__ = [
    "DetailEvidence",
    "bicubic",
    "consistent_bicubic",
    "describe_blur",
    "detail_agreement",
    "detail_balance",
    "reduced_resolution_check",
    "regression_and_residual",
    "sensor_blur",
    "super_resolution_anchor",
]

DETAIL_SIGMA = 1.0  # px of the low-resolution input: the blur whose residual is its finest detail
DETAIL_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the candidates: bicubic + share x the guide regression's detail
MIN_CHECK_SIDE = 8  # px: the smallest reduced grid the check is run on
COVERED = 0.95  # a coarser pixel of the check is known when this share of its weight lies on known input pixels
SSIM_SIDE = 11  # px: the smallest grid a structural similarity is computed on (below: squared errors)
BLOCK = 8  # px of the input: the blocks the bootstrap resamples (neighbouring pixels' errors are not independent)
RESAMPLES = 400
LOWER_QUANTILE = 0.05  # a share is kept when its gain's 5th percentile over the resamples is above zero
BLURS = tuple(round(0.05 * k, 2) for k in range(21))  # candidate sensor blurs: 0 to 1 low-resolution pixel


def bicubic(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic interpolation of every band of ``low`` to ``shape`` (GDAL's cubic resampling, as QGIS's Warp)."""
    from skimage.transform import resize

    low = as_bands(low, "low-resolution input")
    return np.stack([resize(b, shape, order=3, mode="edge", anti_aliasing=False) for b in low])


@dataclass
class DetailEvidence:
    """What the reduced-resolution check found, per band."""

    share: np.ndarray  # the kept share of the guide regression's detail (0: bicubic)
    gain: np.ndarray  # its mean gain over bicubic in the check (SSIM, or minus the squared error on tiny grids)
    lower: np.ndarray  # the gain's bootstrap lower bound


def sensor_blur(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], kind: DegradationKind, shape: tuple[int, int]
) -> float:
    """The sensor's Gaussian point spread (standard deviation in low-resolution pixels, one of :data:`BLURS`): the
    blur under which the ``guides``, degraded to the grid of ``low``, have the balance of finest to coarser detail
    that ``low`` has (:func:`detail_balance`, mean over bands).

    It compares spectra, not images: where a guide's fine detail differs from the input's (another band or
    date), a correlation would take the difference for blur; the balance only assumes that the input and the
    guides show a scene of the same texture. Below :data:`MIN_CHECK_SIDE` pixels a side, 0.
    """
    low = as_bands(low, "low-resolution input")
    if min(low.shape[1:]) < MIN_CHECK_SIDE:
        return 0.0
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    wanted = detail_balance(_filled(low, known)).mean()
    design = guide_design(guides)
    found = [detail_balance(Degradation(kind, shape, low.shape[1:], blur=b).numpy(design)).mean() for b in BLURS]
    return BLURS[int(np.argmin(np.abs(np.array(found) - wanted)))]


def describe_blur(blur: float, estimated: bool) -> str:
    """The note that says which sensor blur a run used."""
    return f"sensor blur {blur:g} low-resolution pixels ({'estimated from the guides' if estimated else 'given'})"


def detail_balance(image: np.ndarray) -> np.ndarray:
    """Per band, the log of the variance of its finest detail (below :data:`DETAIL_SIGMA`) over that of the next
    octave: lower for a blurrier image."""
    finest = _detail(image)
    octave = [
        ndimage.gaussian_filter(band, DETAIL_SIGMA) - ndimage.gaussian_filter(band, 2 * DETAIL_SIGMA) for band in image
    ]
    return np.array([np.log(np.var(f) / max(np.var(o), 1e-300)) for f, o in zip(finest, octave)])


def _filled(low: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``low`` with its unknown pixels interpolated (GDAL Fill nodata)."""
    return low if known.all() else fill_nodata(low, ~known)


def super_resolution_anchor(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], degradation: Degradation, check: bool = True
) -> Anchor:
    """Bicubic plus, per band, the share of the guide regression's detail the evidence supports (module notes).

    Without guides, where the input is too small for the check, or without ``check`` (the estimate of
    version 0.6.0, for the benchmarks), the share is the detail agreement alone.
    It is returned as it is, not yet consistent with the input: what it gets wrong is what the network learns
    to correct.
    """
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    estimates = _estimates(low, known, guides, degradation)
    if not guides:
        return Anchor(estimates["bicubic"], ["bicubic"] * len(low))
    shares = detail_agreement(low, known, guides, degradation)
    evidence = reduced_resolution_check(low, known, guides, degradation) if check else None
    if evidence is not None:
        shares = np.minimum(shares, evidence.share)
    image = estimates["bicubic"] + shares[:, None, None] * (estimates["guide regression"] - estimates["bicubic"])
    return Anchor(image, [f"bicubic + {w:.0%} of the guide regression's detail" for w in shares])


def reduced_resolution_check(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], degradation: Degradation, seed: int = 0
) -> DetailEvidence | None:
    """Per band, the share of the guide regression's detail that best predicts the input from itself degraded once
    more, kept only where its gain over bicubic is above the noise; None when the reduced grid would be too small."""
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    reduced = tuple(round(s * s / big) for s, big in zip(low.shape[1:], degradation.high))
    if min(reduced) < MIN_CHECK_SIDE:
        return None
    again = Degradation(degradation.kind, low.shape[1:], reduced, blur=degradation.blur)
    filled = _filled(low, known)
    coarser = again.numpy(filled)
    coarser_known = again.numpy(known.astype(np.float64)) >= COVERED
    guides_low = degradation.numpy(guide_design(guides))
    predicted = _estimates(coarser, coarser_known, [guides_low], again)
    bicubic_low, detail = predicted["bicubic"], predicted["guide regression"] - predicted["bicubic"]

    def consistent(image: np.ndarray, band: int) -> np.ndarray:  # as the fit's output is: degrading to its input
        return again.project_numpy(image, coarser[band], coarser_known[band])

    base = np.stack([_scores(consistent(bicubic_low[b], b)[None], filled[b][None])[0] for b in range(len(low))])
    rng = np.random.default_rng(seed)
    shares, gains, lowers = [], [], []
    for band in range(len(low)):
        blocks = _blocks(known[band])
        draws = rng.integers(0, len(blocks), size=(RESAMPLES, len(blocks)))
        best = (0.0, 0.0, 0.0)
        for share in DETAIL_SHARES[1:]:
            candidate = consistent(bicubic_low[band] + share * detail[band], band)
            gain = _scores(candidate[None], filled[band][None])[0] - base[band]
            block_gains = np.array([gain[b].mean() for b in blocks])
            lower = float(np.quantile(block_gains[draws].mean(axis=1), LOWER_QUANTILE))
            mean = float(block_gains.mean())
            if lower > 0 and mean > best[1]:
                best = (share, mean, lower)
        shares.append(best[0])
        gains.append(best[1])
        lowers.append(best[2])
    return DetailEvidence(np.array(shares), np.array(gains), np.array(lowers))


def _scores(predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-pixel agreement, higher is better: the SSIM map, or minus the squared error on grids too small for it."""
    if min(reference.shape[1:]) < SSIM_SIDE:
        scale = np.maximum(reference.std(axis=(1, 2), keepdims=True), 1e-12)
        return -(((predicted - reference) / scale) ** 2)
    return ssim_map(predicted, reference)


def _blocks(known: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The known pixels of each ``BLOCK`` x ``BLOCK`` block holding any, as index arrays."""
    rows, cols = np.nonzero(known)
    keys = (rows // BLOCK) * (known.shape[1] // BLOCK + 1) + cols // BLOCK
    order = np.argsort(keys, kind="stable")
    splits = np.nonzero(np.diff(keys[order]))[0] + 1
    return [(rows[part], cols[part]) for part in np.split(order, splits)]


def detail_agreement(
    low: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], degradation: Degradation
) -> np.ndarray:
    """Per band of ``low``, the share (R², 0..1) of its finest detail that the degraded guides' detail explains."""
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    filled = _filled(low, known)
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
        estimates["bicubic"] = bicubic(_filled(low, known), degradation.high)
    if "guide regression" in wanted:
        design = guide_design(guides)
        degraded = degradation.numpy(design)
        fill = np.where(known, low, 0.0)
        estimates["guide regression"] = np.stack(
            [_upsampled_fit(b, k, degraded, design, degradation) for b, k in zip(fill, known)]
        )
    return estimates


def consistent_bicubic(low: np.ndarray, known: np.ndarray, degradation: Degradation) -> np.ndarray:
    """Bicubic interpolation of ``low`` with the smooth correction that makes it degrade exactly to ``low``."""
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
    local correction is interpolated; the estimate then gets the smooth correction
    that makes it degrade to ``low`` (:meth:`core.model.degradation.Degradation.project`).
    """
    low = as_bands(low, "low-resolution input")
    known = np.broadcast_to(known, low.shape) & np.isfinite(low)
    estimate = _estimates(low, known, guides, degradation, {"guide regression"})["guide regression"]
    return degradation.project_numpy(estimate, np.where(known, low, 0.0), known)


def _upsampled_fit(
    band: np.ndarray, known: np.ndarray, degraded: np.ndarray, design: np.ndarray, degradation: Degradation
) -> np.ndarray:
    """The low-resolution regression's estimate on the output grid: its slopes applied to the full guides."""
    low_estimate = local_fit(band[None], known, degraded)[0]  # the fit's estimate at low resolution
    slopes, intercept = global_fit(band, known, degraded)
    # The local part is a smooth correction of the global fit: bring it to the output grid and add it.
    correction = low_estimate - (np.tensordot(slopes, degraded, 1) + intercept)
    upsampled = bicubic(correction[None], degradation.high)[0]
    return np.tensordot(slopes, design, 1) + intercept + upsampled
