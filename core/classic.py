"""Instant estimates: interpolation and guide regression (for super-resolution: :mod:`core.sharpening`).

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
from .metrics import ssim_map

__all__ = [
    "Anchor",
    "biharmonic",
    "cross_fitted",
    "fill_nodata",
    "global_fit",
    "guide_design",
    "inpainting_anchor",
    "inpainting_estimates",
    "local_fit",
    "local_regression",
    "regression",
]

# Moving-window regression: the radii tried, finest first; a pixel takes the finest window
# holding at least MIN_SHARE of known pixels, blended smoothly into the coarser ones.
RADII = (8, 16, 32, 64)
MIN_SHARE = 0.25
RIDGE = 1e-3  # shrinks local slopes towards the global ones where the guide hardly varies
SSIM_WINDOW = 11  # the smallest image side structural similarity is computed on (its Gaussian window)
RESIDUAL_SIGMA = 8.0  # px: how far a regression's residual is carried into a gap
RESIDUAL_FADE = 0.1  # share of known pixels under the smoothing kernel below which the residual fades
CROSS_FOLDS = 4  # folds of known pixels an interpolation is recomputed without (core.classic.cross_fitted)


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
    """Biharmonic inpainting (scikit-image) of every band; slow on large gaps, for benchmarks."""
    from skimage.restoration import inpaint_biharmonic

    bands = as_bands(target, "target")
    missing = np.broadcast_to(missing, bands.shape) | ~np.isfinite(bands)
    return np.stack([inpaint_biharmonic(np.where(m, 0.0, b), m) for b, m in zip(bands, missing)])


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
    relation between guide and target, also deep inside a large gap.
    """
    target = as_bands(target, "target")
    known = np.broadcast_to(known, target.shape) & np.isfinite(target)
    design = guide_design(guides)
    return np.stack([local_fit(band, mask, design) for band, mask in zip(target, known)])


def local_fit(band: np.ndarray, known: np.ndarray, design: np.ndarray) -> np.ndarray:
    band = np.where(known, band, 0.0)
    slopes, intercept = global_fit(band, known, design)
    estimate = np.tensordot(slopes, design, 1) + intercept
    weight_left = np.ones(band.shape)
    blended = np.zeros(band.shape)
    for radius in RADII:
        local, share = _window_fit(band, known, design, radius, slopes)
        weight = weight_left * np.clip(share / MIN_SHARE, 0, 1)
        blended += weight * local
        weight_left -= weight
    return blended + weight_left * estimate


def _window_fit(
    band: np.ndarray, known: np.ndarray, design: np.ndarray, radius: int, prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The window regression's estimate at every pixel and the share of known pixels in its window."""
    size = 2 * radius + 1

    def mean(values: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(values, size, mode="reflect")

    weight = known.astype(np.float64)
    share = mean(weight)
    count = np.maximum(share, 1e-9)
    g = design * weight
    g_mean = _mean_stack(g, mean) / count
    y_mean = mean(band * weight) / count
    k = len(design)
    cov = np.empty((k, k, *band.shape))
    for i in range(k):
        for j in range(i, k):
            cov[i, j] = cov[j, i] = mean(g[i] * design[j]) / count - g_mean[i] * g_mean[j]
    cross = _mean_stack(g * band, mean) / count - g_mean * y_mean
    ridge = RIDGE * np.maximum(np.trace(cov), 1e-12) / k + 1e-12
    system = np.moveaxis(cov, (0, 1), (-2, -1)) + ridge[..., None, None] * np.eye(k)
    rhs = np.moveaxis(cross, 0, -1) + ridge[..., None] * prior
    slopes = np.moveaxis(np.linalg.solve(system, rhs[..., None])[..., 0], -1, 0)
    return (slopes * (design - g_mean)).sum(axis=0) + y_mean, share


def _mean_stack(values: np.ndarray, mean: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``mean`` (a window average) of every band of ``values``."""
    return np.stack([mean(v) for v in values])


@dataclass
class Anchor:
    """An instant estimate and what it is."""

    image: np.ndarray  # (B, H, W) on the output grid
    names: list[str]  # per band: which estimate it is


def inpainting_anchor(
    target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], holdout: np.ndarray | None
) -> Anchor:
    """The best instant fill of each band, judged on the ``holdout`` pixels (known, but not used to fit).

    Candidates (:func:`inpainting_estimates`) are judged by their structural
    similarity to the held-out pixels; the chosen one is then computed again
    from all known pixels. The estimate is returned as it is, also on the known
    pixels (a regression does not reproduce them): what it gets wrong there is
    what the network learns to correct.
    """
    target = as_bands(target, "target")
    known = np.broadcast_to(known, target.shape) & np.isfinite(target)
    if holdout is None or not holdout.any():
        names = ["moving-window guide regression" if guides else "interpolation"] * len(target)
    else:
        estimates = inpainting_estimates(target, known & ~holdout, guides)
        errors = {name: _dissimilarity(image, target, holdout, known | holdout) for name, image in estimates.items()}
        names = [min(errors, key=lambda n: errors[n][band]) for band in range(len(target))]
    final = inpainting_estimates(target, known, guides, set(names))
    image = np.stack([final[name][band] for band, name in enumerate(names)])
    return Anchor(cross_fitted(image, target, known, guides, names), names)


def cross_fitted(
    image: np.ndarray, target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], names: Sequence[str]
) -> np.ndarray:
    """The estimate ``image`` with, in bands where it reproduces the known pixels (an interpolation), those pixels
    recomputed with them hidden, fold by fold.

    An estimate equal to the target on every known pixel leaves the network nothing to learn: its loss is zero
    from the start and its output layer gets no gradient. Recomputed with blocks of known pixels hidden (the
    blocks as deep as the real gaps, in :data:`CROSS_FOLDS` folds), the estimate shows its real errors there, and
    the network learns to correct them; in the gaps the estimate is the one computed from all known pixels.
    """
    exact = [bool(np.allclose(image[b][known[b]], target[b][known[b]])) for b in range(len(image))]
    if not any(exact):
        return image
    out = image.copy()
    for fold in _folds(known.all(axis=0), ~known.any(axis=0)):
        hidden = known & fold
        if not hidden.any() or not (known & ~fold).any(axis=(1, 2)).all():
            continue
        wanted = {name for name, keep in zip(names, exact) if keep}
        refit = inpainting_estimates(target, known & ~fold, guides, wanted)
        for band, name in enumerate(names):
            if exact[band]:
                out[band][hidden[band]] = refit[name][band][hidden[band]]
    return out


def _folds(clear: np.ndarray, missing: np.ndarray) -> list[np.ndarray]:
    """:data:`CROSS_FOLDS` masks of square blocks covering the image, each block in one fold (a fixed pattern).

    The block side is twice the median distance of the missing pixels to clear ground (4 to 32 px), so that a
    hidden block's interpolation is about as far from known pixels as the gaps' is.
    """
    depth = ndimage.distance_transform_edt(missing)[missing] if missing.any() else np.array([2.0])
    side = int(np.clip(2 * np.median(depth), 4, 32))
    rows, cols = np.indices(clear.shape) // side
    fold_of = (rows % 2) * 2 + (cols + rows // 2) % 2  # neighbouring blocks in other folds
    return [fold_of == k for k in range(CROSS_FOLDS)]


def inpainting_estimates(
    target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], names: set[str] | None = None
) -> dict[str, np.ndarray]:
    """The instant fills of the unknown pixels, by name (all, or those in ``names``).

    GDAL Fill nodata (``interpolation``), biharmonic (``smooth interpolation``),
    and with guides the global and the moving-window guide regression, the
    latter also with its residual carried into the gaps (:func:`spread_residual`).
    """
    wanted = names or {
        "interpolation",
        "smooth interpolation",
        *(
            ("guide regression", "moving-window guide regression", "moving-window guide regression + residual")
            if guides
            else ()
        ),
    }
    estimates = {}
    if "interpolation" in wanted:
        estimates["interpolation"] = fill_nodata(target, ~known)
    if "smooth interpolation" in wanted:
        estimates["smooth interpolation"] = biharmonic(target, ~known)
    if "guide regression" in wanted:
        estimates["guide regression"] = regression(target, known, guides)
    if wanted & {"moving-window guide regression", "moving-window guide regression + residual"}:
        local = local_regression(target, known, guides)
        estimates["moving-window guide regression"] = local
        estimates["moving-window guide regression + residual"] = local + spread_residual(target - local, known)
    return estimates


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


def _dissimilarity(estimate: np.ndarray, target: np.ndarray, holdout: np.ndarray, known: np.ndarray) -> np.ndarray:
    """1 - the structural similarity of each band over the held-out pixels (``known`` pixels as they are)."""
    holdout = np.broadcast_to(holdout, target.shape)
    reference = np.where(known, target, estimate)
    predicted = np.where(holdout, estimate, reference)
    if min(target.shape[1:]) < SSIM_WINDOW:  # too small for a structural similarity: the squared error ranks them
        return np.array(
            [np.mean((p[h] - r[h]) ** 2) if h.any() else np.inf for p, r, h in zip(predicted, reference, holdout)]
        )
    maps = ssim_map(predicted, reference)
    return np.array([1 - m[h].mean() if h.any() else np.inf for m, h in zip(maps, holdout)])
