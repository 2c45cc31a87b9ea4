"""Real-scene benchmark of the tiled file pipeline (issue #4) on the full 1068 x 1068 px Sentinel-2 scenes.

1. Inpainting of 2018-08-05 (B04, B03, B02, B08 at 10 m) guided by 2018-07-21, under a
   cloud mask made by mirror-tiling the real 256 px mask of ../shared/data/s1_sar_guide
   (20 % cover): wall time, time per megapixel, masked SSIM/RMSE against the true
   (clear) pixels, next to GDAL Fill nodata and guide regression (global, moving window).
2. Peak memory (RSS, each run in its own process, 1 step) on the 1068 px scene and on a
   mirrored 2136 px scene (4x the pixels).
3. Seams: on a 512 px part, a tiled run (256 px tiles) against an untiled one (one 512 px
   network), with the SSIM between two untiled seeds as the noise floor, and a figure.
4. Super-resolution to 10 m with B04, B03, B02 as guides: B08 averaged to 20 m (a stand-in
   for B8A whose 10 m truth is the real B08) against bicubic, and B09 (60 m) as a figure.

MCPN runs with the engine's default settings (method, anchor, stopping rule) except
the steps, the tile size and, if given, the method. ``--parts`` runs some parts only:
the report then has those parts only.

    python benchmarks/scene.py [--steps 100] [--method stacked] [--sr-size 384] [--threads 2] [--scope scene]

Results go to benchmarks/results/scene.md and .json (written through ``_harness.Run``),
figures next to them (``--out`` for another folder).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _harness import DATA_DIR, PKG_DIR, REPO, RESULTS, Run, module
from osgeo import gdal

module("core")
from mcpn.core.classic import fill_nodata, local_regression, regression  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.metrics import masked_ssim, rmse  # noqa: E402
from mcpn.core.pipeline.inpainting import inpaint_raster  # noqa: E402
from mcpn.core.pipeline.super_resolution import super_resolve_raster  # noqa: E402
from mcpn.core.raster.masks import CloudMask  # noqa: E402
from mcpn.core.sharpening import bicubic  # noqa: E402

gdal.UseExceptions()
S2 = DATA_DIR / "s2_time_pair"
BANDS = ("B04", "B03", "B02", "B08")
WORK = REPO / ".build" / "bench_scene"


def settings(args: argparse.Namespace, method: str | None, **changes: object) -> Settings:
    """The engine's defaults with the run's steps and tile size, on the CPU, and ``method`` if given."""
    values = {"steps": args.steps, "device": "cpu", "tile_size": args.tile, "scope": args.scope,
              "scheduler": args.scheduler, **changes}  # fmt: skip
    return Settings(**values, **({"method": method} if method else {}))


def stack(date: str, bands: tuple[str, ...], path: Path, mirror: int = 1) -> Path:
    """The bands of one date as one GeoTIFF (uint16, nodata 0), mirror-tiled ``mirror`` times a side."""
    data = np.stack([gdal.Open(str(S2 / date / f"{b}.tif")).ReadAsArray() for b in bands])
    data = np.concatenate([data, data[:, ::-1]], axis=1)[:, : data.shape[1] * mirror] if mirror > 1 else data
    data = np.concatenate([data, data[:, :, ::-1]], axis=2)[:, :, : data.shape[2] * mirror] if mirror > 1 else data
    return write_like(S2 / date / f"{bands[0]}.tif", path, data, gdal.GDT_UInt16, 0, bands)


def write_like(template: Path, path: Path, data: np.ndarray, gdal_type: int, nodata, names=()) -> Path:
    tpl = gdal.Open(str(template))
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[2], data.shape[1], data.shape[0], gdal_type)
    ds.SetGeoTransform(tpl.GetGeoTransform())
    ds.SetProjection(tpl.GetProjection())
    for i in range(data.shape[0]):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(data[i])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if i < len(names):
            band.SetDescription(names[i])
    ds = None
    return path


def tiled_mask(size: int) -> np.ndarray:
    """The real 256 px cloud mask mirror-tiled to ``size`` px."""
    real = gdal.Open(str(DATA_DIR / "s1_sar_guide" / "cloud_mask.tif")).ReadAsArray().astype(bool)
    row = np.concatenate([real, real[:, ::-1]] * (size // 512 + 1), axis=1)
    tile = np.concatenate([row, row[::-1]] * (size // 512 + 1), axis=0)
    return tile[:size, :size]


def read(path: Path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray().astype(np.float64).reshape(-1, *read_shape(path))


def read_shape(path: Path) -> tuple[int, int]:
    ds = gdal.Open(str(path))
    return ds.RasterYSize, ds.RasterXSize


def peak_rss_mib(target: Path, mask: Path, guide: Path, out: Path, tile: int) -> float:
    """Peak RSS of a fresh process running one inpainting step per cloudy tile (MiB)."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(PKG_DIR)!r})
from mcpn.core.config import Settings
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.raster.masks import CloudMask
inpaint_raster({str(target)!r}, CloudMask({str(mask)!r}), [{str(guide)!r}], {str(out)!r},
               Settings(steps=1, device="cpu", tile_size={tile}))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(run.stdout.split()[-1]) / 1024


def inpainting(args: argparse.Namespace, results: dict) -> None:
    target = stack("2018-08-05", BANDS, WORK / "target.tif")
    guide = stack("2018-07-21", BANDS, WORK / "guide.tif")
    cloud = tiled_mask(1068)
    mask = write_like(target, WORK / "mask.tif", cloud[None].astype(np.uint8), gdal.GDT_Byte, None)
    truth = read(target)
    used = settings(args, args.method)
    started = time.perf_counter()
    result = inpaint_raster(str(target), CloudMask(str(mask)), [str(guide)], str(WORK / "filled.tif"), used)
    wall = time.perf_counter() - started
    filled = read(WORK / "filled.tif")
    scene_mpx = 1068 * 1068 / 1e6
    results["inpainting"] = {
        "method": used.method,
        "anchor": used.anchor,
        "stopping": used.stopping,
        "steps": used.steps,
        "scope": str(used.scope),
        "cloud_cover": float(cloud.mean()),
        "tiles": result.tiles,
        "fitted": result.fitted,
        "chosen_steps": result.chosen_steps,
        "stages_s": result.stages,
        "wall_s": wall,
        "s_per_scene_mpx": wall / scene_mpx,
        "s_per_fitted_mpx": wall / (result.fitted * args.tile**2 / 1e6),
        "scores": {"MCPN (tiled)": {"ssim": masked_ssim(filled, truth, cloud), "rmse": rmse(filled, truth, cloud),
                                    "seconds": wall}},
    }  # fmt: skip
    cloudy, guide_bands = np.where(cloud, np.nan, truth), [read(guide)]
    baselines = {
        "GDAL Fill nodata": lambda: fill_nodata(cloudy, cloud),
        "guide regression (global)": lambda: regression(cloudy, ~cloud, guide_bands),
        "guide regression (moving window)": lambda: local_regression(cloudy, ~cloud, guide_bands),
    }
    for name, baseline in baselines.items():
        started = time.perf_counter()
        image = baseline()
        seconds = time.perf_counter() - started
        results["inpainting"]["scores"][name] = {
            "ssim": masked_ssim(image, truth, cloud), "rmse": rmse(image, truth, cloud), "seconds": seconds
        }  # fmt: skip
    print(json.dumps(results["inpainting"], indent=1, default=str), flush=True)
    big_target = stack("2018-08-05", BANDS, WORK / "target_x4.tif", mirror=2)
    big_guide = stack("2018-07-21", BANDS, WORK / "guide_x4.tif", mirror=2)
    big_mask = write_like(
        big_target, WORK / "mask_x4.tif", tiled_mask(2136)[None].astype(np.uint8), gdal.GDT_Byte, None
    )
    results["memory"] = {
        "peak_rss_mib_1068": peak_rss_mib(target, mask, guide, WORK / "m1.tif", args.tile),
        "peak_rss_mib_2136": peak_rss_mib(big_target, big_mask, big_guide, WORK / "m4.tif", args.tile),
        "scene_float64_mib_1068": 4 * 1068 * 1068 * 8 / 2**20,
    }
    results["memory"]["ratio"] = results["memory"]["peak_rss_mib_2136"] / results["memory"]["peak_rss_mib_1068"]
    print(json.dumps(results["memory"], indent=1, default=str), flush=True)


def seams(args: argparse.Namespace, results: dict) -> None:
    """A 512 px part: tiled vs untiled, with two untiled seeds as the noise floor."""
    part = 512
    x, y = 300, 300
    for name, date in (("part_target.tif", "2018-08-05"), ("part_guide.tif", "2018-07-21")):
        gdal.Translate(str(WORK / name), str(WORK / ("target.tif" if date == "2018-08-05" else "guide.tif")),
                       srcWin=[x, y, part, part])  # fmt: skip
    cloud = tiled_mask(1068)[y : y + part, x : x + part]
    mask = write_like(
        WORK / "part_target.tif", WORK / "part_mask.tif", cloud[None].astype(np.uint8), gdal.GDT_Byte, None
    )
    runs = {
        "untiled": {"tile_size": part, "tile_overlap": 0, "seed": 0},
        "untiled_seed1": {"tile_size": part, "tile_overlap": 0, "seed": 1},
        "tiled": {"tile_size": 256, "tile_overlap": 32, "seed": 0},
    }
    images = {}
    for name, extra in runs.items():
        inpaint_raster(str(WORK / "part_target.tif"), CloudMask(str(mask)), [str(WORK / "part_guide.tif")],
                       str(WORK / f"part_{name}.tif"), settings(args, args.method, **extra))  # fmt: skip
        images[name] = read(WORK / f"part_{name}.tif")
    truth = read(WORK / "part_target.tif")
    results["seams"] = {
        "ssim_tiled_vs_untiled": masked_ssim(images["tiled"], images["untiled"], cloud),
        "ssim_untiled_seed1_vs_seed0": masked_ssim(images["untiled_seed1"], images["untiled"], cloud),
        "ssim_tiled_vs_truth": masked_ssim(images["tiled"], truth, cloud),
        "ssim_untiled_vs_truth": masked_ssim(images["untiled"], truth, cloud),
    }
    print(json.dumps(results["seams"], indent=1, default=str), flush=True)
    figure([truth, images["untiled"], images["tiled"]], ["truth", "untiled (one 512 px net)", "tiled (256 px tiles)"],
           args.out / "scene_seams.png", cloud, tiles=(224, 256))  # fmt: skip


def super_resolution(args: argparse.Namespace, results: dict) -> None:
    size = args.sr_size  # 10 m px
    x = y = 300
    guides = WORK / "sr_guides.tif"
    gdal.Translate(str(guides), str(stack("2018-08-05", ("B04", "B03", "B02"), WORK / "rgb.tif")),
                   srcWin=[x, y, size, size])  # fmt: skip
    b08 = WORK / "b08_10m.tif"
    gdal.Translate(str(b08), str(S2 / "2018-08-05" / "B08.tif"), srcWin=[x, y, size, size])
    b08_20 = WORK / "b08_20m.tif"
    gdal.Translate(str(b08_20), str(b08), width=size // 2, height=size // 2, resampleAlg="average")
    used = settings(args, args.sr_method, steps=args.sr_steps or args.steps)
    started = time.perf_counter()
    result = super_resolve_raster(str(b08_20), [str(guides)], str(WORK / "b08_sr.tif"), used)
    wall = time.perf_counter() - started
    truth, low = read(b08), read(b08_20)
    every = np.ones(truth.shape[1:], bool)
    sharpened = read(WORK / "b08_sr.tif")
    interpolated = bicubic(low, truth.shape[1:])
    results["super_resolution_b08_20m"] = {
        "size_10m": size,
        "method": used.method,
        "anchor": used.anchor,
        "stopping": used.stopping,
        "steps": used.steps,
        "chosen_steps": result.chosen_steps,
        "tiles": result.tiles,
        "wall_s": wall,
        "ssim_mcpn": masked_ssim(sharpened, truth, every),
        "ssim_bicubic": masked_ssim(interpolated, truth, every),
        "rmse_mcpn": rmse(sharpened, truth, every),
        "rmse_bicubic": rmse(interpolated, truth, every),
    }
    print(json.dumps(results["super_resolution_b08_20m"], indent=1, default=str), flush=True)
    b09 = WORK / "b09_60m.tif"
    gdal.Translate(str(b09), str(S2 / "2018-08-05" / "B09.tif"), srcWin=[x // 6, y // 6, size // 6, size // 6])
    b8a = WORK / "b8a_20m.tif"
    gdal.Translate(str(b8a), str(S2 / "2018-08-05" / "B8A.tif"), srcWin=[x // 2, y // 2, size // 2, size // 2])
    for name, path in (("b09", b09), ("b8a", b8a)):
        super_resolve_raster(str(path), [str(guides)], str(WORK / f"{name}_sr.tif"), used)
    figure([read(b09), read(WORK / "b09_sr.tif"), read(b8a), read(WORK / "b8a_sr.tif")],
           ["B09 60 m", "B09 to 10 m (MCPN)", "B8A 20 m", "B8A to 10 m (MCPN)"], args.out / "scene_sr.png",
           shared=False)  # fmt: skip


def figure(images: list[np.ndarray], titles: list[str], path: Path, mask=None, tiles=None, shared=True) -> None:
    """Images side by side, stretched by the first image's 1-99 % range (``shared``) or each by its own."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(4 * len(images), 4.2))
    for ax, image, title in zip(axes, images, titles):
        shown = image[:3] if image.shape[0] >= 3 else image[:1]
        lo, hi = np.nanpercentile((images[0] if shared else image)[: shown.shape[0]], (1, 99))
        rgb = np.clip((np.moveaxis(shown, 0, -1) - lo) / (hi - lo), 0, 1)
        ax.imshow(rgb[..., 0] if rgb.shape[-1] == 1 else rgb, cmap="gray", interpolation="nearest")
        if mask is not None:
            ax.contour(mask, levels=[0.5], colors="yellow", linewidths=0.5)
        if tiles is not None:
            for edge in tiles:
                ax.axhline(edge, color="cyan", lw=0.5)
                ax.axvline(edge, color="cyan", lw=0.5)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(results: dict) -> str:
    """The report of the parts that ran."""
    lines = []
    if "inpainting" in results:
        i, m = results["inpainting"], results["memory"]
        kept = sum(1 for step in i["chosen_steps"] if step == 0)
        lines += [
            f"## Inpainting, 1068 x 1068 px, 4 bands, cloud cover {100 * i['cloud_cover']:.1f} %",
            "",
            (
                f"One network for the scene, fitted for {i['steps']} steps on up to 8 of the tiles, then applied to "
                f"{i['fitted']} of {i['tiles']} tiles of {results['tile']} px, "
                if i.get("scope") == "scene"
                else f"{i['fitted']} of {i['tiles']} tiles of {results['tile']} px fitted, at most {i['steps']} steps "
                "each, "
            )
            + f"method {i['method']}, anchor {i['anchor']}, stopping rule {i['stopping']} (the engine's defaults "
            f"but the steps): **{i['wall_s']:.0f} s** wall time, **{i['s_per_scene_mpx']:.0f} s per scene "
            f"megapixel** ({i['s_per_fitted_mpx']:.0f} s per fitted megapixel). The stopping rule kept the anchor "
            f"(the instant estimate) in {kept} of {len(i['chosen_steps'])} tiles; steps (or checkpoints) kept per "
            f"tile: {', '.join(str(step) for step in i['chosen_steps'])}.",
            "",
            "Time by stage (s): "
            + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in i.get("stages_s", {}).items())
            + ".",
            "",
            "| Masked region | SSIM | RMSE (reflectance x 10000) | seconds |",
            "|---|---|---|---|",
            *(
                f"| {name} | {v['ssim']:.3f} | {v['rmse']:.0f} | {v['seconds']:.1f} |"
                for name, v in i["scores"].items()
            ),
            "",
            "## Peak memory (RSS of a fresh process, 1 step per cloudy tile)",
            "",
            "| Scene | Peak RSS | Scene as float64 |",
            "|---|---|---|",
            f"| 1068 x 1068 px | {m['peak_rss_mib_1068']:.0f} MiB | {m['scene_float64_mib_1068']:.0f} MiB |",
            f"| 2136 x 2136 px (4x) | {m['peak_rss_mib_2136']:.0f} MiB | {4 * m['scene_float64_mib_1068']:.0f} MiB |",
            "",
            f"4x the pixels costs {m['ratio']:.2f}x the peak memory.",
            "",
        ]
    if "seams" in results:
        s = results["seams"]
        lines += [
            "## Seams: 512 px part, tiled (256 px tiles, 32 px overlap) vs untiled",
            "",
            "| Masked SSIM | value |",
            "|---|---|",
            f"| tiled vs untiled | {s['ssim_tiled_vs_untiled']:.3f} |",
            f"| untiled seed 1 vs seed 0 (noise floor) | {s['ssim_untiled_seed1_vs_seed0']:.3f} |",
            f"| tiled vs truth | {s['ssim_tiled_vs_truth']:.3f} |",
            f"| untiled vs truth | {s['ssim_untiled_vs_truth']:.3f} |",
            "",
            "![seams](scene_seams.png)",
            "",
        ]
    if "super_resolution_b08_20m" in results:
        r = results["super_resolution_b08_20m"]
        lines += [
            f"## Super-resolution to 10 m ({r['size_10m']} px, guides B04 B03 B02)",
            "",
            "B08 averaged to 20 m stands in for B8A; its truth is the real 10 m B08.",
            "",
            "| | MCPN | bicubic |",
            "|---|---|---|",
            f"| SSIM | {r['ssim_mcpn']:.3f} | {r['ssim_bicubic']:.3f} |",
            f"| RMSE | {r['rmse_mcpn']:.0f} | {r['rmse_bicubic']:.0f} |",
            "",
            f"{r['tiles']} tile(s), at most {r['steps']} steps, {r['wall_s']:.0f} s, method {r['method']}, anchor "
            f"{r['anchor']}, stopping rule {r['stopping']}; steps kept per tile: "
            f"{', '.join(str(step) for step in r['chosen_steps'])} (0: the anchor).",
            "",
            "![B09 and B8A to 10 m](scene_sr.png)",
            "",
        ]
    return "\n".join(lines)


PARTS = {"inpainting": inpainting, "seams": seams, "sr": super_resolution}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--method", default=None, help="default: the engine's")
    parser.add_argument("--sr-method", default=None, help="default: the engine's")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--scope", default="tile", choices=["tile", "scene"], help="one network per tile or per scene")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler of the tiles, e.g. local:2 (default: none)")
    parser.add_argument("--sr-size", type=int, default=256)
    parser.add_argument("--sr-steps", type=int, default=0, help="steps of the super-resolution runs (default: --steps)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results and figures")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run(args)
    WORK.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"tile": args.tile}
    for part in args.parts:
        PARTS[part](args, results)
    results["self_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run.write(args.out, "scene", markdown(results), results)


if __name__ == "__main__":
    main()
