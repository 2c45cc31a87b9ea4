"""Instant super-resolution estimates side by side, and how often the engine's starting estimate is below bicubic.

No network is fitted: this scores what the fit starts from (its anchor) against
what a user gets in a second, on inputs made two ways: the area average (how
the engine assumes an input was made) and a sensor-like Gaussian blur before it
(Wald's protocol; the engine is not told). Cases: Sentinel-2 B08 from same-date
RGB and RGB from an older date's RGB, at x2, x4 and x3.3 (10 m truth), and the
six 20 m bands at x2 (20 m to 40 m, guides the 10 m bands averaged to 20 m,
scored against the 20 m bands). Each case on several crops of the scene.

    python benchmarks/sr_estimates.py            # writes benchmarks/results/quality/sr_estimates.{md,json}
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _harness
import numpy as np
from cases import GUIDE_DATE, TARGET_DATE, area_average, sensor_blur
from osgeo import gdal

metrics = _harness.module("core.metrics")
sharpening = _harness.module("core.sharpening")
Degradation = _harness.module("core.model.degradation").Degradation

BANDS_10M = ("B04", "B03", "B02", "B08")
BANDS_20M = ("B05", "B06", "B07", "B8A", "B11", "B12")
# the anchors as the fit outputs them at step 0: made consistent with the input (averaging back to it)
ESTIMATES = ("bicubic", "consistent bicubic", "regression + residual", "anchor 0.6.0 (detail agreement)",
             "anchor (evidence)")  # fmt: skip


def read(path: Path, x: int, y: int, size: int) -> np.ndarray:
    return np.asarray(gdal.Open(str(path)).ReadAsArray(x, y, size, size), dtype=np.float64)


def cases(data: Path, size: int, offsets: list[int]) -> list[dict]:
    """Every (group, factor, blur, crop) case: truth, low-resolution input and guides."""
    folder = data / "s2_time_pair"
    out = []
    for offset in offsets:
        current, older = (np.stack([read(folder / date / f"{b}.tif", offset, offset, size) for b in BANDS_10M])
                          for date in (TARGET_DATE, GUIDE_DATE))  # fmt: skip
        groups = {
            "nir from RGB": (current[3:], current[:3], (2, 4, 3.3)),
            "RGB from older RGB": (current[:3], older[:3], (2, 4, 3.3)),
        }
        half = size // 2
        twenty = np.stack([read(folder / TARGET_DATE / f"{b}.tif", offset // 2, offset // 2, half) for b in BANDS_20M])
        groups["six 20 m bands"] = (twenty, area_average(current, half), (2,))
        for group, (truth, guide, factors) in groups.items():
            for factor in factors:
                low_side = round(truth.shape[1] / factor)
                for blur in ("area", "sensor"):
                    source = sensor_blur(truth, factor) if blur == "sensor" else truth
                    low = area_average(source, low_side)
                    out.append({"group": group, "factor": factor, "blur": blur, "crop": offset, "truth": truth,
                                "low": low, "guides": [guide]})  # fmt: skip
    return out


def estimates(case: dict) -> dict[str, np.ndarray]:
    truth, low, guides = case["truth"], case["low"], case["guides"]
    area = Degradation("area", truth.shape[1:], low.shape[1:])
    known = np.ones(low.shape, bool)
    return {
        "bicubic": sharpening.bicubic(low, truth.shape[1:]),
        "consistent bicubic": sharpening.consistent_bicubic(low, known, area),
        "regression + residual": sharpening.regression_and_residual(low, known, guides, area),
        "anchor 0.6.0 (detail agreement)": area.project_numpy(
            sharpening.super_resolution_anchor(low, known, guides, area, False).image, low, known
        ),
        "anchor (evidence)": area.project_numpy(
            sharpening.super_resolution_anchor(low, known, guides, area).image, low, known
        ),
    }


def sam_degrees(image: np.ndarray, truth: np.ndarray) -> float:
    """Mean spectral angle (degrees) between the estimate's and the truth's pixel spectra (multi-band cases)."""
    dot = (image * truth).sum(0)
    norms = np.linalg.norm(image, axis=0) * np.linalg.norm(truth, axis=0)
    return float(np.degrees(np.arccos(np.clip(dot / np.maximum(norms, 1e-12), -1, 1))).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=192, help="10 m crop side in px")
    parser.add_argument("--offsets", type=int, nargs="+", default=[100, 420, 740], help="crop corners (10 m px)")
    parser.add_argument("--out", type=Path, default=_harness.RESULTS / "quality")
    parser.add_argument("--data", type=Path, default=_harness.DATA_DIR)
    args = parser.parse_args()
    run = _harness.Run(args)
    records = []
    for case in cases(args.data, args.size, args.offsets):
        scored = {}
        for name, image in estimates(case).items():
            scored[name] = {
                "ssim": metrics.masked_ssim(image, case["truth"]),
                "rmse": metrics.rmse(image, case["truth"]),
            }
            if len(case["truth"]) > 1:
                scored[name]["sam"] = sam_degrees(image, case["truth"])
        records.append({**{k: case[k] for k in ("group", "factor", "blur", "crop")}, "scores": scored})
    run.write(args.out, "sr_estimates", report(records), records)


def report(records: list[dict]) -> str:
    keys = list(dict.fromkeys((r["group"], r["factor"], r["blur"]) for r in records))
    lines = [
        "SSIM against the truth, mean over the crops (RMSE in reflectance x 10000 below the table). "
        "The anchors are scored as the fit outputs them at step 0: made consistent with the input. "
        "'below bicubic' counts the crops where the engine's starting estimate (evidence) scored below bicubic.",
        "",
        "| case | input made by | " + " | ".join(ESTIMATES) + " | below bicubic |",
        "|---" * (len(ESTIMATES) + 3) + "|",
    ]
    for group, factor, blur in keys:
        rows = [r for r in records if (r["group"], r["factor"], r["blur"]) == (group, factor, blur)]
        means = {name: np.mean([r["scores"][name]["ssim"] for r in rows]) for name in ESTIMATES}
        best = max(means.values())
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in means.values()]
        below = sum(r["scores"]["anchor (evidence)"]["ssim"] < r["scores"]["bicubic"]["ssim"] for r in rows)
        lines.append(f"| {group} x{factor:g} | {blur} | " + " | ".join(cells) + f" | {below} of {len(rows)} |")
    lines += ["", "RMSE, mean over the crops:", "", "| case | input made by | " + " | ".join(ESTIMATES) + " |",
              "|---" * (len(ESTIMATES) + 2) + "|"]  # fmt: skip
    for group, factor, blur in keys:
        rows = [r for r in records if (r["group"], r["factor"], r["blur"]) == (group, factor, blur)]
        cells = [f"{np.mean([r['scores'][name]['rmse'] for r in rows]):.1f}" for name in ESTIMATES]
        lines.append(f"| {group} x{factor:g} | {blur} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
