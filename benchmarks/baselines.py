"""Baselines: what a QGIS user can do today without MCPN.

Gap filling (``target`` ``(bands, H, W)``, ``mask`` ``(H, W)`` bool, True = cloud):

- :func:`fill_gdal` - GDAL "Fill nodata" (inverse-distance interpolation from
  the gap's edge, ``gdal.FillNodata``), the tool behind QGIS's
  *Raster > Analysis > Fill nodata*.
- :func:`fill_biharmonic` - scikit-image biharmonic inpainting (smooth surface
  continued into the gap).
- :func:`fill_regression` - per target band, a linear regression from all guide
  bands (plus an intercept) fitted on the clear pixels and applied under the
  cloud (what one would do with the raster calculator and a scatter plot).

Super-resolution (``low_res`` ``(bands, h, w)``, guides ``(g, H, W)``):

- :func:`upsample_bicubic` - bicubic interpolation to the guide grid, any
  (non-integer) factor.
- :func:`brovey` - ratio-based detail injection, in the spirit of GDAL's Brovey
  pansharpening; see its docstring for how it differs from
  ``gdal.CreatePansharpenedVRT``.

All functions take and return float numpy arrays in the input's units (output
float64). NaN handling: in gap filling, NaN pixels of the target are treated as
missing too and are filled; NaN guide pixels are replaced by that guide band's
mean over the clear pixels. The super-resolution functions reject NaN input.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from osgeo import gdal
from skimage.restoration import inpaint_biharmonic

gdal.UseExceptions()


def _check_gap_inputs(target: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return a float64 (bands, H, W) target and the full (H, W) set of pixels to fill."""
    t = np.asarray(target, dtype=np.float64)
    if t.ndim == 2:
        t = t[None]
    m = np.asarray(mask, dtype=bool)
    if t.ndim != 3 or m.shape != t.shape[1:]:
        raise ValueError(f"target {np.shape(target)} and mask {np.shape(mask)} do not match")
    missing = m | ~np.isfinite(t).all(axis=0)
    if missing.all():
        raise ValueError("no clear pixel to fill from")
    return t, missing


# --------------------------------------------------------------------------- gap filling


def fill_gdal(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """GDAL Fill nodata, band by band, on in-memory (MEM) rasters.

    The search distance is the image diagonal, so every gap pixel is filled;
    no smoothing iterations are run (GDAL's default in QGIS is 0 as well).
    """
    t, missing = _check_gap_inputs(target, mask)
    bands, height, width = t.shape
    max_dist = float(np.hypot(height, width)) + 1.0
    driver = gdal.GetDriverByName("MEM")
    out = np.empty_like(t)
    for b in range(bands):
        ds = driver.Create("", width, height, 2, gdal.GDT_Float64)
        values = np.where(missing, 0.0, t[b])
        ds.GetRasterBand(1).WriteArray(values)
        mask_ds = driver.Create("", width, height, 1, gdal.GDT_Byte)
        mask_band = mask_ds.GetRasterBand(1)
        mask_band.WriteArray((~missing).astype(np.uint8))  # non-zero = valid
        gdal.FillNodata(ds.GetRasterBand(1), mask_band, max_dist, 0)
        out[b] = ds.GetRasterBand(1).ReadAsArray()
        ds = mask_ds = None
    out[:, ~missing] = t[:, ~missing]
    return out


def fill_biharmonic(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """scikit-image biharmonic inpainting of all bands together (``channel_axis``)."""
    t, missing = _check_gap_inputs(target, mask)
    filled = inpaint_biharmonic(np.where(missing, 0.0, t).transpose(1, 2, 0), missing, channel_axis=-1)
    out = np.asarray(filled, dtype=np.float64).transpose(2, 0, 1)
    out[:, ~missing] = t[:, ~missing]
    return out


def fill_regression(target: np.ndarray, mask: np.ndarray, guides: np.ndarray) -> np.ndarray:
    """Per-band least-squares regression ``target_b ~ guides + 1`` on clear pixels, applied in the gap."""
    t, missing = _check_gap_inputs(target, mask)
    g = np.asarray(guides, dtype=np.float64)
    if g.ndim == 2:
        g = g[None]
    if g.shape[1:] != t.shape[1:]:
        raise ValueError(f"guides {g.shape} are not on the target grid {t.shape}")
    g = g.copy()
    for k in range(g.shape[0]):
        bad = ~np.isfinite(g[k])
        if bad.any():
            good = ~bad & ~missing
            g[k][bad] = g[k][good].mean() if good.any() else 0.0
    design = np.concatenate([g.reshape(g.shape[0], -1).T, np.ones((g[0].size, 1))], axis=1)
    clear = ~missing.ravel()
    out = t.copy()
    for b in range(t.shape[0]):
        coef, *_ = np.linalg.lstsq(design[clear], t[b].ravel()[clear], rcond=None)
        out[b][missing] = (design[~clear] @ coef).astype(np.float64)
    return out


# --------------------------------------------------------------------------- resampling


def _resample(image: np.ndarray, size: tuple[int, int], mode: str, antialias: bool = False) -> np.ndarray:
    """Resample a (bands, H, W) array with torch's interpolate (half-pixel aligned grids)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if not np.isfinite(a).all():
        raise ValueError("resampling input must not contain NaN / inf")
    x = torch.from_numpy(np.ascontiguousarray(a))[None]
    out_size = (int(size[0]), int(size[1]))
    y = F.interpolate(x, size=out_size, mode=mode, align_corners=False, antialias=antialias)
    return y[0].numpy()


def downsample(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear downsampling to ``size`` = (h, w) (the benchmarks' degradation)."""
    return _resample(image, size, "bilinear", antialias=True)


def upsample_bicubic(low_res: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic upsampling of ``low_res`` (bands, h, w) to ``size`` = (H, W); any factor."""
    return _resample(low_res, size, "bicubic")


def brovey(low_res: np.ndarray, guides: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Ratio-based detail injection from a synthetic panchromatic band (Brovey / SFIM style).

    ``pan`` is the mean of the guide bands. Its low-pass version is made the way
    the low-resolution image relates to the high-resolution one: ``pan`` is
    downsampled to the low-res grid (antialiased bilinear) and upsampled back
    bicubically. Each bicubically upsampled band is then multiplied by
    ``pan / pan_lowpass``, which injects the guide's spatial detail while
    keeping the band's local mean.

    GDAL's own Brovey (``gdal.CreatePansharpenedVRT``) instead divides the pan
    band by a weighted sum of the *multispectral* bands; with a target that is
    spectrally unlike the guide (e.g. NIR B08 guided by RGB) or with a single
    target band it would just replace the band by the guide's intensity, so the
    ratio is taken against the low-passed pan band here. If the guides are not
    strictly positive, ``pan`` is shifted to be positive before taking the ratio.
    """
    g = np.asarray(guides, dtype=np.float64)
    if g.ndim == 2:
        g = g[None]
    low = np.asarray(low_res, dtype=np.float64)
    if low.ndim == 2:
        low = low[None]
    if not np.isfinite(g).all():
        raise ValueError("guides must not contain NaN / inf")
    size = g.shape[1:]
    pan = g.mean(axis=0)
    lowpass = upsample_bicubic(downsample(pan, low.shape[1:]), size)[0]
    floor = min(pan.min(), lowpass.min())
    scale = max(float(np.abs(pan).max()), 1.0) * eps
    if floor <= scale:
        shift = scale - floor + 0.01 * float(pan.std() + scale)
        pan, lowpass = pan + shift, lowpass + shift
    ratio = pan / np.maximum(lowpass, scale)
    return upsample_bicubic(low, size) * ratio[None]
