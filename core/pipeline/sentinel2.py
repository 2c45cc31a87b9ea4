"""A cloud-free 10 m product from a cloudy Sentinel-2 product and guide products of other dates.

The bands of each resolution group are read over the area of interest with the processing-baseline offset
removed; the clouds (the scene classification's cloud classes, or the user's mask) of the 10 m and of the
20 m bands are filled from the guide products' bands of the same group (:func:`inpaint_raster`, where a
guide is itself cloudy its pixels count as missing); the filled 20 m bands are brought to 10 m with the
filled 10 m bands as guides (:func:`super_resolve_raster`); one 10 m GeoTIFF of reflectance x 10000 (nodata
0) holds the chosen bands with their names and wavelengths.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
from osgeo import gdal

from ..callbacks import Callbacks
from ..config import Settings
from ..errors import InputError
from ..raster.gdal_exceptions import gdal_exceptions
from ..raster.io import Grid, RasterWriter, aligned_path, grid_of, polygons_extent, rasterise, read_window
from ..raster.masks import CloudMask, MaskLayer, parse_mask_values
from ..raster.sentinel2 import (
    BANDS,
    DEFAULT_BANDS,
    NODATA,
    Product,
    open_product,
    product_grid,
    write_bands,
    write_cloud,
)
from ..raster.tiling import tile_windows
from .inpainting import inpaint_raster, mask_layer
from .runs import WRITE_BLOCK, RunResult, scratch_folder
from .stages import STAGES_NOTE, describe, merged
from .super_resolution import super_resolve_raster

__all__ = ["DEFAULT_BANDS", "SCL_CLOUD", "sentinel2_product"]

SCL_CLOUD = "3,8,9,10"  # cloud shadow, cloud medium and high probability, thin cirrus
FILLED, UNFILLED = 1, 2  # values of the filled-pixels mask (0: clear)


@gdal_exceptions()
def sentinel2_product(
    target: str,
    guides: Sequence[str],
    output: str,
    settings: Settings | None = None,
    *,
    radar_guides: Sequence[str] = (),
    cloud_classes: str = SCL_CLOUD,
    mask: CloudMask | None = None,
    area: tuple[float, float, float, float] | None = None,
    area_polygons: str | None = None,
    bands: Sequence[str] = DEFAULT_BANDS,
    filled: str | None = None,
    callbacks: Callbacks | None = None,
) -> RunResult:
    """Fill the clouds of the Sentinel-2 product ``target`` from the ``guides`` (products of other dates) and
    write ``bands`` at 10 m over ``area`` (xmin, ymin, xmax, ymax in the product's CRS; None: all of it, or the
    extent of ``area_polygons``, a vector file whose polygons the output is clipped to: nodata outside them).

    The clouds are the target's scene classification classes ``cloud_classes`` (Level-2A), or ``mask`` when
    given (needed for Level-1C). ``radar_guides`` (linear backscatter rasters) help both fills. ``filled``
    (a path) receives a Byte mask: 1 where a pixel was filled, 2 where it stays unfilled (nodata) because
    every guide is cloudy or missing there too, 0 elsewhere.
    """
    started = time.perf_counter()
    settings = settings or Settings()
    callbacks = (callbacks or Callbacks()).within(settings.time_limit)
    settings = replace(settings, time_limit=0.0)  # the deadline is the whole run's, in the callbacks
    unknown = [band for band in bands if band not in BANDS]
    if unknown or not bands:
        raise InputError(f"choose output bands among {', '.join(BANDS)} (not: {', '.join(unknown) or 'none'})")
    if not guides:
        raise InputError("give at least one guide product: a Sentinel-2 product of the same place on another date")
    parse_mask_values(cloud_classes)
    product = open_product(target)
    guide_products = [open_product(path) for path in guides]
    if mask is None and product.level != "2A":
        raise InputError(
            f"The Level-1C product {product.label} has no scene classification layer to find its clouds in: "
            "give a cloud mask layer."
        )
    if area_polygons and area is None:
        area = polygons_extent(area_polygons, product_grid(product, None, 10).crs_wkt)
    grid = product_grid(product, area, 10)
    grid20 = product_grid(product, area, 20)
    inputs = [("target product", target), *(("guide product", path) for path in guides)]
    inputs += [("cloud mask", mask.raster if mask else None), *(("radar guide", path) for path in radar_guides)]
    inputs += [("area of interest polygons", area_polygons)]
    with tempfile.TemporaryDirectory(prefix="mcpn-s2-", dir=scratch_folder([output, filled], inputs)) as scratch:
        offset = product.offset("B02")
        callbacks.say(
            f"{product.label}, Level-{product.level}: {grid.width} x {grid.height} px at 10 m"
            + (f", offset {offset:g} removed" if offset else "")
        )
        if mask is None:
            mask = CloudMask(write_cloud(product, cloud_classes, grid, os.path.join(scratch, "cloud.tif")), "1")
        layer = mask_layer(mask, grid, scratch)
        inside = None  # read before the fits: an unreadable polygon file fails at once
        if area_polygons:
            inside = rasterise(area_polygons, grid, os.path.join(scratch, "area.tif"), "area of interest polygons")
        bands10 = [b for b in BANDS if BANDS[b][0] == 10]  # all four: the guides of the 20 m bands
        bands20 = [b for b in bands if BANDS[b][0] == 20]
        target10, guides10 = _stacks(product, guide_products, bands10, grid, cloud_classes, scratch)
        radar = [aligned_path(path, grid, scratch, "bilinear", "radar guide") for path in radar_guides]
        unfilled = _unfilled(
            target10, layer, guides10, guide_products, radar, os.path.join(scratch, "unfilled.tif"), callbacks
        )
        runs = 3 if bands20 else 1
        filled10 = os.path.join(scratch, "filled_10m.tif")
        results = [
            inpaint_raster(target10, mask, guides10, filled10, settings, radar_guides=radar_guides,
                           callbacks=callbacks.part(0, runs))
        ]  # fmt: skip
        sources = {band: (filled10, index) for index, band in enumerate(bands10)}
        if bands20:
            target20, guides20 = _stacks(product, guide_products, bands20, grid20, cloud_classes, scratch)
            filled20 = os.path.join(scratch, "filled_20m.tif")
            callbacks.say("filling the 20 m bands")
            results.append(
                inpaint_raster(target20, mask, guides20, filled20, settings, radar_guides=radar_guides,
                               callbacks=callbacks.part(1, runs))
            )  # fmt: skip
            callbacks.say("bringing the 20 m bands to 10 m, the filled 10 m bands as guides")
            sharpened = os.path.join(scratch, "sharpened_20m.tif")
            results.append(
                super_resolve_raster(filled20, [filled10], sharpened, settings, callbacks=callbacks.part(2, runs))
            )
            sources.update({band: (sharpened, index) for index, band in enumerate(bands20)})
        _write_product(product, bands, grid, target10, layer, sources, unfilled, inside, output, filled)
    return _result(output, results, started)


def _stacks(
    product: Product, guides: Sequence[Product], bands: list[str], grid: Grid, classes: str, scratch: str
) -> tuple[str, list[str]]:
    """The target's ``bands`` and each guide product's on ``grid``, a Level-2A guide's own clouds as nodata."""
    resolution = BANDS[bands[0]][0]
    target = write_bands(product, resolution, bands, grid, os.path.join(scratch, f"target_{resolution}m.tif"), "near")
    paths = []
    for index, guide in enumerate(guides):
        path = os.path.join(scratch, f"guide{index}_{resolution}m.tif")
        cloud = write_cloud(guide, classes, grid, f"{path}.cloud.tif") if guide.level == "2A" else None
        paths.append(write_bands(guide, resolution, bands, grid, path, "bilinear", hide=cloud))
    return target, paths


def _unfilled(
    target: str,
    layer: MaskLayer,
    guides: Sequence[str],
    products: Sequence[Product],
    radar: Sequence[str],
    path: str,
    callbacks: Callbacks,
) -> str | None:
    """``path``, a 0/1 raster of the target's gaps (clouds and nodata) that no guide product shows clear and no
    radar guide covers, or None when there are none; an error for a guide product that shows nothing of the area,
    or when no gap pixel can be filled."""
    grid = grid_of(target)
    gaps = left = 0
    shown = np.zeros(len(guides) + len(radar), bool)
    box = [np.inf, np.inf, -np.inf, -np.inf]  # rows and columns of the unfilled pixels
    with RasterWriter(path, grid, 1, gdal.GDT_Byte) as writer:
        for window in tile_windows(grid.height, grid.width, WRITE_BLOCK, 0):
            callbacks.check_cancel()
            gap = layer.read(window) | ~np.isfinite(read_window(target, window)).all(axis=0)
            clear = [np.isfinite(read_window(guide, window)).all(axis=0) for guide in [*guides, *radar]]
            shown |= [c.any() for c in clear]
            alone = gap & ~np.any(clear, axis=0)
            gaps, left = gaps + int(gap.sum()), left + int(alone.sum())
            if alone.any():
                rows, cols = np.nonzero(alone)
                box = [min(box[0], window.row + rows.min()), min(box[1], window.col + cols.min()),
                       max(box[2], window.row + rows.max() + 1), max(box[3], window.col + cols.max() + 1)]  # fmt: skip
            writer.write(window, alone[None].astype(np.float64))
        for guide, seen in zip(products, shown):
            if not seen:
                raise InputError(
                    f"The guide product {guide.label} shows nothing of the area processed: it does not overlap "
                    "the target (another tile or orbit?) or is cloudy all over it. Give a guide of the same place."
                )
        if gaps and left == gaps:
            raise InputError(
                f"Every guide product is cloudy or has no data wherever the target is cloudy: none of its {gaps} "
                "cloudy pixels at 10 m can be filled. Give a guide product of a clearer date."
            )
        if not left:
            return None
        writer.commit()
    gt = grid.geotransform
    callbacks.say(
        f"warning: {left} of {gaps} cloudy pixels at 10 m are cloudy or missing in every guide too, within x "
        f"{gt[0] + gt[1] * box[1]:.0f} to {gt[0] + gt[1] * box[3]:.0f}, y {gt[3] + gt[5] * box[2]:.0f} to "
        f"{gt[3] + gt[5] * box[0]:.0f} in the product's CRS: they stay unfilled (nodata, and 2 in the "
        "filled-pixels mask)"
    )
    return path


def _write_product(
    product: Product,
    bands: Sequence[str],
    grid: Grid,
    target: str,
    layer: MaskLayer,
    sources: dict[str, tuple[str, int]],
    unfilled: str | None,
    inside: str | None,
    output: str,
    filled: str | None,
) -> None:
    """The output (``bands`` from ``sources``: band -> (file, 0-based band)) as reflectance x 10000, nodata 0,
    band names and wavelengths, nodata outside the area of interest's polygons (``inside``: 1 within them); and
    the filled-pixels mask."""
    mask_writer = RasterWriter(filled, grid, 1, gdal.GDT_Byte, None, ["1 filled, 2 unfilled"]) if filled else None
    with RasterWriter(output, grid, len(bands), gdal.GDT_UInt16, NODATA, list(bands)) as writer, (
        mask_writer or nullcontext()
    ) as mask:
        for index, band in enumerate(bands):
            metadata = {"BANDNAME": band, "WAVELENGTH": f"{BANDS[band][1]:g}", "WAVELENGTH_UNIT": "nm"}
            writer.ds.GetRasterBand(index + 1).SetMetadata(metadata)
        writer.ds.SetMetadata({
            "SOURCE_PRODUCT": product.name,
            "VALUES": "surface (Level-2A) or top-of-atmosphere (Level-1C) reflectance x 10000, "
            "processing-baseline offset removed",
        })  # fmt: skip
        for window in tile_windows(grid.height, grid.width, WRITE_BLOCK, 0):
            left = read_window(unfilled, window)[0] > 0 if unfilled else np.zeros((window.height, window.width), bool)
            outside = read_window(inside, window)[0] == 0 if inside else np.zeros_like(left)
            values = np.stack([read_window(path, window)[i] for path, i in (sources[band] for band in bands)])
            writer.write(window, np.where(left | outside, np.nan, values))
            if mask is not None:
                gap = layer.read(window) | ~np.isfinite(read_window(target, window)).all(axis=0)
                kind = np.where(left, UNFILLED, gap * FILLED)
                mask.write(window, np.where(outside, 0, kind)[None].astype(np.float64))
        if mask is not None:
            mask.commit()
        writer.commit()


def _result(output: str, results: Sequence[RunResult], started: float) -> RunResult:
    """One result for the run's fills and super-resolution."""
    seconds = time.perf_counter() - started
    stages = merged(result.stages for result in results)
    notes = [note for result in results for note in result.notes if not note.startswith(STAGES_NOTE)]
    devices = sorted({d for result in results for d in result.device.split(", ") if d != "none"}) or ["none"]
    return RunResult(
        output,
        sum(r.tiles for r in results),
        sum(r.fitted for r in results),
        ", ".join(devices),
        seconds,
        [step for result in results for step in result.chosen_steps],
        next((r.trace for r in results if r.trace), []),
        [*dict.fromkeys(notes), describe(stages, seconds)],
        stages=stages,
    )
