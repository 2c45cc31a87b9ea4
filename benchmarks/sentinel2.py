"""The Sentinel-2 cloud-free product (issue #30) scored against the truth, beside the instant tools.

A Level-2A product of 2018-08-05 (baseline 04.00, offset 1000) is built from ../shared/data over a
``--size`` px window (scripts/s2_product.py) with a real cloud shape (the 256 px mask of
../shared/data/s1_sar_guide, grown to whole 20 m pixels) classed as cloud in its scene classification and
poisoned in every band; the guide product is 2018-07-21 (baseline 02.06). Both dates are clear, so the true
reflectance under the cloud is known. The product's bands are scored under the cloud with masked SSIM and RMSE
(reflectance x 10000): the 10 m bands at 10 m, the 20 m bands averaged back to 20 m (they have no 10 m truth),
against GDAL Fill nodata, global guide regression and moving-window guide regression run on the same
resolution group with the guide product's bands of that group.

    python benchmarks/sentinel2.py [--size 240] [--steps 300] [--seeds 0 1 2] [--out benchmarks/results]

Results: benchmarks/results/sentinel2.md and .json (through ``_harness.Run``) and sentinel2.png: the cloudy
input, the guide, the product (seed 0) and the truth, in true colour (B04 B03 B02) and in a false colour of
20 m bands (B12 B8A B05; input and truth at 20 m, the product at 10 m).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _harness import DATA_DIR, REPO, RESULTS, Run, module
from osgeo import gdal

sys.path.insert(0, str(REPO / "scripts"))
from s2_product import build  # noqa: E402

module("core")
from mcpn.core.classic import fill_nodata, local_regression, regression  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.metrics import masked_ssim, rmse  # noqa: E402
from mcpn.core.pipeline.sentinel2 import sentinel2_product  # noqa: E402
from mcpn.core.raster.sentinel2 import BANDS, open_product, product_grid, write_bands  # noqa: E402

S2 = DATA_DIR / "s2_time_pair"
X, Y = 420, 378  # the window's corner in the 10 m grid (multiples of 6: whole 60 m pixels)
INSTANT = {"GDAL Fill nodata": None, "guide regression": regression, "moving-window regression": local_regression}


def bands_of(folder: Path, resolution: int, size: int) -> np.ndarray:
    """The bands of one resolution group of a date, over the window, at their own resolution."""
    f = resolution // 10
    names = [b for b in BANDS if BANDS[b][0] == resolution]
    return np.stack(
        [gdal.Open(str(folder / f"{b}.tif")).ReadAsArray(X // f, Y // f, size // f, size // f) for b in names]
    ).astype(np.float64)


def coarse(values: np.ndarray, factor: int) -> np.ndarray:
    b, h, w = values.shape
    return values.reshape(b, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def instant_scores(truth: np.ndarray, guide: np.ndarray, cloud: np.ndarray) -> dict[str, dict]:
    """Each instant tool's fill of ``truth`` under ``cloud`` from ``guide``: masked SSIM, RMSE, seconds."""
    target = np.where(cloud, np.nan, truth)
    scores = {}
    for name, tool in INSTANT.items():
        started = time.perf_counter()
        filled = fill_nodata(target, cloud) if tool is None else tool(target, ~cloud, [guide])
        filled = np.where(cloud, filled, truth)
        seconds = time.perf_counter() - started
        scores[name] = {"ssim": masked_ssim(filled, truth, cloud), "rmse": rmse(filled, truth, cloud), "s": seconds}
    return scores


def picture(rows: list[list[tuple[str, np.ndarray]]], path: Path) -> None:
    """Rows of (title, 3-band image) side by side, each row's channels stretched by their 1-99 % range in its last
    image (the truth)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(3.2 * columns, 3.4 * len(rows)), squeeze=False)
    for row, line in zip(rows, axes):
        lo, hi = np.percentile(row[-1][1], (1, 99), axis=(1, 2))[:, :, None, None]
        for ax, (title, image) in zip(line, row):
            ax.imshow(np.moveaxis(np.clip((image - lo) / (hi - lo), 0, 1), 0, -1), interpolation="nearest")
            ax.set_title(title, fontsize=9)
        for ax in line:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def input_bands(safe: str, bands: list[str], resolution: int, folder: str) -> np.ndarray:
    """Bands of a product as the algorithm reads them (offset removed), at their resolution."""
    product = open_product(safe)
    path = str(Path(folder) / f"input_{resolution}.tif")
    write_bands(product, resolution, bands, product_grid(product, None, resolution), path, "near")
    return gdal.Open(path).ReadAsArray().astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=240, help="window side in 10 m pixels (a multiple of 6)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    run = Run(args)
    gdal.UseExceptions()
    real = gdal.Open(str(DATA_DIR / "s1_sar_guide" / "cloud_mask.tif")).ReadAsArray()[: args.size, : args.size] > 0
    with tempfile.TemporaryDirectory() as folder:
        target = build(str(S2 / "2018-08-05"), folder, X, Y, args.size, cloud=real, cloud_value=60000)
        guide = build(str(S2 / "2018-07-21"), folder, X, Y, args.size, baseline="02.06", date="20180721T110621")
        cloud10, cloud20 = target.cloud, target.cloud[::2, ::2]
        truth = {10: bands_of(S2 / "2018-08-05", 10, args.size), 20: bands_of(S2 / "2018-08-05", 20, args.size)}
        guides = {10: bands_of(S2 / "2018-07-21", 10, args.size), 20: bands_of(S2 / "2018-07-21", 20, args.size)}
        data: dict = {
            "size": args.size,
            "cloud share": float(cloud10.mean()),
            "instant": {
                "10 m": instant_scores(truth[10], guides[10], cloud10),
                "20 m": instant_scores(truth[20], guides[20], cloud20),
            },
            "mcpn": [],
        }
        for seed in args.seeds:
            out = Path(folder) / f"product_{seed}.tif"
            started = time.perf_counter()
            result = sentinel2_product(
                target.safe, [guide.safe], str(out), Settings(steps=args.steps, device="cpu", seed=seed)
            )
            seconds = time.perf_counter() - started
            values = gdal.Open(str(out)).ReadAsArray().astype(np.float64)
            ten, twenty = values[:4], coarse(values[4:], 2)
            if seed == args.seeds[0]:
                rgb, false = [2, 1, 0], [9, 7, 4]  # B04 B03 B02 of the 10 m bands; B12 B8A B05 of all ten
                cloudy = input_bands(target.safe, ["B04", "B03", "B02"], 10, folder)
                swir = input_bands(target.safe, ["B12", "B8A", "B05"], 20, folder)
                rows = [
                    [("cloudy input 2018-08-05", cloudy), ("guide 2018-07-21", guides[10][rgb]),
                     ("MCPN product", values[rgb]), ("truth 2018-08-05", truth[10][rgb])],
                    [("input B12 B8A B05 (20 m)", swir), ("MCPN product (10 m)", values[false]),
                     ("truth (20 m)", truth[20][[5, 3, 0]])],
                ]  # fmt: skip
                args.out.mkdir(parents=True, exist_ok=True)
                picture(rows, args.out / "sentinel2.png")
            data["mcpn"].append({
                "seed": seed,
                "s": seconds,
                "chosen steps": result.chosen_steps,
                "10 m": {"ssim": masked_ssim(ten, truth[10], cloud10), "rmse": rmse(ten, truth[10], cloud10)},
                "20 m": {"ssim": masked_ssim(twenty, truth[20], cloud20), "rmse": rmse(twenty, truth[20], cloud20)},
            })  # fmt: skip
    run.write(args.out, "sentinel2", report(data, args), data)


def report(data: dict, args: argparse.Namespace) -> str:
    lines = [
        f"{data['size']} x {data['size']} px at 10 m ({data['size'] // 2} px at 20 m), "
        f"{100 * data['cloud share']:.1f} % cloud; MCPN: the engine's defaults, at most {args.steps} steps a fit, "
        f"seeds {', '.join(map(str, args.seeds))} (mean ± spread over seeds).",
        "",
        "| bands | MCPN product SSIM | RMSE | best instant tool | its SSIM | RMSE | MCPN - best |",
        "|---|---|---|---|---|---|---|",
    ]
    for group in ("10 m", "20 m"):
        ssims = np.array([m[group]["ssim"] for m in data["mcpn"]])
        rmses = np.array([m[group]["rmse"] for m in data["mcpn"]])
        name, best = max(data["instant"][group].items(), key=lambda item: item[1]["ssim"])
        lines.append(
            f"| {group} | {ssims.mean():.3f} ± {np.ptp(ssims) / 2:.3f} | {rmses.mean():.0f} | {name} | "
            f"{best['ssim']:.3f} | {best['rmse']:.0f} | {ssims.mean() - best['ssim']:+.3f} |"
        )
    lines += ["", "All instant tools (masked SSIM / RMSE):", ""]
    for group, scores in data["instant"].items():
        text = "; ".join(f"{n} {s['ssim']:.3f} / {s['rmse']:.0f}" for n, s in scores.items())
        lines.append(f"- {group}: {text}")
    seconds = [m["s"] for m in data["mcpn"]]
    lines += ["", f"Product run (3 fits, CPU): {np.mean(seconds):.0f} s on average."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
