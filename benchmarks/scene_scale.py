"""What a whole Sentinel-2 tile would cost: the scene network on a larger scene, timed stage by stage.

The 1068 px scene of ``s2_time_pair`` (B04, B03, B02, B08 of 2018-08-05, guided by 2018-07-21) is
mirror-tiled ``--mirror`` times a side under the real 256 px cloud mask mirror-tiled as well
(20 % cover, clouds in every tile), filled with one network for the scene (the engine's defaults
but the steps), scored over the clouds against the truth next to the moving-window guide
regression, and its time by stage (:mod:`core.pipeline.stages`) turned into the cost of a
10980 x 10980 px tile: the scene fit and preparation as measured, the per-tile stages (read,
estimates, prediction, write) scaled by the number of tiles. That is an extrapolation, said so in
the report; the per-tile costs do not depend on the scene's size.

    python benchmarks/scene_scale.py [--mirror 2] [--steps 800] [--scheduler local:2] [--name scene_scale]

Results: benchmarks/results/scene_scope/<name>.{md,json}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _harness import RESULTS, Run, module
from osgeo import gdal
from scene import BANDS, WORK, read, stack, tiled_mask, write_like

module("core")
from mcpn.core.classic import local_regression  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.metrics import masked_ssim, rmse  # noqa: E402
from mcpn.core.pipeline.inpainting import inpaint_raster  # noqa: E402
from mcpn.core.raster.masks import CloudMask  # noqa: E402
from mcpn.core.raster.tiling import tile_windows  # noqa: E402

SENTINEL2_TILE = 10980  # px at 10 m
PER_TILE = ("read", "estimates", "prediction", "write")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=int, default=2, help="the 1068 px scene mirror-tiled this many times a side")
    parser.add_argument("--steps", type=int, default=800, help="steps of the scene network")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler of the tiles, e.g. local:2 (default: none)")
    parser.add_argument("--name", default="scene_scale", help="results file name")
    parser.add_argument("--out", type=Path, default=RESULTS / "scene_scope")
    args = parser.parse_args()
    run = Run(args)
    WORK.mkdir(parents=True, exist_ok=True)
    target = stack("2018-08-05", BANDS, WORK / f"scale_target_{args.mirror}.tif", mirror=args.mirror)
    guide = stack("2018-07-21", BANDS, WORK / f"scale_guide_{args.mirror}.tif", mirror=args.mirror)
    size = gdal.Open(str(target)).RasterXSize
    cloud = tiled_mask(size)
    mask = write_like(target, WORK / f"scale_mask_{args.mirror}.tif", cloud[None].astype("uint8"), gdal.GDT_Byte, None)
    settings = Settings(steps=args.steps, device="cpu", scope="scene", scheduler=args.scheduler)
    result = inpaint_raster(str(target), CloudMask(str(mask)), [str(guide)], str(WORK / "scale_filled.tif"), settings)
    truth, filled = read(target), read(WORK / "scale_filled.tif")
    started = time.perf_counter()
    regression = local_regression(truth, ~cloud, [read(guide)])  # the clouded pixels are not read
    regression_seconds = time.perf_counter() - started
    tiles = len(tile_windows(SENTINEL2_TILE, SENTINEL2_TILE, settings.tile_size, settings.overlap))
    per_tile = {stage: result.stages.get(stage, 0.0) / result.fitted for stage in PER_TILE}
    once = {stage: s for stage, s in result.stages.items() if stage not in PER_TILE}
    workers = int(args.scheduler.split(":")[1]) if args.scheduler and ":" in args.scheduler else 1
    extrapolated = sum(once.values()) + tiles * sum(per_tile.values()) / workers  # tiles run side by side
    data = {
        "size": size, "cloud_cover": float(cloud.mean()), "steps": args.steps, "tiles": result.tiles,
        "fitted": result.fitted, "seconds": result.seconds, "stages": result.stages, "per_tile": per_tile,
        "sentinel2_tiles": tiles, "extrapolated_s": extrapolated,
        "ssim": masked_ssim(filled, truth, cloud), "rmse": rmse(filled, truth, cloud),
        "regression_ssim": masked_ssim(regression, truth, cloud), "regression_rmse": rmse(regression, truth, cloud),
        "regression_s": regression_seconds,
    }  # fmt: skip
    stages = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in result.stages.items())
    report = "\n".join([
        f"Scene network on {size} x {size} px ({100 * data['cloud_cover']:.0f} % cloud, {result.fitted} of "
        f"{result.tiles} tiles of {settings.tile_size} px cloudy), {args.steps} steps, the engine's defaults "
        f"otherwise: **{result.seconds:.0f} s**, masked SSIM **{data['ssim']:.3f}** (RMSE {data['rmse']:.0f}); "
        f"moving-window guide regression {data['regression_ssim']:.3f} (RMSE {data['regression_rmse']:.0f}, "
        f"{regression_seconds:.0f} s for the whole scene in memory).",
        "",
        f"Time by stage (s): {stages}.",
        "",
        "Per cloudy tile (s): " + ", ".join(f"{stage} {s:.2f}" for stage, s in per_tile.items()) + ".",
        "",
        f"Extrapolated to a {SENTINEL2_TILE} x {SENTINEL2_TILE} px Sentinel-2 tile with clouds in every one of "
        f"its {tiles} tiles (the fit and preparation as measured, the per-tile stages times {tiles}"
        + (f", over {workers} Dask workers" if workers > 1 else "")
        + "): "
        f"**{extrapolated / 3600:.1f} h** on this machine. Not run at that size.",
    ])  # fmt: skip
    run.write(args.out, args.name, report, data)


if __name__ == "__main__":
    main()
