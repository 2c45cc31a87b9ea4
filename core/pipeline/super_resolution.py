"""Guided super-resolution of a raster file onto the first guide's grid, tile by tile (:mod:`core.pipeline.runs`)."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np

from ..callbacks import Callbacks
from ..choices import TILE_FITS, DegradationKind, Scope
from ..config import Settings
from ..errors import InputError
from ..model.degradation import BLUR_REACH, Degradation
from ..raster.gdal_exceptions import gdal_exceptions
from ..raster.io import Grid, RasterWriter, aligned_path, grid_of, low_res_grid, read_window, writer_profile
from ..raster.tiling import Window, tile_windows
from ..sharpening import describe_blur
from .runs import WRITE_BLOCK, RunResult, finish, scalings_of, scratch_folder
from .stages import timed
from .tiles import Blend, TileJob, fit_all

__all__ = ["super_resolve_raster"]

CONTEXT = 16  # low-resolution pixels of context around each block made consistent


@gdal_exceptions()
def super_resolve_raster(
    low_res: str,
    guides: Sequence[str],
    output: str,
    settings: Settings | None = None,
    *,
    radar_guides: Sequence[str] = (),
    callbacks: Callbacks | None = None,
) -> RunResult:
    """Super-resolve the raster file ``low_res`` onto the first guide's grid and write ``output`` (GeoTIFF).

    The scale factor (any, not only integers) comes from the grids: ``low_res``
    is read over the first guide's extent at its own pixel size. Tiles of
    ``settings.tile_size`` output pixels are cut at low-resolution pixel
    boundaries, all fitted and blended. The output keeps the input's data type,
    nodata and band names; where the input has no data (nodata, or outside its
    extent), so has the output (in bands with a nodata value).
    """
    started = time.perf_counter()
    settings = settings or Settings()  # resolved once the tiles are known (the scope depends on their number)
    callbacks = (callbacks or Callbacks()).within(settings.time_limit)
    all_guides = [*guides, *radar_guides]
    if not all_guides:
        raise InputError("super-resolution needs at least one high-resolution guide")
    radar = tuple(range(len(guides), len(all_guides)))
    grid = grid_of(all_guides[0])
    bands, meta = writer_profile(low_res)
    low_grid = low_res_grid(low_res, grid)
    if low_grid.width >= grid.width or low_grid.height >= grid.height:
        raise InputError(
            f"the low-resolution raster ({low_grid.width} x {low_grid.height} px over the guides' extent) must be "
            f"coarser than the first guide ({grid.width} x {grid.height} px): choose high-resolution guides"
        )
    scale = (grid.height / low_grid.height, grid.width / low_grid.width)
    callbacks.say(f"scale factor {scale[1]:.3g} x {scale[0]:.3g}; output grid {grid.width} x {grid.height} px")
    inputs = [("low-resolution raster", low_res), *(("guide", path) for path in all_guides)]
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mcpn-", dir=scratch_folder([output], inputs)) as scratch:
        with timed(times, "preparation"):
            low_path = _low_res_path(low_res, low_grid, scratch)
            guide_paths = tuple(aligned_path(p, grid, scratch, "bilinear", "guide") for p in all_guides)
            pairs = _low_res_tiles(low_grid, grid, scale, settings.tile_size, settings.overlap)
            if settings.scope is Scope.AUTO and len(pairs) > TILE_FITS:
                callbacks.say(f"{len(pairs)} tiles: one network for the scene (auto: one per tile up to {TILE_FITS})")
            settings = settings.resolved(super_resolution=True, tiles=len(pairs))
            scalings = scalings_of(low_path, None, guide_paths, radar)
        jobs = [
            TileJob(i, high, low_path, low, guide_paths, None, scalings, radar, settings)
            for i, (low, high) in enumerate(pairs)
        ]
        estimated = settings.sensor_blur is None
        if estimated:  # one for the whole run: estimated on the middle tile
            with timed(times, "estimates"):
                sample, _ = jobs[len(jobs) // 2].read({})
            settings = replace(settings, sensor_blur=sample.degradation.blur)
            jobs = [replace(job, settings=settings) for job in jobs]
        blur_note = describe_blur(settings.sensor_blur, estimated)
        callbacks.say(blur_note)
        callbacks.say(f"fitting MCPN {settings.method} for up to {settings.steps} steps in {len(jobs)} tile(s)")
        overlap = max(1, settings.overlap) if len(jobs) > 1 else 0
        # Where the input has no data (nodata, or outside it), so has the output: each output pixel
        # takes the validity of the input pixel it lies in. A band without a nodata value cannot mark
        # missing pixels, so it keeps the fitted values everywhere.
        footprint = aligned_path(low_res, grid, scratch, "near", "low-resolution raster")
        no_flag = np.array([value is None for value in meta["nodata"]])[:, None, None]
        with Blend(scratch, grid.height, grid.width, bands, False, [high for _, high in pairs], overlap) as blend:
            fit_all(jobs, blend.add, times, callbacks)
            with timed(times, "write"), RasterWriter(output, grid, bands, **meta) as writer:
                blocks = _consistent_blocks(blend, low_path, low_grid, grid, settings.degradation, settings.sensor_blur)
                for window, image in blocks:
                    callbacks.check_cancel()
                    valid = np.isfinite(read_window(footprint, window)) | no_flag
                    writer.write(window, np.where(valid, image, np.nan))
                writer.commit()
    result = finish(settings, output, [high for _, high in pairs], blend.fits, started, callbacks, times)
    result.notes.insert(0, blur_note)
    return result


def _consistent_blocks(
    blend: Blend, low_path: str, low: Grid, high: Grid, kind: DegradationKind, blur: float
) -> Iterator[tuple[Window, np.ndarray]]:
    """The blended output block by block, corrected so that the whole of it degrades exactly to the input.

    Tiles are each consistent with their part of the input, but their blend is not where they overlap.
    Each block is corrected with :data:`CONTEXT` low-resolution pixels around it: a pixel's correction
    depends on the residuals near it and decays by a factor of 5 or more per pixel, so neighbouring
    blocks agree to float rounding.
    """
    scale = (high.height / low.height, high.width / low.width)
    reach = [math.ceil(BLUR_REACH * blur * s) for s in scale]  # high-resolution pixels the blur reaches
    for block in tile_windows(low.height, low.width, max(8, math.ceil(WRITE_BLOCK / max(scale))), 0):
        rows = _span(block.row, block.height, low.height, CONTEXT)
        cols = _span(block.col, block.width, low.width, CONTEXT)
        high_rows = _covered(rows, scale[0], high.height, reach[0])
        high_cols = _covered(cols, scale[1], high.width, reach[1])
        values = read_window(low_path, Window(rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start))
        image = blend.read(
            Window(high_rows.start, high_cols.start, high_rows.stop - high_rows.start, high_cols.stop - high_cols.start)
        )[0]
        part = Degradation(
            kind, (high.height, high.width), (low.height, low.width), ((rows, cols), (high_rows, high_cols)), blur
        )
        known = np.isfinite(values)
        image = part.project_numpy(image, np.where(known, values, 0.0), known)
        top, bottom = round(block.row * scale[0]), round((block.row + block.height) * scale[0])
        left, right = round(block.col * scale[1]), round((block.col + block.width) * scale[1])
        owned = Window(top, left, min(bottom, high.height) - top, min(right, high.width) - left)
        yield (
            owned,
            image[
                :,
                top - high_rows.start : top - high_rows.start + owned.height,
                left - high_cols.start : left - high_cols.start + owned.width,
            ],
        )


def _span(start: int, length: int, size: int, margin: int) -> slice:
    return slice(max(0, start - margin), min(size, start + length + margin))


def _covered(low: slice, scale: float, size: int, reach: int) -> slice:
    """The high-resolution pixels that the low-resolution pixels ``low`` are made from (for either degradation,
    and a blur ``reach`` pixels wide)."""
    start, stop = math.floor((low.start - 1) * scale) - reach, math.ceil((low.stop + 1) * scale) + reach
    return slice(max(0, start), min(size, stop))


def _low_res_path(path: str, low_grid: Grid, scratch: str) -> str:
    """``path`` itself when it lies on ``low_grid``, else a VRT averaging it onto that grid."""
    if grid_of(path).same_as(low_grid, tolerance=1e-3):
        return path
    return aligned_path(path, low_grid, scratch, "average", "low-resolution raster")


def _low_res_tiles(
    low: Grid, high: Grid, scale: tuple[float, float], tile: int, overlap: int
) -> list[tuple[Window, Window]]:
    """Pairs of (low-resolution window, output window) cut at low-resolution pixel boundaries."""
    low_tile = max(4, math.floor(tile / max(scale)))
    low_overlap = (
        min(low_tile // 2 - 1, math.ceil(overlap / min(scale))) if low_tile < max(low.height, low.width) else 0
    )
    pairs = []
    for window in tile_windows(low.height, low.width, low_tile, max(0, low_overlap)):
        top, left = round(window.row * scale[0]), round(window.col * scale[1])
        bottom = round((window.row + window.height) * scale[0])
        right = round((window.col + window.width) * scale[1])
        pairs.append((window, Window(top, left, min(bottom, high.height) - top, min(right, high.width) - left)))
    return pairs
