"""Guided cloud inpainting of a raster file, tile by tile (see :mod:`core.pipeline.runs`).

Only the tiles with missing pixels are fitted, so the cost grows with the
cloudy area, not with the scene; clear pixels are copied unchanged.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np
from osgeo import gdal

from ..callbacks import Callbacks
from ..config import Settings
from ..errors import InputError
from ..model.device import fit_on_device
from ..raster import masks
from ..raster.gdal_exceptions import gdal_exceptions
from ..raster.io import (
    Grid,
    RasterWriter,
    aligned_path,
    grid_of,
    rasterise,
    read_decimated,
    read_window,
    writer_profile,
)
from ..raster.masks import CloudMask, MaskLayer
from ..raster.tiling import Window, tile_windows
from ..trust.self_validation import Validation, validate
from .normalisation import BandScaling
from .runs import PREVIEW_SIDE, WRITE_BLOCK, RunResult, finish, scalings_of, scratch_folder
from .sample import Sample
from .stages import timed
from .tiles import Blend, TileJob, fit_all

__all__ = ["CloudMask", "inpaint_raster", "mask_layer"]


@gdal_exceptions()
def inpaint_raster(
    target: str,
    mask: CloudMask,
    guides: Sequence[str],
    output: str,
    settings: Settings | None = None,
    *,
    radar_guides: Sequence[str] = (),
    uncertainty: str | None = None,
    callbacks: Callbacks | None = None,
) -> RunResult:
    """Fill the missing pixels of the raster file ``target`` and write the result to ``output`` (GeoTIFF).

    Missing pixels are the ``mask``'s clouds and the target's nodata; guides,
    radar guides (linear backscatter, converted to dB) and mask may be on any
    grid or CRS (warped to the target's grid; outside a guide's coverage its
    pixels are left out of its loss). The output keeps the target's grid, data
    type, nodata and band names, and its clear pixels. With
    ``settings.ensemble`` K > 1 every tile is fitted K times with seeds
    ``seed``..``seed + K - 1``: the output is their mean and ``uncertainty``
    (a path) receives their standard deviation on the filled pixels (0
    elsewhere). ``settings.self_validation`` first scores the fill on clear
    pixels of one cloudy tile hidden under synthetic clouds (:mod:`core.trust.self_validation`).
    """
    started = time.perf_counter()
    settings = (settings or Settings()).resolved()
    callbacks = (callbacks or Callbacks()).within(settings.time_limit)
    if mask.raster is None and mask.polygons is None:
        raise InputError("give a cloud mask: a mask raster, cloud polygons or both")
    if mask.dilation < 0:
        raise InputError("the mask dilation must be zero or a positive number of pixels")
    grid = grid_of(target)
    bands, meta = writer_profile(target)
    all_guides = [*guides, *radar_guides]
    radar = tuple(range(len(guides), len(all_guides)))
    inputs = [("target", target), ("cloud mask", mask.raster), ("cloud polygons", mask.polygons)]
    inputs += [("guide", path) for path in all_guides]
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mcpn-", dir=scratch_folder([output, uncertainty], inputs)) as scratch:
        with timed(times, "preparation"):
            layer = mask_layer(mask, grid, scratch)
            guide_paths = tuple(aligned_path(p, grid, scratch, "bilinear", "guide") for p in all_guides)
            windows = tile_windows(grid.height, grid.width, settings.tile_size, settings.overlap)
            cloudy, clear = _cloudy_windows(target, layer, windows, callbacks)
            scalings = scalings_of(target, layer, guide_paths, radar) if cloudy else ()
        jobs = [TileJob(i, w, target, w, guide_paths, layer, scalings, radar, settings) for i, w in enumerate(cloudy)]
        if cloudy:
            tiles = f" in {len(cloudy)} of {len(windows)} tiles" if len(windows) > 1 else ""
            callbacks.say(f"fitting MCPN {settings.method} for up to {settings.steps} steps{tiles}")
        validation = None
        if settings.self_validation and cloudy:
            balance = [min(count, w.height * w.width - count) for w, count in zip(cloudy, clear)]
            window = cloudy[int(np.argmax(balance))]  # as much cloud shape as clear ground to hide it on
            first = callbacks.part(0, len(jobs) + 1)
            with timed(times, "self-validation"):
                validation = _self_validate(settings, target, layer, guide_paths, radar, scalings, window, first)
            callbacks = callbacks.part(1, len(jobs) + 1, len(jobs))
        overlap = settings.overlap if len(windows) > 1 else 0
        with Blend(scratch, grid.height, grid.width, bands, uncertainty is not None, cloudy, overlap) as blend:
            fit_all(jobs, blend.add, times, callbacks)
            with timed(times, "write"):
                filled = _write(target, layer, grid, bands, meta, blend, output, uncertainty, callbacks)
        callbacks.say(f"{filled} of {grid.width * grid.height} pixels filled (clouds and nodata)")
        previews = {
            "input": read_decimated(target, PREVIEW_SIDE),
            "cloud mask": layer.read_decimated(PREVIEW_SIDE),
            "output": read_decimated(output, PREVIEW_SIDE),
        }
    return finish(settings, output, windows, blend.fits, started, callbacks, times, uncertainty=uncertainty,
                  validation=validation, previews=previews)  # fmt: skip


def mask_layer(mask: CloudMask, grid: Grid, scratch: str) -> MaskLayer:
    """The cloud mask on the target's grid (the mask raster warped, the polygons burnt)."""
    return MaskLayer(
        aligned_path(mask.raster, grid, scratch, "near", "cloud mask") if mask.raster else None,
        tuple(masks.parse_mask_values(mask.values)),
        rasterise(mask.polygons, grid, f"{scratch}/polygons.tif") if mask.polygons else None,
        int(mask.dilation),
        grid.height,
        grid.width,
    )


def _cloudy_windows(
    target: str, layer: MaskLayer, windows: list[Window], callbacks: Callbacks
) -> tuple[list[Window], list[int]]:
    """The windows with missing pixels and their count of clear pixels; an error when no pixel is known."""
    cloudy, clear, any_known = [], [], None
    for window in windows:
        callbacks.check_cancel()
        known = np.isfinite(read_window(target, window)) & ~layer.read(window)
        found = known.any(axis=(1, 2))
        any_known = found if any_known is None else any_known | found
        if not known.all():
            cloudy.append(window)
            clear.append(int(known.all(axis=0).sum()))
    if not cloudy:
        callbacks.say("the mask marks no pixel as missing and the target has no nodata: the target is copied")
    elif not any_known.all():
        raise InputError(
            "no pixel of the target is known (the cloud mask or nodata covers it all): nothing to learn from"
        )
    return cloudy, clear


def _write(
    target: str,
    layer: MaskLayer,
    grid: Grid,
    bands: int,
    meta: dict,
    blend: Blend,
    output: str,
    uncertainty: str | None,
    callbacks: Callbacks,
) -> int:
    """Write the output (and the uncertainty layer) window by window; the count of filled pixels."""
    filled = 0
    with RasterWriter(output, grid, bands, **meta) as writer, _uncertainty_writer(uncertainty, grid, bands) as spread:
        for window in tile_windows(grid.height, grid.width, WRITE_BLOCK, 0):
            callbacks.check_cancel()
            values = read_window(target, window)
            known = np.isfinite(values) & ~layer.read(window)
            filled += int((~known.all(axis=0)).sum())
            mean, deviation = blend.read(window)
            writer.write(window, np.where(known, values, mean))
            if spread is not None:
                spread.write(window, np.where(known, 0.0, deviation))
        if spread is not None:
            spread.commit()
        writer.commit()
    return filled


def _self_validate(
    settings: Settings,
    target: str,
    layer: MaskLayer,
    guides: Sequence[str],
    radar: Sequence[int],
    scalings: Sequence[BandScaling],
    window: Window,
    callbacks: Callbacks,
) -> Validation:
    """Self-validation on one cloudy tile: its clear pixels hidden under synthetic clouds, fitted as the run would.

    The tile is normalised with the scene's ``scalings``, as the run's tiles are.
    """
    callbacks.say(
        f"self-validation: hiding clear pixels of the tile at row {window.row}, column {window.col} under synthetic "
        "clouds and filling them (one extra fit)"
    )
    values = read_window(target, window)
    guide_values = [read_window(path, window) for path in guides]

    def fill(masked: np.ndarray, cloud: np.ndarray) -> np.ndarray:
        known = np.isfinite(masked) & ~cloud
        sample = Sample.prepare(masked, known, guide_values, masked.shape[1:], settings, radar, scalings)
        (fitted,), _ = fit_on_device([sample.problem()], settings, callbacks)
        return np.where(known, masked, sample.scaling.invert(fitted.output))

    def instant(masked: np.ndarray, cloud: np.ndarray) -> np.ndarray:  # the estimate the fit above starts from
        known = np.isfinite(masked) & ~cloud
        sample = Sample.prepare(masked, known, guide_values, masked.shape[1:], settings, radar, scalings)
        return np.where(known, masked, sample.scaling.invert(sample.anchor.image))

    validation = validate(values, layer.read(window), fill, seed=settings.seed,
                          instant=instant if settings.anchored else None)  # fmt: skip
    estimate = "" if validation.instant_ssim is None else (
        f"; instant estimate SSIM {validation.instant_ssim:.3f}, RMSE {validation.instant_rmse:.4g}"
    )  # fmt: skip
    callbacks.say(
        f"self-validation on {validation.hidden_pixels} hidden pixels: MCPN SSIM {validation.mcpn_ssim:.3f}, "
        f"RMSE {validation.mcpn_rmse:.4g}{estimate}; GDAL Fill nodata SSIM {validation.gdal_ssim:.3f}, "
        f"RMSE {validation.gdal_rmse:.4g}"
    )
    return validation


def _uncertainty_writer(path: str | None, grid: Grid, bands: int) -> AbstractContextManager:
    """A float32 writer for the uncertainty layer, or a no-op context when none is asked for."""
    if path is None:
        return nullcontext(None)
    return RasterWriter(path, grid, bands, gdal.GDT_Float32, None, [f"spread of band {i + 1}" for i in range(bands)])
