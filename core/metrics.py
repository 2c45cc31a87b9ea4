"""Image quality metrics against a ground truth: RMSE and region-restricted SSIM.

Both metrics take ``(bands, H, W)`` or ``(H, W)`` arrays and an optional boolean
``region`` of shape ``(H, W)`` (True = evaluated pixel, e.g. the cloud mask to
score only the inpainted pixels). Without a region the whole image is scored.

Why SSIM is computed on rescaled bands
--------------------------------------
SSIM contains two stabilising constants, ``C1 = (0.01 L)^2`` and
``C2 = (0.03 L)^2``, where ``L`` is the data range. Surface reflectance is
typically 0.02-0.3 (or 200-3000 when stored as reflectance x 10000), so with a
nominal range of 1.0 (or 10000) the constants are of the same order as, or larger
than, the band's local variances: every image then looks "similar" and SSIM is
compressed towards 1. With a range taken from the data it depends on the storage
convention and on a few outliers. We therefore map each band of both images by
the *ground truth's* 1st-99th percentile range of that band,
``x' = (x - p1) / (p99 - p1)``, and evaluate SSIM with ``data_range=1``. The
score is then independent of the units (any ``a * x + b``, ``a > 0``, applied to
both images gives the same value) and comparable between sensors and scenes.

The SSIM map uses the usual Wang et al. (2004) settings: an 11-tap Gaussian
window with sigma 1.5 and population (not sample) covariances. The map is
averaged over the region's pixels, then over bands.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

PERCENTILES = (1.0, 99.0)


def _as_bands(array: np.ndarray, name: str) -> np.ndarray:
    """Return a float64 ``(bands, H, W)`` view of a 2-D or 3-D array."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be (H, W) or (bands, H, W), got shape {np.shape(array)}")
    return a


def _prepare(
    pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check shapes and finiteness; return (pred, truth, region) as 3-D, 3-D, 2-D bool."""
    p = _as_bands(pred, "pred")
    t = _as_bands(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and truth {t.shape} differ in shape")
    if region is None:
        r = np.ones(t.shape[1:], dtype=bool)
    else:
        r = np.asarray(region, dtype=bool)
        if r.shape != t.shape[1:]:
            raise ValueError(f"region {r.shape} does not match image size {t.shape[1:]}")
    if not r.any():
        raise ValueError("region selects no pixel")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise ValueError("pred and truth must be finite (no NaN / inf)")
    return p, t, r


def rmse(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    """Root-mean-square error over all bands and the region's pixels (input units)."""
    p, t, r = _prepare(pred, truth, region)
    diff = (p - t)[:, r]
    return float(np.sqrt(np.mean(diff * diff)))


def spectral_angle(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean spectral angle (SAM, degrees) between the band vectors of ``pred`` and ``truth`` over the region's
    pixels; NaN for a single band, which has no spectrum."""
    p, t, r = _prepare(pred, truth, region)
    if len(t) < 2:
        return float("nan")
    p, t = p[:, r], t[:, r]
    norms = np.linalg.norm(p, axis=0) * np.linalg.norm(t, axis=0)
    cosine = np.divide((p * t).sum(axis=0), norms, out=np.ones_like(norms), where=norms > 0)
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))).mean())


def percentile_range(band: np.ndarray) -> tuple[float, float]:
    """The 1st and 99th percentile of a band; a degenerate range becomes ``(p1, p1 + 1)``."""
    low, high = np.percentile(band, PERCENTILES)
    if not high > low:
        high = low + 1.0
    return float(low), float(high)


def ssim_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-band SSIM maps ``(bands, H, W)`` after the percentile rescaling described above."""
    p, t, _ = _prepare(pred, truth, None)
    maps = np.empty_like(t)
    for b in range(t.shape[0]):
        low, high = percentile_range(t[b])
        scale = 1.0 / (high - low)
        _, maps[b] = structural_similarity(
            (p[b] - low) * scale,
            (t[b] - low) * scale,
            data_range=1.0,
            full=True,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    return maps


def masked_ssim(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean SSIM over the region's pixels (or all), averaged over bands; see the module notes."""
    _, _, r = _prepare(pred, truth, region)
    maps = ssim_map(pred, truth)
    return float(np.mean(maps[:, r]))
