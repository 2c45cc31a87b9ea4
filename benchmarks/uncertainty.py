"""Does the uncertainty layer (ensemble spread) point at the pixels where the fill is wrong?

Run from the repository root, e.g.::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/uncertainty.py --steps 500
    .venv/bin/python benchmarks/uncertainty.py --size 64 --steps 3 --out benchmarks/out/smoke_unc  # smoke test

For each inpainting case of :mod:`cases` (``s2_guide``, ``sar_guide``) and each
method (MCPN Emergent, the default, and the Stacked baseline) the cloud is
filled K times (``--seeds``, default 0 1 2) through :func:`core.pipeline.api.inpaint`
with fixed stopping. As in :func:`core.scene.inpaint_raster` with
``ensemble=K``, the output is the members' mean and the uncertainty layer their
population standard deviation (the *spread*). Over the cloud pixels we compare
the spread with the absolute error of the mean against the ground truth, both
divided by the truth's 1-99 percentile range of the band (so that bands and
sensors are comparable):

- Spearman and Pearson correlation, per band and pooled over all bands;
- Spearman on 8 x 8 px blocks (block means over the cloud pixels; "where", not
  "which pixel");
- for reference, the Spearman correlation of the error with the distance to the
  nearest clear pixel: a free predictor that any user has without an ensemble;
- the mean error in the top spread decile over the mean error in the bottom one;
- calibration: the fraction of pixels with ``|error| <= 2 * spread`` and the
  factor ``k90`` such that 90 % of them have ``|error| <= k90 * spread``;
- masked SSIM and RMSE of the ensemble mean against those of a single member
  (does averaging help?).

Outputs in ``--out``: ``uncertainty.md``, ``uncertainty.json`` and
``uncertainty_<case>.png`` (spread and |error| maps side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import _harness  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from cases import INPAINT_CASES, Case, build_cases  # noqa: E402
from scipy import ndimage, stats  # noqa: E402

metrics = _harness.module("core.trust.metrics")

METHODS = ("emergent", "stacked")
LABELS = {"emergent": "MCPN Emergent", "direct": "MCPN Direct", "stacked": "Stacked"}
BLOCK = 8  # px, for the block-level correlation
MIN_BLOCK_PIXELS = 16  # cloud pixels a block needs to count


# --------------------------------------------------------------------------- statistics


def _corr(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """(Spearman, Pearson) of two 1-D samples; None where undefined (fewer than 3 values or a constant)."""
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    return float(stats.spearmanr(x, y)[0]), float(np.corrcoef(x, y)[0, 1])


def _decile_ratio(spread: np.ndarray, error: np.ndarray) -> float | None:
    """Mean error of the pixels in the top spread decile over that of the bottom decile."""
    if spread.size < 10 or np.ptp(spread) == 0:
        return None
    low, high = np.quantile(spread, (0.1, 0.9))
    bottom, top = error[spread <= low], error[spread >= high]
    if not bottom.size or not top.size or bottom.mean() == 0:
        return None
    return float(top.mean() / bottom.mean())


def _calibration(spread: np.ndarray, error: np.ndarray) -> dict[str, float | None]:
    within = float(np.mean(error <= 2.0 * spread)) if spread.size else None
    positive = spread > 0
    k90 = float(np.quantile(error[positive] / spread[positive], 0.9)) if positive.any() else None
    return {"within_2sd": within, "k90": k90}


def _sample_stats(spread: np.ndarray, error: np.ndarray) -> dict[str, Any]:
    spearman, pearson = _corr(spread, error)
    return {
        "spearman": spearman,
        "pearson": pearson,
        "decile_ratio": _decile_ratio(spread, error),
        **_calibration(spread, error),
        "mean_error": float(error.mean()),
        "mean_spread": float(spread.mean()),
    }


def _block_means(values: np.ndarray, mask: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block x block tile: the mean of ``values`` (H, W) over its mask pixels, and their count."""
    h, w = mask.shape
    hb, wb = h // block, w // block
    m = mask[: hb * block, : wb * block].reshape(hb, block, wb, block).astype(np.float64)
    v = np.where(mask, values, 0.0)[: hb * block, : wb * block].reshape(hb, block, wb, block)
    count = m.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = v.sum(axis=(1, 3)) / count
    return mean.ravel(), count.ravel()


def band_scale(truth: np.ndarray) -> np.ndarray:
    """The truth's 1-99 percentile range per band, shape (B,)."""
    ranges = [metrics.percentile_range(b) for b in truth]
    return np.array([high - low for low, high in ranges])


def uncertainty_stats(
    truth: np.ndarray, mean: np.ndarray, spread: np.ndarray, mask: np.ndarray, band_names: list[str] | None = None
) -> dict[str, Any]:
    """Spread-vs-error statistics over the ``mask`` pixels; ``truth``, ``mean``, ``spread`` are (B, H, W).

    Error and spread are divided by the truth's per-band 1-99 percentile range.
    """
    scale = band_scale(truth)[:, None, None]
    error = np.abs(mean - truth) / scale
    sd = spread / scale
    names = band_names or [f"band {i + 1}" for i in range(truth.shape[0])]
    per_band = {name: _sample_stats(sd[b][mask], error[b][mask]) for b, name in enumerate(names)}
    pooled = _sample_stats(sd[:, mask].ravel(), error[:, mask].ravel())

    # where the cloud is wrong: 8 x 8 px blocks, band-averaged
    block_err, count = _block_means(error.mean(axis=0), mask, BLOCK)
    block_sd, _ = _block_means(sd.mean(axis=0), mask, BLOCK)
    keep = count >= MIN_BLOCK_PIXELS
    block_spearman, block_pearson = _corr(block_sd[keep], block_err[keep])

    # a predictor without any ensemble: distance to the nearest clear pixel
    distance = ndimage.distance_transform_edt(mask)
    dist = np.broadcast_to(distance, error.shape)[:, mask].ravel()
    distance_spearman, _ = _corr(dist, error[:, mask].ravel())
    spread_vs_distance, _ = _corr(dist, sd[:, mask].ravel())
    return {
        "pooled": pooled,
        "per_band": per_band,
        "blocks": {
            "size_px": BLOCK,
            "count": int(keep.sum()),
            "spearman": block_spearman,
            "pearson": block_pearson,
        },
        "distance_to_clear": {"spearman_error": distance_spearman, "spearman_spread": spread_vs_distance},
        "maps": {"error": error.mean(axis=0), "spread": sd.mean(axis=0)},  # band means, for the figure
    }


# --------------------------------------------------------------------------- fitting


def composite(case: Case, image: np.ndarray) -> np.ndarray:
    """Known pixels of the truth kept, the cloud from ``image`` (as in quality.py)."""
    return np.where(case.mask[None], np.asarray(image, dtype=np.float64), case.truth)


def run_ensemble(case: Case, method: str, seeds: list[int], steps: int, device: str) -> dict[str, Any]:
    """Fit ``case`` once per seed; return the members' composites and timings."""
    api = _harness.module("core.pipeline.api")
    members, seconds, devices = [], [], set()
    for seed in seeds:
        t0 = time.perf_counter()
        res = api.inpaint(
            case.target,
            case.mask,
            case.guides,
            method=method,
            stopping="fixed",
            steps=steps,
            seed=seed,
            device=device,
            radar_guides=case.radar_guides,
        )
        members.append(composite(case, res.image))
        seconds.append(time.perf_counter() - t0)
        devices.add(res.device)
        print(f"  {case.name:10s} {method:9s} seed={seed} {seconds[-1]:.1f} s", flush=True)
    return {"members": np.stack(members), "seconds": seconds, "device": ", ".join(sorted(devices))}


def evaluate(case: Case, method: str, run: dict[str, Any]) -> dict[str, Any]:
    stack = run["members"]
    mean = stack.mean(axis=0)
    spread = np.where(case.mask[None], stack.std(axis=0), 0.0)  # population std, 0 outside the cloud
    result = uncertainty_stats(case.truth, mean, spread, case.mask, case.band_names)
    single_ssim = [metrics.masked_ssim(m, case.truth, case.mask) for m in stack]
    single_rmse = [metrics.rmse(m, case.truth, case.mask) for m in stack]
    result.update(
        case=case.name,
        method=method,
        seconds=run["seconds"],
        device=run["device"],
        ssim_mask_mean=metrics.masked_ssim(mean, case.truth, case.mask),
        ssim_mask_members=single_ssim,
        rmse_mask_mean=metrics.rmse(mean, case.truth, case.mask),
        rmse_mask_members=single_rmse,
    )
    return result


# --------------------------------------------------------------------------- reporting


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rmse_digits(case: Case) -> int:
    return 1 if float(np.nanpercentile(np.abs(case.truth), 99)) >= 100 else 4


def markdown(cases: list[Case], results: list[dict[str, Any]], header: dict[str, Any]) -> str:
    lines = ["# Uncertainty layer vs actual error", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += [
        "",
        "Over the cloud pixels only. Spread = population std over the ensemble members (what",
        "`inpaint_raster(..., ensemble=K, uncertainty=...)` writes), error = |ensemble mean - truth|;",
        "both divided by the truth's 1-99 percentile range of the band. *pooled*: all (band, pixel) pairs.",
        "*blocks*: Spearman of block means over 8 x 8 px blocks with at least 16 cloud pixels.",
        "*dist.*: Spearman of the error with the distance to the nearest clear pixel (no ensemble needed).",
        "*top/bottom*: mean error of the 10 % most uncertain pixels over that of the 10 % least uncertain.",
        "*<= 2 sd*: fraction of pixels with |error| <= 2 x spread (about 0.95 if the spread were a",
        "calibrated Gaussian std); *k90*: the factor k with |error| <= k x spread for 90 % of the pixels.",
        "SSIM / RMSE: masked, of the ensemble mean and of the single members (mean ± std over members).",
        "",
        "| Case | Method | Spearman pooled | Pearson pooled | Spearman blocks | Spearman dist. | top/bottom"
        " | <= 2 sd | k90 | SSIM mean | SSIM single | RMSE mean | RMSE single |",
        "|" + "---|" * 13,
    ]
    by_case = {c.name: c for c in cases}
    for r in results:
        p, d = r["pooled"], _rmse_digits(by_case[r["case"]])
        ss, rs = np.array(r["ssim_mask_members"]), np.array(r["rmse_mask_members"])
        lines.append(
            f"| {r['case']} | {LABELS[r['method']]} | {_f(p['spearman'])} | {_f(p['pearson'])} "
            f"| {_f(r['blocks']['spearman'])} | {_f(r['distance_to_clear']['spearman_error'])} "
            f"| {_f(p['decile_ratio'], 1)} | {_f(p['within_2sd'])} | {_f(p['k90'], 1)} "
            f"| {r['ssim_mask_mean']:.3f} | {ss.mean():.3f} ± {ss.std():.3f} "
            f"| {r['rmse_mask_mean']:.{d}f} | {rs.mean():.{d}f} ± {rs.std():.{d}f} |"
        )
    lines += [
        "",
        "## Per band",
        "",
        "| Case | Method | Band | Spearman | Pearson | top/bottom | <= 2 sd | k90 | mean error | mean spread |",
        "|" + "---|" * 10,
    ]
    for r in results:
        for band, s in r["per_band"].items():
            lines.append(
                f"| {r['case']} | {LABELS[r['method']]} | {band} | {_f(s['spearman'])} | {_f(s['pearson'])} "
                f"| {_f(s['decile_ratio'], 1)} | {_f(s['within_2sd'])} | {_f(s['k90'], 1)} "
                f"| {s['mean_error']:.3f} | {s['mean_spread']:.3f} |"
            )
    lines += ["", "Mean error and spread in units of the band's 1-99 percentile range.", ""]
    return "\n".join(lines) + "\n"


def figure_case(case: Case, results: list[dict[str, Any]], path: Path) -> None:
    """Band-mean spread and |error| maps (normalised units) side by side, one row per method."""
    rows = [r for r in results if r["case"] == case.name]
    fig, axes = plt.subplots(len(rows), 2, figsize=(5.6, 2.7 * len(rows)), squeeze=False)
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="0.85")
    for (ax_sd, ax_err), r in zip(axes, rows):
        for ax, key, title in ((ax_sd, "spread", "spread"), (ax_err, "error", "|error|")):
            values = np.ma.masked_where(~case.mask, r["maps"][key])
            vmax = float(np.percentile(r["maps"][key][case.mask], 99)) or 1.0
            im = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(f"{LABELS[r['method']]}: {title}", fontsize=8)
            ax.axis("off")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
        ax_err.set_title(f"{LABELS[r['method']]}: |error| (Spearman {_f(r['pooled']['spearman'])})", fontsize=8)
    fig.suptitle(f"{case.name}: band-mean, / 1-99 % range (clear pixels grey)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def _json_ready(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "maps"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=800, help="optimisation steps per fit (default 800)")
    parser.add_argument("--size", type=int, default=128, help="crop size in pixels (default 128)")
    parser.add_argument("--cases", nargs="+", default=list(INPAINT_CASES), choices=INPAINT_CASES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=tuple(LABELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one fit per seed (K = count)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, default=_harness.DATA_DIR, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=_harness.REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if len(args.seeds) < 2:
        raise SystemExit("an ensemble needs at least two seeds")
    import torch

    load_start, started, commit = _load(), time.perf_counter(), _harness._commit()  # the code that runs
    cases = build_cases(args.data, args.size, args.cases)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for case in cases:
        for method in args.methods:
            results.append(evaluate(case, method, run_ensemble(case, method, args.seeds, args.steps, args.device)))
            p = results[-1]["pooled"]
            print(f"{case.name:10s} {method:9s} Spearman={_f(p['spearman'])} <=2sd={_f(p['within_2sd'])}", flush=True)
        figure_case(case, results, args.out / f"uncertainty_{case.name}.png")
    omp = os.environ.get("OMP_NUM_THREADS")
    header = {
        "command": (f"OMP_NUM_THREADS={omp} " if omp else "")
        + "python benchmarks/uncertainty.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "steps": args.steps,
        "crop size": args.size,
        "seeds (ensemble members)": args.seeds,
        "stopping": "fixed",
        "device": ", ".join(sorted({r["device"] for r in results})),
        "torch threads": torch.get_num_threads(),
        "CPU cores": os.cpu_count(),
        "load average (1/5/15 min) at start": load_start,
        "load average (1/5/15 min) at end": _load(),
        "total wall time (s)": round(time.perf_counter() - started, 1),
        "git commit (at start)": commit,
        "python / numpy / torch": f"{platform.python_version()} / {np.__version__} / {torch.__version__}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    (args.out / "uncertainty.md").write_text(markdown(cases, results, header), encoding="utf-8")
    payload = {"settings": header, "results": [_json_ready(r) for r in results]}
    (args.out / "uncertainty.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    print(f"wrote {args.out / 'uncertainty.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
