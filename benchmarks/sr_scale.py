"""What super-resolving a whole Sentinel-2 tile costs: its six 20 m bands brought to 10 m, from file to file.

The six 20 m bands of ``s2_time_pair`` 2018-08-05 (B05 B06 B07 B8A B11 B12, 534 px) mirror-tiled to
``--size`` / 2 px at 20 m, guided by its four 10 m bands (B02 B03 B04 B08, 1068 px) mirror-tiled to ``--size`` px
at 10 m on the same origin (so that the mosaics agree pixel for pixel), are super-resolved with the engine's
defaults (``--steps``, ``--time-limit`` as a user sets them) in a fresh process, timed stage by stage, with
that process's peak memory. There is no truth at 10 m: the quality of the same set-up is measured by
``sr_scope.py`` (Wald's protocol, 20 m bands from 40 m).

    python benchmarks/sr_scale.py [--size 10980] [--steps 4000] [--time-limit 0] [--name sr_scale_10980]

Results: benchmarks/results/scene_scope/<name>.{md,json}.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _harness import RESULTS, Run, module
from osgeo import gdal
from scene import WORK
from scene_scale import SENTINEL2_TILE, mosaic, peak_mib
from sr_scope import DATE, TEN, TWENTY, bands

module("core")
from mcpn.core.callbacks import Callbacks  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.pipeline.runs import RunResult  # noqa: E402
from mcpn.core.pipeline.super_resolution import super_resolve_raster  # noqa: E402

PER_TILE = ("read", "estimates", "prediction", "write")


def sharpen(low: Path, guide: Path, output: Path, settings: Settings) -> tuple[RunResult, float, list[str]]:
    """The super-resolution, run in a fresh process by :func:`main`, that process's peak memory (MiB), its log."""
    log: list[str] = []
    result = super_resolve_raster(str(low), [str(guide)], str(output), settings, callbacks=Callbacks(log=log.append))
    return result, peak_mib(), log


def twenty_metres(path: Path) -> Path:
    """The mosaic at ``path`` moved onto 20 m pixels (the same origin)."""
    ds = gdal.Open(str(path), gdal.GA_Update)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    ds.SetGeoTransform((x0, 2 * dx, 0, y0, 0, 2 * dy))
    ds = None
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=SENTINEL2_TILE, help="side of the 10 m output in px (even)")
    parser.add_argument("--steps", type=int, default=Settings().steps, help="steps of a fit")
    parser.add_argument("--time-limit", type=float, default=0.0, help="the run's time limit in minutes (0: none)")
    parser.add_argument("--name", default="sr_scale_10980", help="results file name")
    parser.add_argument("--out", type=Path, default=RESULTS / "scene_scope")
    args = parser.parse_args()
    if args.size % 2:
        parser.error("--size must be even (two 10 m pixels to a 20 m pixel)")
    run = Run(args)
    WORK.mkdir(parents=True, exist_ok=True)
    size = args.size
    low = mosaic(bands(TWENTY), size // 2, WORK / f"sr_scale_low_{size}.tif", gdal.GDT_UInt16, 0, TWENTY)
    low = twenty_metres(low)
    guide = mosaic(bands(TEN), size, WORK / f"sr_scale_guide_{size}.tif", gdal.GDT_UInt16, 0, TEN)
    settings = Settings(steps=args.steps, device="cpu", time_limit=args.time_limit)
    output = WORK / f"sr_scale_out_{size}.tif"
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
        result, peak, log = process.submit(sharpen, low, guide, output, settings).result()
    megapixels = size * size / 1e6
    per_tile = {stage: result.stages[stage] / result.fitted for stage in PER_TILE if stage in result.stages}
    data = {
        "size": size, "steps": args.steps, "time_limit_min": args.time_limit, "tiles": result.tiles,
        "seconds": result.seconds, "megapixels_per_minute": megapixels / (result.seconds / 60),
        "stages": result.stages, "per_tile": per_tile, "peak_rss_mib": peak, "notes": result.notes, "log": log,
    }  # fmt: skip
    scope = next((line for line in log if "network" in line and "scene" in line), "one network per tile")
    lines = [
        f"Super-resolution of the six 20 m bands of {DATE} ({size // 2} px at 20 m, mirror-tiled) to 10 m "
        f"({size} x {size} px, {megapixels:.0f} Mpx, {result.tiles} tiles), guided by the four 10 m bands, "
        f"the engine's defaults, {args.steps} steps at most"
        + (f", time limit {args.time_limit:g} min" if args.time_limit else "")
        + f": **{result.seconds:.0f} s** ({data['megapixels_per_minute']:.1f} Mpx a minute), peak memory of the "
        f"process that ran it **{peak:.0f} MiB**. Networks: {scope}.",
        "",
        "Time by stage (s): " + ", ".join(f"{stage} {s:.1f}" for stage, s in result.stages.items()) + ".",
        "",
        "Per tile (s): " + ", ".join(f"{stage} {s:.2f}" for stage, s in per_tile.items()) + ".",
        "",
        "Run notes: " + "; ".join(result.notes),
    ]  # fmt: skip
    run.write(args.out, args.name, "\n".join(lines), data)


if __name__ == "__main__":
    main()
