"""Instant estimates: interpolation and guide regression (the choice between them: :mod:`core.anchors`; for
super-resolution: :mod:`core.sharpening`).

They are what a user gets in a second (the benchmarks' baselines) and the
*anchors* MCPN starts from: the network learns a correction of the best of
them, so its first output already equals that estimate. Arrays are
``(bands, H, W)`` float64; ``known`` is ``(H, W)`` or ``(bands, H, W)`` bool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import InputError

__all__ = [
    "Anchor",
    "biharmonic",
    "fill_nodata",
    "global_fit",
    "guide_design",
    "local_fit",
    "local_regression",
    "regression",
]

# Moving-window regression: the radii tried, finest first; a pixel takes the finest window
# holding at least MIN_SHARE of known pixels, blended smoothly into the coarser ones.
RADII = (8, 16, 32, 64)
MIN_SHARE = 0.25
RIDGE = 1e-3  # shrinks local slopes towards the global ones where the guide hardly varies
RESIDUAL_SIGMA = 8.0  # px: how far a regression's residual is carried into a gap
RESIDUAL_FADE = 0.1  # share of known pixels under the smoothing kernel below which the residual fades


def as_bands(array: np.ndarray, name: str = "image") -> np.ndarray:
    """A real-valued ``(bands, H, W)`` float64 array from a 2-D or 3-D array, or an :class:`InputError`."""
    array = np.asarray(array)
    if np.iscomplexobj(array) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(f"the {name} must hold real numbers, not {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(f"the {name} must be a (bands, height, width) array, got shape {array.shape}")
    return array.astype(np.float64)


def fill_nodata(target: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """GDAL Fill nodata (inverse-distance interpolation from the gap's edge) of every band, in memory.

    ``missing`` ``(H, W)`` or ``(B, H, W)`` marks the pixels to fill, as do NaN
    pixels. The search distance is the image diagonal, so every gap is filled;
    no smoothing iterations (QGIS's default). Other pixels are unchanged.
    """
    from osgeo import gdal  # here: the arrays API runs without GDAL until an interpolation is asked for

    from .raster.gdal_exceptions import gdal_exceptions

    with gdal_exceptions():
        return _fill_nodata(as_bands(target, "target"), missing, gdal)


def _fill_nodata(bands: np.ndarray, missing: np.ndarray, gdal) -> np.ndarray:
    missing = np.broadcast_to(missing, bands.shape) | ~np.isfinite(bands)
    _, height, width = bands.shape
    driver = gdal.GetDriverByName("MEM")
    out = bands.copy()
    for index, (band, gap) in enumerate(zip(bands, missing)):
        if gap.all():
            raise InputError(f"band {index + 1} of the target has no clear pixel to fill from")
        if not gap.any():
            continue
        data = driver.Create("", width, height, 1, gdal.GDT_Float64)
        data.GetRasterBand(1).WriteArray(np.where(gap, 0.0, band))
        valid = driver.Create("", width, height, 1, gdal.GDT_Byte)
        valid.GetRasterBand(1).WriteArray((~gap).astype(np.uint8))
        search = float(np.hypot(height, width)) + 1.0  # its work files in memory: the current folder may be read-only
        gdal.FillNodata(data.GetRasterBand(1), valid.GetRasterBand(1), search, 0, options=["TEMP_FILE_DRIVER=MEM"])
        out[index] = np.where(gap, data.GetRasterBand(1).ReadAsArray(), band)
    return out


def biharmonic(target: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Biharmonic inpainting (scikit-image) of every band; its cost grows with the size of the gaps."""
    from skimage.restoration import inpaint_biharmonic

    bands = as_bands(target, "target")
    missing = np.broadcast_to(missing, bands.shape) | ~np.isfinite(bands)
    out = np.empty_like(bands)
    for mask, indices in _mask_groups(missing):  # one sparse system for the bands missing the same pixels
        out[indices] = inpaint_biharmonic(np.where(mask, 0.0, bands[indices]), mask, channel_axis=0)
    return out


def _mask_groups(masks: np.ndarray) -> list[tuple[np.ndarray, list[int]]]:
    """The distinct ``(H, W)`` masks of ``masks`` ``(B, H, W)``, each with the bands that have it."""
    groups: list[tuple[np.ndarray, list[int]]] = []
    for index, mask in enumerate(masks):
        group = next((g for g in groups if np.array_equal(g[0], mask)), None)
        if group is None:
            groups.append((mask, [index]))
        else:
            group[1].append(index)
    return groups


def guide_design(guides: Sequence[np.ndarray]) -> np.ndarray:
    """The guides' bands stacked ``(K, H, W)``, NaN replaced by the band's mean (they carry no weight there)."""
    stacked = np.concatenate([as_bands(g, "guide") for g in guides])
    means = np.array([np.nanmean(b) if np.isfinite(b).any() else 0.0 for b in stacked])
    return np.where(np.isfinite(stacked), stacked, means[:, None, None])


def regression(target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray]) -> np.ndarray:
    """Global linear regression of each target band on all guide bands, fitted on the known pixels."""
    target = as_bands(target, "target")
    known = np.broadcast_to(known, target.shape) & np.isfinite(target)
    design = guide_design(guides)
    out = np.empty_like(target)
    for index, (band, mask) in enumerate(zip(target, known)):
        slopes, intercept = global_fit(band, mask, design)
        out[index] = np.tensordot(slopes, design, 1) + intercept
    return out


def global_fit(band: np.ndarray, known: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares slopes and intercept of ``band`` on the design's bands over ``known``."""
    x = design[:, known].T
    y = band[known]
    x_mean, y_mean = x.mean(axis=0), y.mean()
    centred = x - x_mean
    gram = centred.T @ centred
    gram += RIDGE * (np.trace(gram) / max(len(gram), 1) + 1e-12) * np.eye(len(gram))
    slopes = np.linalg.solve(gram, centred.T @ (y - y_mean))
    return slopes, float(y_mean - slopes @ x_mean)


def local_regression(target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray]) -> np.ndarray:
    """Moving-window linear regression of each target band on the guide bands (local histogram matching).

    Each pixel's slopes and intercept come from the known pixels of a window
    around it (the finest of :data:`RADII` holding enough of them, blended into
    the coarser ones, the global fit last), so the estimate follows the local
    relation between guide and target, also deep inside a large gap. Bands
    with the same known pixels (usually all) share the guides' window statistics.
    """
    target = as_bands(target, "target")
    known = np.broadcast_to(known, target.shape) & np.isfinite(target)
    design = guide_design(guides)
    out = np.empty_like(target)
    for mask, indices in _mask_groups(known):
        out[indices] = local_fit(target[indices], mask, design)
    return out


def local_fit(bands: np.ndarray, known: np.ndarray, design: np.ndarray) -> np.ndarray:
    """:func:`local_regression` of the ``(N, H, W)`` ``bands`` whose known pixels are all ``known`` ``(H, W)``."""
    bands = np.where(known, bands, 0.0)
    fits = [global_fit(band, known, design) for band in bands]
    slopes = np.stack([fit[0] for fit in fits])  # (N, K)
    estimate = np.tensordot(slopes, design, 1) + np.array([fit[1] for fit in fits])[:, None, None]
    spread = float(np.var(design[:, known], axis=1).sum()) if known.any() else 0.0
    weight_left = np.ones(known.shape)
    blended = np.zeros(bands.shape)
    for radius in RADII:
        local, share = _window_fit(bands, known, design, radius, slopes, spread)
        weight = weight_left * np.clip(share / MIN_SHARE, 0, 1)
        blended += weight * local
        weight_left -= weight
    return blended + weight_left * estimate


def _window_fit(
    bands: np.ndarray, known: np.ndarray, design: np.ndarray, radius: int, priors: np.ndarray, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """The window regression's estimate of every band at every pixel and the share of known pixels in its window.

    Box filters (cost independent of the window); the guides' window statistics are computed once for all bands.
    The slopes are shrunk toward the global ``priors`` by a ridge relative to the guides' variance in the window
    and over the image (``spread``, the trace of their covariance): where the window's known pixels hardly vary
    (a few clear pixels deep in a gap), its slopes are the global ones, not a near-singular solve.
    """
    size = 2 * radius + 1

    def mean(values: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(values, size, mode="reflect")

    weight = known.astype(np.float64)
    share = mean(weight)
    count = np.maximum(share, 1e-9)
    g = design * weight
    g_mean = _mean_stack(g, mean) / count  # (K, H, W)
    y_mean = _mean_stack(bands * weight, mean) / count  # (N, H, W)
    k = len(design)
    cov = np.empty((k, k, *known.shape))
    for i in range(k):
        for j in range(i, k):
            cov[i, j] = cov[j, i] = mean(g[i] * design[j]) / count - g_mean[i] * g_mean[j]
    cross = np.stack([_mean_stack(g * band, mean) / count - g_mean * y for band, y in zip(bands, y_mean)])
    ridge = RIDGE * (np.trace(cov) + spread) / k + 1e-12
    system = cov + ridge * np.eye(k)[..., None, None]
    rhs = np.moveaxis(cross, 0, 1) + ridge * priors.T[..., None, None]  # (K, N, H, W)
    slopes = np.moveaxis(_solve_positive_definite(system, rhs), 1, 0)  # (N, K, H, W)
    return (slopes * (design - g_mean)).sum(axis=1) + y_mean, share


def _solve_positive_definite(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x`` with ``a x = b`` at every pixel: ``a`` (K, K, H, W) symmetric positive definite, ``b`` (K, N, H, W).

    Gaussian elimination over whole images (no pivoting needed): NumPy's batched solve costs
    microseconds per small system, 65536 of them per tile and window size.
    """
    a, b = a.copy(), b.copy()
    k = len(a)
    for i in range(k):
        for j in range(i + 1, k):
            factor = a[j, i] / a[i, i]
            a[j, i:] -= factor * a[i, i:]
            b[j] -= factor * b[i]
    x = np.empty_like(b)
    for i in reversed(range(k)):
        x[i] = (b[i] - np.einsum("j...,jn...->n...", a[i, i + 1 :], x[i + 1 :])) / a[i, i]
    return x


def _mean_stack(values: np.ndarray, mean: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``mean`` (a window average) of every band of ``values``."""
    return np.stack([mean(v) for v in values])


@dataclass
class Anchor:
    """An instant estimate and what it is."""

    image: np.ndarray  # (B, H, W) on the output grid
    names: list[str]  # per band: which estimate it is
    errors: dict[str, np.ndarray] | None = None  # per candidate, its per-band error on held-out pixels, when judged


def spread_residual(residual: np.ndarray, known: np.ndarray, sigma: float = RESIDUAL_SIGMA) -> np.ndarray:
    """The residual of the known pixels carried into the gaps by normalised Gaussian smoothing.

    It fades to zero further than a few ``sigma`` from any known pixel; known pixels get 0 (they keep their value).
    """
    known = np.broadcast_to(known, residual.shape)
    out = np.zeros(residual.shape)
    for index, (values, mask) in enumerate(zip(residual, known)):
        weight = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
        total = ndimage.gaussian_filter(np.where(mask, values, 0.0), sigma)
        fade = np.clip(weight / RESIDUAL_FADE, 0, 1)  # where few known pixels are near, less of their residual
        out[index] = np.where(mask, 0.0, fade * total / np.maximum(weight, 1e-12))
    return out
