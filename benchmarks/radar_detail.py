"""How much can the radar guide add to interpolation? Guided fills of the ``sar_guide`` case against biharmonic.

On ``sar_guide`` every MCPN fit keeps its anchor, biharmonic (``results/quality/inpainting.md``).
This script measures whether any simple use of the radar guide (VH/VV in dB) beats it
in the gap, and the ceiling a linear use of it has:

- R² of the gap's truth on the guide bands, raw and smoothed at 1, 2 and 4 px
  (fitted on the truth itself: upper bounds for any linear use of them);
- biharmonic, the moving-window guide regression on the raw and smoothed bands;
- biharmonic plus k x the regression's detail (the regression minus its own
  biharmonic fill: a Poisson-style guided interpolation);
- biharmonic plus the guide's detail weighted by slopes learned on clear pixels
  hidden under synthetic clouds (the target's interpolation error regressed on
  the guide's, with a ridge of ``lam`` x the mean variance).

Run from the repository root with the project's venv::

    .venv/bin/python benchmarks/radar_detail.py --sizes 128 256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _harness
import numpy as np
from cases import build_cases
from quality import explained_share, guides_in_db, score
from scipy import ndimage

classic = _harness.module("core.classic")
synthetic_mask = _harness.module("core.trust.self_validation").synthetic_mask

SMOOTHING = (1, 2, 4)  # px: the Gaussian blurs of the radar bands added as features
DETAIL_WEIGHTS = (0.25, 0.5, 1.0)
RIDGES = (0.0, 1.0, 10.0)
SYNTHETIC_SEEDS = (0, 1, 2)


def radar_db(case) -> np.ndarray:
    """The case's radar bands in dB, invalid pixels set to the band's mean."""
    return np.stack([np.where(np.isfinite(b), b, np.nanmean(b)) for b in guides_in_db(case)[0]])


def smoothed(bands: np.ndarray) -> np.ndarray:
    """The bands and their Gaussian blurs at each of :data:`SMOOTHING`."""
    return np.stack([b for band in bands for b in (band, *(ndimage.gaussian_filter(band, s) for s in SMOOTHING))])


def learned_detail(case, features: np.ndarray, fill: np.ndarray, lam: float) -> np.ndarray:
    """``fill`` plus the features' interpolation error weighted by slopes learned under synthetic clouds."""
    rows, errors = [], []
    for seed in SYNTHETIC_SEEDS:
        hidden = synthetic_mask(case.mask, None, seed)
        missing = hidden | case.mask
        target_fill = classic.biharmonic(np.where(missing[None], np.nan, case.truth), missing)
        rows.append((features - classic.biharmonic(features, missing))[:, hidden].T)
        errors.append((case.truth - target_fill)[:, hidden].T)
    x, y = np.concatenate(rows), np.concatenate(errors)
    gram = x.T @ x
    slopes = np.linalg.solve(gram + lam * np.trace(gram) / len(gram) * np.eye(len(gram)), x.T @ y)
    detail = features - classic.biharmonic(features, case.mask)
    return fill + np.einsum("fb,fhw->bhw", slopes, detail)


def measure(case) -> dict:
    """Every guided fill's masked SSIM, and the R² ceilings."""
    radar = radar_db(case)
    features = smoothed(radar)
    known = ~case.mask
    bih = classic.biharmonic(case.target, case.mask)
    scores = {"biharmonic": score(case, bih)}
    regressions = {
        "raw": classic.local_regression(case.target, known, [radar]),
        "smoothed": classic.local_regression(case.target, known, [features]),
    }
    for name, estimate in regressions.items():
        scores[f"moving-window regression ({name})"] = score(case, estimate)
    for name, estimate in regressions.items():
        detail = estimate - classic.biharmonic(estimate, case.mask)
        for weight in DETAIL_WEIGHTS:
            scores[f"biharmonic + {weight:g} x regression detail ({name})"] = score(case, bih + weight * detail)
    for lam in RIDGES:
        scores[f"biharmonic + learned detail (ridge {lam:g})"] = score(case, learned_detail(case, radar, bih, lam))
    explained = {
        "explained_raw": explained_share(case, list(radar)),
        "explained_smoothed": explained_share(case, list(features)),
    }
    return {**explained, "ssim": scores}


def report(records: dict[int, dict]) -> str:
    sizes = sorted(records)
    lines = [
        "Masked SSIM in the gap of `sar_guide` (composite with the known pixels, as `quality.py` scores it); "
        "gain: against biharmonic.",
        "",
        "| fill | " + " | ".join(f"{s} px | gain" for s in sizes) + " |",
        "|---|" + "---|---|" * len(sizes),
    ]
    for name in records[sizes[0]]["ssim"]:
        cells = []
        for size in sizes:
            value = records[size]["ssim"][name]
            cells += [f"{value:.3f}", f"{value - records[size]['ssim']['biharmonic']:+.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Share of the gap's variance the radar explains linearly (R², fitted on the truth: a ceiling):", ""]
    for size in sizes:
        record = records[size]
        lines.append(
            f"- {size} px: raw VH/VV {record['explained_raw']:.0%}; "
            f"with their blurs at {', '.join(map(str, SMOOTHING))} px {record['explained_smoothed']:.0%}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--out", type=Path, default=_harness.RESULTS / "quality")
    parser.add_argument("--data", type=Path, default=_harness.DATA_DIR)
    args = parser.parse_args()
    run = _harness.Run(args)
    records = {size: measure(build_cases(args.data, size, ["sar_guide"])[0]) for size in args.sizes}
    run.write(args.out, "radar_detail", report(records), records)


if __name__ == "__main__":
    main()
