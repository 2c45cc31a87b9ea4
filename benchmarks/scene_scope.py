"""One network per tile or one for the scene, with the engine's defaults, on a 704 px part of the real scene.

The 704 x 704 px top-left part of the 1068 px ``s2_time_pair`` scene (B04, B03, B02, B08 of
2018-08-05, guided by 2018-07-21; 9 tiles of 256 px) under the real 256 px cloud mask
mirror-tiled (clouds in every tile) is filled from a file on disk to a file on disk
with the engine's defaults: once one network per tile (seed 0), and with one network
for the scene over ``--seeds``. Scored over the clouds against the true pixels (masked SSIM,
RMSE), beside the instant tools a user would otherwise pick, each timed.

    python benchmarks/scene_scope.py [--size 704] [--seeds 0 1 2] [--scene-steps 4000] [--refine-steps 0]
        [--tile-from benchmarks/results/scene_scope/scope_704.json] [--name scope_704]

``--refine-steps`` refines the scene network on each tile (``Settings.refine_steps``);
``--tile-from`` takes the per-tile row from an earlier results file of this script (the same
size) instead of fitting it again, and says so.

Results: benchmarks/results/scene_scope/<name>.{md,json} (default name scope_<size>).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _harness import RESULTS, Run, module
from osgeo import gdal
from scene import BANDS, WORK, read, stack, tiled_mask, write_like

module("core")
from mcpn.core.classic import biharmonic, fill_nodata, local_regression, regression  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.metrics import masked_ssim, rmse  # noqa: E402
from mcpn.core.nspi import nspi  # noqa: E402
from mcpn.core.pipeline.inpainting import inpaint_raster  # noqa: E402
from mcpn.core.raster.masks import CloudMask  # noqa: E402


def part(date: str, size: int) -> Path:
    """The top-left ``size`` px of the date's 1068 px stack (same origin, so the same geotransform)."""
    whole = stack(date, BANDS, WORK / f"scope_{date}.tif")
    return write_like(whole, WORK / f"scope_{date}_{size}.tif", read(whole)[:, :size, :size], gdal.GDT_UInt16, 0, BANDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=704)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the scene network")
    parser.add_argument("--scene-steps", type=int, default=Settings().steps, help="steps of the scene network")
    parser.add_argument("--refine-steps", type=int, default=0, help="per-tile refinement of the scene network")
    parser.add_argument("--tile-from", type=Path, default=None, help="the per-tile row from this results file")
    parser.add_argument("--name", default=None, help="results file name (default: scope_<size>)")
    parser.add_argument("--out", type=Path, default=RESULTS / "scene_scope")
    args = parser.parse_args()
    run = Run(args)
    WORK.mkdir(parents=True, exist_ok=True)
    target, guide = part("2018-08-05", args.size), part("2018-07-21", args.size)
    cloud = tiled_mask(args.size)
    mask = write_like(target, WORK / f"scope_mask_{args.size}.tif", cloud[None].astype(np.uint8), gdal.GDT_Byte, None)
    truth, guides = read(target), [read(guide)]
    rows: list[dict] = []

    def score(name: str, image: np.ndarray, seconds: float, **extra: object) -> None:
        row = {"name": name, "ssim": masked_ssim(image, truth, cloud), "rmse": rmse(image, truth, cloud),
               "seconds": seconds, **extra}  # fmt: skip
        rows.append(row)
        print(row, flush=True)

    cloudy = np.where(cloud, np.nan, truth)
    instant = {
        "GDAL Fill nodata": lambda: fill_nodata(cloudy, cloud),
        "biharmonic": lambda: biharmonic(cloudy, cloud),
        "guide regression (global)": lambda: regression(cloudy, ~cloud, guides),
        "guide regression (moving window)": lambda: local_regression(cloudy, ~cloud, guides),
        "NSPI": lambda: nspi(cloudy, ~cloud, guides),
    }
    for name, method in instant.items():
        started = time.perf_counter()
        image = method()
        score(name, image, time.perf_counter() - started)
    scene = Settings(device="cpu", scope="scene", steps=args.scene_steps, refine_steps=args.refine_steps)
    refined = f", refined {args.refine_steps} steps a tile" if args.refine_steps else ""
    runs = [(f"one network for the scene{refined}, seed {seed}", replace(scene, seed=seed)) for seed in args.seeds]
    if args.tile_from is None:
        runs.append(("one network per tile (default steps)", Settings(device="cpu", seed=0)))
    else:
        earlier = json.loads(args.tile_from.read_text())
        row = next(r for r in earlier["data"] if r.get("scope") == "tile")
        rows.append({**row, "name": f"{row['name']}, from {args.tile_from.name} ({earlier['run']['commit at start']})"})
    for name, settings in runs:
        out = WORK / "scope_filled.tif"
        started = time.perf_counter()
        result = inpaint_raster(str(target), CloudMask(str(mask)), [str(guide)], str(out), settings)
        score(name, read(out), time.perf_counter() - started, scope=str(settings.scope), steps=settings.steps,
              refine_steps=settings.refine_steps, seed=settings.seed, stages=result.stages,
              chosen_steps=result.chosen_steps)  # fmt: skip
    best = max((r for r in rows if r["name"] in instant), key=lambda r: r["ssim"])
    tile = next(r for r in rows if r.get("scope") == "tile")
    scene = [r for r in rows if r.get("scope") == "scene"]
    ssims = np.array([r["ssim"] for r in scene])
    lines = [
        f"{args.size} x {args.size} px, {100 * cloud.mean():.0f} % cloud in every tile, B04 B03 B02 B08 of 2018-08-05 "
        f"guided by 2018-07-21; the engine's defaults (CPU), the scene network at {args.scene_steps} steps{refined}.",
        "",
        "| | masked SSIM | RMSE | seconds |",
        "|---|---|---|---|",
        *(f"| {r['name']} | {r['ssim']:.3f} | {r['rmse']:.0f} | {r['seconds']:.0f} |" for r in rows),
        "",
        f"Scene network over {len(scene)} seeds: masked SSIM {ssims.mean():.3f} (min {ssims.min():.3f}, "
        f"max {ssims.max():.3f}), {np.mean([r['seconds'] for r in scene]):.0f} s on average; "
        f"per tile {tile['ssim']:.3f} in {tile['seconds']:.0f} s; best instant tool {best['name']} {best['ssim']:.3f}.",
        f"Scene minus per tile: {ssims.min() - tile['ssim']:+.3f} (worst seed); "
        f"scene minus best instant tool: {ssims.min() - best['ssim']:+.3f} (worst seed).",
    ]  # fmt: skip
    run.write(args.out, args.name or f"scope_{args.size}", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
