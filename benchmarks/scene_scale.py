"""What a whole Sentinel-2 tile costs: the scene network on a large scene, from a file on disk to a file on disk.

A ``--size`` px square mosaic of the 1068 px scene of ``s2_time_pair`` (B04, B03, B02, B08 of
2018-08-05, guided by 2018-07-21), its copies mirrored so that they join without edges, under the
real 256 px cloud mask mirror-tiled as well (20 % cover, clouds in every tile), all written
window by window, is filled with one network for the scene (the engine's defaults otherwise),
timed stage by stage (:mod:`core.pipeline.stages`). The guide is on another grid, shifted by half a
pixel (its pixels the means of the target grid's 2 x 2 blocks), so the engine warps it as it
would a guide of another product. The fill runs in a fresh process, whose peak memory is reported. It is scored
over the clouds against the truth on up to four 1068 px blocks along the diagonal, next to the
moving-window guide regression on the same blocks. Below 10980 px the time of a 10980 x 10980 px
tile is extrapolated too: the scene fit and preparation as measured, the per-tile stages (read,
estimates, prediction, write) scaled by the number of tiles; the report says so.

    python benchmarks/scene_scale.py [--size 2136] [--steps 4000] [--time-limit 0] [--scheduler local:2]
        [--name scene_scale]

``--time-limit`` is the run's *Time limit (minutes)* (0: none), as a user sets it. ``--cloudy-tiles N`` keeps
the clouds of N tiles spread along the diagonal only (the rest clear): a short run of the same scene, for its
peak memory against the scene's size.

Results: benchmarks/results/scene_scope/<name>.{md,json}.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _harness import DATA_DIR, RESULTS, Run, module
from osgeo import gdal
from scene import BANDS, S2, WORK

module("core")
from mcpn.core.callbacks import Callbacks  # noqa: E402
from mcpn.core.classic import local_regression  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.metrics import masked_ssim, rmse  # noqa: E402
from mcpn.core.pipeline.inpainting import inpaint_raster  # noqa: E402
from mcpn.core.pipeline.runs import RunResult  # noqa: E402
from mcpn.core.raster.io import aligned_path, grid_of  # noqa: E402
from mcpn.core.raster.masks import CloudMask  # noqa: E402
from mcpn.core.raster.tiling import tile_windows  # noqa: E402

SENTINEL2_TILE = 10980  # px at 10 m
PER_TILE = ("read", "estimates", "prediction", "write")
BLOCK = 1068  # px, the side of the real scene
SCORED_BLOCKS = 4  # 1068 px blocks along the diagonal the fill is scored on


def mirrored(image: np.ndarray, row: int, col: int, height: int, width: int) -> np.ndarray:
    """The window (``row``, ``col``, ``height``, ``width``) of ``image`` (..., H, W) tiled with mirrored copies."""
    size_y, size_x = image.shape[-2:]
    rows = np.arange(row, row + height) % (2 * size_y)
    cols = np.arange(col, col + width) % (2 * size_x)
    rows = np.where(rows < size_y, rows, 2 * size_y - 1 - rows)
    cols = np.where(cols < size_x, cols, 2 * size_x - 1 - cols)
    return image[..., rows[:, None], cols[None, :]]


def mosaic(
    image: np.ndarray, size: int, path: Path, gdal_type: int, nodata: float | None, names=(), shifted: bool = False
) -> Path:
    """``image`` (B, H, W) mirror-tiled to ``size`` px, written in strips of :data:`BLOCK` rows, on the grid of
    the real scene (its origin and pixel size); ``shifted``: on that grid moved up and left by half a pixel,
    one pixel larger, each pixel the mean of the 2 x 2 pixels of the mosaic it is centred on."""
    template = gdal.Open(str(S2 / "2018-08-05" / f"{BANDS[0]}.tif"))
    options = ["TILED=YES", "BIGTIFF=IF_SAFER"]
    x0, dx, _, y0, _, dy = template.GetGeoTransform()
    side = size + shifted
    ds = gdal.GetDriverByName("GTiff").Create(str(path), side, side, len(image), gdal_type, options=options)
    ds.SetGeoTransform((x0 - shifted * dx / 2, dx, 0, y0 - shifted * dy / 2, 0, dy))
    ds.SetProjection(template.GetProjection())
    for index in range(len(image)):
        band = ds.GetRasterBand(index + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if index < len(names):
            band.SetDescription(names[index])
    for row in range(0, side, BLOCK):
        height = min(BLOCK, side - row)
        if shifted:  # rows and columns -1 .. size of the mosaic, mirrored at its edges
            strip = mirrored(image, row - 1, -1, height + 1, side + 1).astype(np.float32)
            strip = np.round((strip[:, 1:, 1:] + strip[:, :-1, 1:] + strip[:, 1:, :-1] + strip[:, :-1, :-1]) / 4)
        else:
            strip = mirrored(image, row, 0, height, side)
        for index, band in enumerate(strip):
            ds.GetRasterBand(index + 1).WriteArray(band, 0, row)
    ds = None
    return path


def date_stack(date: str) -> np.ndarray:
    return np.stack([gdal.Open(str(S2 / date / f"{b}.tif")).ReadAsArray() for b in BANDS]).astype(np.uint16)


def read_block(path: Path, offset: int) -> np.ndarray:
    """The :data:`BLOCK` px square at (``offset``, ``offset``) of a raster, as float64 (B, H, W)."""
    data = gdal.Open(str(path)).ReadAsArray(offset, offset, BLOCK, BLOCK).astype(np.float64)
    return data.reshape(-1, BLOCK, BLOCK)


def clouds_in_tiles(mask: Path, count: int, path: Path) -> Path:
    """A copy of ``mask`` at ``path`` with its clouds kept in ``count`` tiles of the engine's default tiling
    spread along the diagonal only, written in strips of :data:`BLOCK` rows."""
    settings = Settings()
    source = gdal.Open(str(mask))
    size = source.RasterXSize
    windows = [w for w in tile_windows(size, size, settings.tile_size, settings.overlap) if w.row == w.col]
    picks = [windows[round(i * (len(windows) - 1) / max(1, count - 1))] for i in range(min(count, len(windows)))]
    ds = gdal.GetDriverByName("GTiff").CreateCopy(str(path), source, options=["TILED=YES"])
    for row in range(0, size, BLOCK):
        height = min(BLOCK, size - row)
        keep = np.zeros((height, size), bool)
        for w in picks:
            top, bottom = max(w.row, row), min(w.row + w.height, row + height)
            if top < bottom:
                keep[top - row : bottom - row, w.col : w.col + w.width] = True
        band = ds.GetRasterBand(1)
        band.WriteArray(band.ReadAsArray(0, row, size, height) * keep, 0, row)
    ds = None
    return path


def fill(target: Path, mask: Path, guide: Path, output: Path, settings: Settings) -> tuple[RunResult, float, list]:
    """The fill, run in a fresh process by :func:`filled`, that process's peak memory (MiB) and the run's log.

    The peak is the process's ``VmHWM`` (Linux), which starts afresh with the new program. Not ``getrusage``: a
    child's maximum there includes the parent's memory it was forked with, before it started this interpreter."""
    log: list[str] = []
    callbacks = Callbacks(log=log.append)
    result = inpaint_raster(str(target), CloudMask(str(mask)), [str(guide)], str(output), settings, callbacks=callbacks)
    return result, peak_mib(), log


def peak_mib() -> float:
    """This process's peak resident memory in MiB (``VmHWM``, Linux)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def filled(target: Path, mask: Path, guide: Path, output: Path, settings: Settings) -> tuple[RunResult, float, list]:
    """:func:`fill` in a fresh process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(fill, target, mask, guide, output, settings).result()


def scene_inputs(size: int, cloudy_tiles: int = 0) -> tuple[Path, Path, Path]:
    """The target, guide (on the shifted grid) and cloud mask mosaics of ``size`` px (built in the work folder)."""
    WORK.mkdir(parents=True, exist_ok=True)
    target = mosaic(date_stack("2018-08-05"), size, WORK / f"scale_target_{size}.tif", gdal.GDT_UInt16, 0, BANDS)
    guide = mosaic(
        date_stack("2018-07-21"), size, WORK / f"scale_guide_shifted_{size}.tif", gdal.GDT_UInt16, 0, BANDS, True
    )
    real = gdal.Open(str(DATA_DIR / "s1_sar_guide" / "cloud_mask.tif")).ReadAsArray().astype(np.uint8)
    mask = mosaic(real[None], size, WORK / f"scale_mask_{size}.tif", gdal.GDT_Byte, None)
    if cloudy_tiles:
        mask = clouds_in_tiles(mask, cloudy_tiles, WORK / f"scale_mask_{size}_{cloudy_tiles}.tif")
    return target, guide, mask


def scores_of(target: Path, mask: Path, guide: Path, output: Path) -> tuple[dict, dict, list[int]]:
    """The fill's and the moving-window guide regression's scores over the clouds of up to :data:`SCORED_BLOCKS`
    blocks along the diagonal (each block's, their means, the blocks' offsets)."""
    blocks = gdal.Open(str(target)).RasterXSize // BLOCK
    offsets = sorted({round(i * (blocks - 1) / max(1, SCORED_BLOCKS - 1)) * BLOCK for i in range(SCORED_BLOCKS)})
    scores = {"ssim": [], "rmse": [], "regression_ssim": [], "regression_rmse": [], "cloud": []}
    with tempfile.TemporaryDirectory(prefix="scene_scale-") as scratch:  # the warped guide's VRT
        aligned = aligned_path(str(guide), grid_of(str(target)), scratch, "bilinear", "guide")  # as the engine does
        for offset in offsets:
            cloud = read_block(mask, offset)[0] > 0
            if not cloud.any():  # --cloudy-tiles: a block may have no cloud to score
                continue
            truth, result = read_block(target, offset), read_block(output, offset)
            regression = local_regression(truth, ~cloud, [read_block(aligned, offset)])  # clouded pixels not read
            scores["ssim"].append(masked_ssim(result, truth, cloud))
            scores["rmse"].append(rmse(result, truth, cloud))
            scores["regression_ssim"].append(masked_ssim(regression, truth, cloud))
            scores["regression_rmse"].append(rmse(regression, truth, cloud))
            scores["cloud"].append(float(cloud.mean()))
    return scores, {key: float(np.mean(values)) for key, values in scores.items()}, offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2 * BLOCK, help="side of the mosaic in px (at least 1068)")
    parser.add_argument("--steps", type=int, default=Settings().steps, help="steps of the scene network")
    parser.add_argument("--cloudy-tiles", type=int, default=0, help="clouds in this many tiles only (0: all)")
    parser.add_argument("--time-limit", type=float, default=0.0, help="the run's time limit in minutes (0: none)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler of the tiles, e.g. local:2 (default: none)")
    parser.add_argument("--name", default="scene_scale", help="results file name")
    parser.add_argument("--out", type=Path, default=RESULTS / "scene_scope")
    args = parser.parse_args()
    if args.size < BLOCK:
        parser.error(f"--size must be at least {BLOCK}")
    run = Run(args)
    size = args.size
    target, guide, mask = scene_inputs(size, args.cloudy_tiles)
    settings = Settings(
        steps=args.steps, device="cpu", scope="scene", scheduler=args.scheduler, time_limit=args.time_limit
    )
    output = WORK / f"scale_filled_{size}.tif"
    result, peak, _ = filled(target, mask, guide, output, settings)
    scores, means, offsets = scores_of(target, mask, guide, output)
    tiles = len(tile_windows(SENTINEL2_TILE, SENTINEL2_TILE, settings.tile_size, settings.overlap))
    per_tile = {stage: result.stages.get(stage, 0.0) / result.fitted for stage in PER_TILE}
    once = {stage: s for stage, s in result.stages.items() if stage not in PER_TILE}
    workers = int(args.scheduler.split(":")[1]) if args.scheduler and ":" in args.scheduler else 1
    extrapolated = sum(once.values()) + tiles * sum(per_tile.values()) / workers  # tiles run side by side
    megapixels = size * size / 1e6
    data = {
        "size": size, "steps": args.steps, "time_limit_min": args.time_limit, "tiles": result.tiles,
        "fitted": result.fitted, "seconds": result.seconds, "notes": result.notes,
        "megapixels_per_minute": megapixels / (result.seconds / 60), "stages": result.stages, "per_tile": per_tile,
        "peak_rss_mib": peak, "scored_offsets": offsets, "scores": scores, **means,
        "sentinel2_tiles": tiles, "extrapolated_s": extrapolated,
    }  # fmt: skip
    stages = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in result.stages.items())
    lines = [
        f"Scene network on {size} x {size} px ({megapixels:.0f} Mpx, {result.fitted} of {result.tiles} tiles of "
        f"{settings.tile_size} px cloudy), {args.steps} steps"
        + (f", time limit {args.time_limit:g} min" if args.time_limit else "")
        + ", the guide on a grid shifted by half a pixel, the "
        f"engine's defaults otherwise: **{result.seconds:.0f} s** ({data['megapixels_per_minute']:.1f} Mpx a "
        f"minute), peak memory of the process that ran it **{peak:.0f} MiB**.",
        "",
        f"Over the clouds of {len(scores['cloud'])} {BLOCK} px blocks along the diagonal ({100 * means['cloud']:.0f} % "
        f"cloud): masked SSIM **{means['ssim']:.3f}** (RMSE {means['rmse']:.0f}); moving-window guide regression "
        f"{means['regression_ssim']:.3f} (RMSE {means['regression_rmse']:.0f}).",
        "",
        f"Time by stage (s): {stages}.",
        "",
        "Per cloudy tile (s): " + ", ".join(f"{stage} {s:.2f}" for stage, s in per_tile.items()) + ".",
    ]  # fmt: skip
    if size < SENTINEL2_TILE:
        lines += [
            "",
            f"Extrapolated to a {SENTINEL2_TILE} x {SENTINEL2_TILE} px Sentinel-2 tile with clouds in every one of "
            f"its {tiles} tiles (the fit and preparation as measured, the per-tile stages times {tiles}"
            + (f", over {workers} Dask workers" if workers > 1 else "")
            + f"): **{extrapolated / 3600:.1f} h** on this machine. Not run at that size.",
        ]  # fmt: skip
    run.write(args.out, args.name, "\n".join(lines), data)


if __name__ == "__main__":
    main()
