"""Super-resolution with one network per tile or one for the scene, on the 534 px 20 m scene (Wald's protocol).

The six 20 m bands of ``s2_time_pair`` 2018-08-05 (B05 B06 B07 B8A B11 B12, 534 x 534 px) are degraded to
40 m as a sensor would (a Gaussian point spread whose response at the 40 m Nyquist frequency is 0.3, then an
area average: ``cases.sensor_blur``) and brought back to 20 m, guided by the 10 m bands of the same date
(B02 B03 B04 B08) averaged to 20 m. Scored against the true 20 m bands (SSIM over the whole image, RMSE, SAM),
from files on disk to a file on disk, with the engine's defaults: one network per tile (seed 0, 9 tiles) and
one network for the scene over ``--seeds``, beside the instant tools of ``quality.py`` (MTF-GLP with the
blur known among them).

    python benchmarks/sr_scope.py [--seeds 0 1 2] [--steps 4000] [--tile-steps 4000] [--name sr_scope_534]

``--steps`` and ``--tile-steps`` (default: the engine's) bound the scene and the per-tile fits.

Results: benchmarks/results/scene_scope/<name>.{md,json}.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _harness import RESULTS, Run, module
from cases import PSF_SIGMA, Case, area_average, sensor_blur
from osgeo import gdal
from quality import baselines, errors, score
from scene import S2, WORK, read, write_like

module("core")
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.pipeline.super_resolution import super_resolve_raster  # noqa: E402

DATE = "2018-08-05"
TWENTY = ("B05", "B06", "B07", "B8A", "B11", "B12")
TEN = ("B02", "B03", "B04", "B08")
FACTOR = 2


def bands(names: tuple[str, ...]) -> np.ndarray:
    return np.stack([gdal.Open(str(S2 / DATE / f"{b}.tif")).ReadAsArray() for b in names]).astype(np.float64)


def scaled(template: Path, path: Path, data: np.ndarray, factor: float, names: tuple[str, ...]) -> Path:
    """``data`` written on the grid of ``template`` with pixels ``factor`` times larger (the same origin)."""
    written = write_like(template, path, np.round(data), gdal.GDT_UInt16, 0, names)
    ds = gdal.Open(str(written), gdal.GA_Update)
    x0, dx, _, y0, _, dy = gdal.Open(str(template)).GetGeoTransform()
    ds.SetGeoTransform((x0, dx * factor, 0, y0, 0, dy * factor))
    ds = None
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the scene network")
    parser.add_argument("--steps", type=int, default=Settings().steps, help="steps of the scene network")
    parser.add_argument("--tile-steps", type=int, default=Settings().steps, help="steps of each per-tile fit")
    parser.add_argument("--name", default="sr_scope_534", help="results file name")
    parser.add_argument("--out", type=Path, default=RESULTS / "scene_scope")
    args = parser.parse_args()
    run = Run(args)
    WORK.mkdir(parents=True, exist_ok=True)
    truth = bands(TWENTY)
    size = truth.shape[1]
    low = area_average(sensor_blur(truth, FACTOR), size // FACTOR)
    guide = area_average(bands(TEN), size)
    template = S2 / DATE / f"{TWENTY[0]}.tif"
    low_path = scaled(template, WORK / "sr_scope_low.tif", low, FACTOR, TWENTY)
    guide_path = scaled(template, WORK / "sr_scope_guide.tif", guide, 1, TEN)
    case = Case("s2_20m_x2_psf", "sr", "20 m from 40 m", read(low_path), truth, [read(guide_path)],
                band_names=list(TWENTY), sensor_blur=PSF_SIGMA)  # fmt: skip
    rows = [{"name": name, **row} for name, row in baselines(case).items()]
    tile = Settings(device="cpu", scope="tile", seed=0, steps=args.tile_steps)
    scene = Settings(device="cpu", scope="scene", steps=args.steps)
    fits = [(f"one network for the scene, seed {seed}", replace(scene, seed=seed)) for seed in args.seeds]
    fits.append(("one network per tile", tile))
    for name, settings in fits:
        out = WORK / "sr_scope_out.tif"
        started = time.perf_counter()
        result = super_resolve_raster(str(low_path), [str(guide_path)], str(out), settings)
        image = read(out)
        rows.append({"name": name, "ssim": score(case, image), **errors(case, image),
                     "seconds": time.perf_counter() - started, "scope": str(settings.scope), "steps": settings.steps,
                     "seed": settings.seed, "stages": result.stages, "notes": result.notes})  # fmt: skip
        print(rows[-1]["name"], rows[-1]["ssim"], rows[-1]["seconds"], flush=True)
    instant = [r for r in rows if "scope" not in r]
    best = max(instant, key=lambda r: r["ssim"])
    tile_row = next(r for r in rows if r.get("scope") == "tile")
    scenes = np.array([r["ssim"] for r in rows if r.get("scope") == "scene"])
    seconds = np.mean([r["seconds"] for r in rows if r.get("scope") == "scene"])
    lines = [
        f"The six 20 m bands of {DATE} ({size} px) from 40 m (sensor-like blur, then area average), guided by the "
        f"10 m bands averaged to 20 m; scored against the 20 m bands. The engine's defaults (CPU), the scene "
        f"network at {args.steps} steps, the per-tile fits at {args.tile_steps}.",
        "",
        "| | SSIM | RMSE | SAM (°) | seconds |",
        "|---|---|---|---|---|",
        *(f"| {r['name']} | {r['ssim']:.3f} | {r['rmse']:.1f} | {r['sam']:.2f} | {r['seconds']:.0f} |" for r in rows),
        "",
        f"Scene network over {len(scenes)} seeds: SSIM {scenes.mean():.3f} (min {scenes.min():.3f}), "
        f"{seconds:.0f} s on average; per tile {tile_row['ssim']:.3f} in {tile_row['seconds']:.0f} s; best instant "
        f"tool {best['name']} {best['ssim']:.3f}.",
        f"Scene minus per tile: {scenes.min() - tile_row['ssim']:+.3f} (worst seed); scene minus best instant tool: "
        f"{scenes.min() - best['ssim']:+.3f} (worst seed).",
    ]  # fmt: skip
    run.write(args.out, args.name, "\n".join(lines), rows)


if __name__ == "__main__":
    main()
