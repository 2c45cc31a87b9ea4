"""Calibration of the trust features: does self-validation predict the real score, does the spread track the error?

Run from the repository root with the project's venv::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/calibration.py --size 128 --steps 300
    .venv/bin/python benchmarks/calibration.py --size 64 --steps 4 --out benchmarks/out/smoke_cal   # smoke test

Every inpainting case of ``cases.py`` is filled once per seed of ``--seeds``
with the engine's default :class:`core.config.Settings` (``steps`` and ``seed``
changed) through :func:`core.pipeline.api.inpaint`, and scored on the real cloud
against the truth (masked SSIM and RMSE of the composite, as ``quality.py``).

- **Self-validation**: :func:`core.trust.self_validation.validate` with the same
  settings and seed, its fill a closure over ``api.inpaint`` (as
  ``core.pipeline.inpainting._self_validate`` on a tile), estimates that score.
  Over the case x seed fills: correlation of estimate and real score, and the
  bias (estimate - real); also for GDAL Fill nodata and MCPN's gain over it.
- **Uncertainty**: the seeds' fills are an ensemble (``Settings(ensemble=K,
  seed=s)`` fits seeds s..s+K-1): output their mean, uncertainty their
  population std (the *spread*). Over the cloud pixels of every band, error and
  spread / the truth's 1-99 % range: Spearman correlation, the share of pixels
  whose |error| is within 1 and 2 spreads, and the share with zero spread.

Outputs in ``--out`` (default ``benchmarks/results``): ``calibration.md``,
``calibration.json`` (the header of ``_harness.Run`` and every record).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import _harness
import numpy as np
from cases import INPAINT_CASES, Case, build_cases
from scipy import ndimage, stats

api = _harness.module("core.pipeline.api")
classic = _harness.module("core.classic")
metrics = _harness.module("core.metrics")
validate = _harness.module("core.trust.self_validation").validate
Settings = _harness.module("core.config").Settings
InputError = _harness.module("core.errors").InputError
Sample = _harness.module("core.pipeline.sample").Sample
devices = _harness.module("core.model.device")
Callbacks = _harness.module("core.model.fitting").Callbacks

ZERO_SPREAD = 1e-6  # a spread below this share of the band's 1-99 % range counts as zero
BLOCK = 8  # px, for the block-level ("where", not "which pixel") correlation
MIN_BLOCK_PIXELS = 16  # cloud pixels a block needs to count
COVERAGE_FACTORS = (0.5, 1, 2, 3, 5, 10)  # share of pixels with |error| <= k spreads, in the JSON


# --------------------------------------------------------------------------- statistics


def _corr(x: np.ndarray, y: np.ndarray, rank: bool = True) -> float | None:
    """Spearman's (or Pearson's) correlation; None where undefined (fewer than 3 values or a constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y)[0] if rank else np.corrcoef(x, y)[0, 1])


def estimate_stats(estimate: list[float], real: list[float]) -> dict:
    """How an estimate of a score compares with the real score over paired samples."""
    est, true = np.asarray(estimate, dtype=np.float64), np.asarray(real, dtype=np.float64)
    bias = est - true
    return {
        "n": int(est.size),
        "pearson": _corr(est, true, rank=False),
        "spearman": _corr(est, true),
        "bias_mean": float(bias.mean()),
        "bias_std": float(bias.std()),
        "abs_error_mean": float(np.abs(bias).mean()),
        "share_below_real": float(np.mean(bias < 0)),
    }


def self_validation_stats(records: list[dict]) -> dict:
    """Estimate against real over the fills self-validation scored: SSIM, RMSE (relative bias, as the cases' units
    differ), GDAL's SSIM, MCPN's gain over it, and the mean SSIM bias per case."""
    scored = [r for r in records if "estimate_ssim" in r]
    summary: dict = {"scored": len(scored), "failed": len(records) - len(scored)}
    if not scored:
        return summary

    def column(key: str) -> np.ndarray:
        return np.array([r[key] for r in scored], dtype=np.float64)

    est, real, cases = column("estimate_ssim"), column("real_ssim"), np.array([r["case"] for r in scored])
    ssim = estimate_stats(est, real)
    within = [v - np.array([v[cases == case].mean() for case in cases]) for v in (est, real)]  # case means removed
    ssim.update(pearson_within_case=_corr(*within, rank=False), abs_error_max=float(np.abs(est - real).max()))
    rmse = estimate_stats(column("estimate_rmse"), column("real_rmse"))
    relative = column("estimate_rmse") / column("real_rmse") - 1
    rmse.update(relative_bias_mean=float(relative.mean()), relative_bias_std=float(relative.std()))
    return {
        **summary,
        "ssim": ssim,
        "rmse": rmse,
        "gdal_ssim": estimate_stats(column("estimate_gdal_ssim"), column("real_gdal_ssim")),
        "gain_over_gdal": estimate_stats(est - column("estimate_gdal_ssim"), real - column("real_gdal_ssim")),
        "ssim_bias_per_case": {case: float(np.mean((est - real)[cases == case])) for case in dict.fromkeys(cases)},
    }


def normalised(truth: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|mean - truth| and the spread, (B, H, W), divided by the truth's 1-99 percentile range per band."""
    scale = np.array([high - low for low, high in map(metrics.percentile_range, truth)])[:, None, None]
    return np.abs(mean - truth) / scale, spread / scale


def spread_stats(spread: np.ndarray, error: np.ndarray) -> dict:
    """Spread against error over paired samples (1-D, normalised units); rounding noise in the spread counts as 0."""
    zero = spread <= ZERO_SPREAD
    spread = np.where(zero, 0.0, spread)
    return {
        "pixels": int(spread.size),
        "spearman": _corr(spread, error),
        "spearman_nonzero": _corr(spread[~zero], error[~zero]),
        "within_1": float(np.mean(error <= spread)),
        "within_2": float(np.mean(error <= 2 * spread)),
        "zero_spread": float(np.mean(zero)),
        "coverage": {str(k): float(np.mean(error <= k * spread)) for k in COVERAGE_FACTORS},
        "mean_error": float(error.mean()),
        "mean_spread": float(spread.mean()),
    }


def _block_means(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per BLOCK x BLOCK tile: the mean of ``values`` (H, W) over its mask pixels, and their count."""
    hb, wb = mask.shape[0] // BLOCK, mask.shape[1] // BLOCK
    m = mask[: hb * BLOCK, : wb * BLOCK].reshape(hb, BLOCK, wb, BLOCK)
    v = np.where(mask, values, 0.0)[: hb * BLOCK, : wb * BLOCK].reshape(hb, BLOCK, wb, BLOCK)
    count = m.sum(axis=(1, 3))
    return (v.sum(axis=(1, 3)) / np.maximum(count, 1)).ravel(), count.ravel()


def uncertainty_stats(truth: np.ndarray, members: np.ndarray, mask: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """The ensemble (K, B, H, W) against the truth (B, H, W) over the ``mask`` (H, W) pixels of every band.

    Also the spread and error of those pixels (1-D, normalised), to pool over cases.
    """
    error, spread = normalised(truth, members.mean(axis=0), members.std(axis=0))
    spread[spread <= ZERO_SPREAD] = 0.0  # members that agree differ by rounding only: no ranking from that noise
    result = spread_stats(spread[:, mask].ravel(), error[:, mask].ravel())
    block_error, count = _block_means(error.mean(axis=0), mask)
    block_spread, _ = _block_means(spread.mean(axis=0), mask)
    keep = count >= MIN_BLOCK_PIXELS
    distance = np.broadcast_to(ndimage.distance_transform_edt(mask), error.shape)[:, mask].ravel()
    result.update(
        blocks=int(keep.sum()),
        spearman_blocks=_corr(block_spread[keep], block_error[keep]),
        spearman_distance=_corr(distance, error[:, mask].ravel()),  # a predictor without an ensemble
    )
    return result, spread[:, mask].ravel(), error[:, mask].ravel()


# --------------------------------------------------------------------------- fitting


def composite(case: Case, image: np.ndarray) -> np.ndarray:
    """What the user gets: the known pixels of the truth kept, the cloud from ``image``."""
    return np.where(case.mask[None], np.asarray(image, dtype=np.float64), case.truth)


def real_fill(case: Case, settings: object) -> tuple[dict, np.ndarray]:
    """One fill of the real cloud, scored against the truth; and its composite."""
    started = time.perf_counter()
    result = api.inpaint(case.target, case.mask, case.guides, settings, radar_guides=case.radar_guides)
    filled = composite(case, result.image)
    gdal = composite(case, classic.fill_nodata(case.target, case.mask))
    record = {
        "case": case.name,
        "seed": settings.seed,
        "real_ssim": metrics.masked_ssim(filled, case.truth, case.mask),
        "real_rmse": metrics.rmse(filled, case.truth, case.mask),
        "real_gdal_ssim": metrics.masked_ssim(gdal, case.truth, case.mask),
        "cloud_pixels": int(case.mask.sum()),
        "chosen_step": int(result.chosen_step),
        "fit_seconds": time.perf_counter() - started,
        "notes": list(result.notes),
    }
    return record, filled


def self_validation(case: Case, settings: object) -> dict:
    """Self-validation's estimate for ``settings`` (its fill: ``api.inpaint`` as the run's); or the error it raised."""
    started = time.perf_counter()
    steps = []

    def fill(masked: np.ndarray, cloud: np.ndarray) -> np.ndarray:
        run = api.inpaint(masked, cloud, case.guides, settings, radar_guides=case.radar_guides)
        steps.append(int(run.chosen_step))
        return run.image

    try:
        check = validate(case.target, case.mask, fill, seed=settings.seed)
    except InputError as error:  # reported, not hidden: the user would get this error
        return {"validation_error": str(error)}
    return {
        "estimate_ssim": check.mcpn_ssim,
        "estimate_rmse": check.mcpn_rmse,
        "estimate_gdal_ssim": check.gdal_ssim,
        "hidden_pixels": check.hidden_pixels,
        "validation_chosen_step": steps[0],
        "validation_seconds": time.perf_counter() - started,
        "validation_notes": check.notes,
    }


def ensemble_member(case: Case, settings: object, member: int) -> tuple[np.ndarray, int]:
    """Member ``member`` of the ensemble ``Settings(ensemble=K)`` fits, and its kept step: as
    ``core.pipeline.tiles.fit_tiles``, one sample (held-out pixels and anchor from ``settings.seed``) fitted with
    seed ``settings.seed + member``. Member 0 is ``api.inpaint``'s fill with ``settings``."""
    known = np.isfinite(case.target) & ~case.mask
    sample = Sample.prepare(case.target, known, case.guides, case.mask.shape, settings, case.radar_guides)
    member_settings = replace(settings, seed=settings.seed + member)
    (run,), _ = devices.fit_on_device([sample.problem()], member_settings, Callbacks())
    return composite(case, sample.scaling.invert(run.output)), int(run.chosen_step)


def run_case(case: Case, args: argparse.Namespace) -> tuple[list[dict], dict, tuple[np.ndarray, np.ndarray]]:
    """Every seed's record; the ensemble of ``--members`` fits from the first seed against the real error."""
    records, fills = [], []
    for seed in args.seeds:
        settings = Settings(steps=args.steps, seed=seed, device=args.device)
        record, filled = real_fill(case, settings)
        record.update(self_validation(case, settings))
        records.append(record)
        fills.append(filled)
        estimate = record.get("estimate_ssim")
        print(
            f"{case.name:10s} seed {seed}: SSIM real {record['real_ssim']:.3f}, step {record['chosen_step']}; "
            + (f"estimate {estimate:.3f}" if estimate is not None else record["validation_error"]),
            flush=True,
        )
    first = Settings(steps=args.steps, seed=args.seeds[0], device=args.device)
    members, steps = [fills[0]], [records[0]["chosen_step"]]
    for member in range(1, args.members):
        filled, step = ensemble_member(case, first, member)
        members.append(filled)
        steps.append(step)
    stack = np.stack(members)
    ensemble, spread, error = uncertainty_stats(case.truth, stack, case.mask)
    ensemble.update(
        case=case.name,
        seeds=[first.seed + m for m in range(args.members)],
        chosen_steps=steps,
        ssim_mean=metrics.masked_ssim(stack.mean(axis=0), case.truth, case.mask),
        ssim_members=[metrics.masked_ssim(m, case.truth, case.mask) for m in members],
    )
    print(f"{case.name:10s} ensemble of {args.members}: steps kept {steps}, Spearman {_f(ensemble['spearman'])}")
    return records, ensemble, (spread, error)


# --------------------------------------------------------------------------- reporting


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _fill_row(r: dict) -> str:
    real = f"| {r['case']} | {r['seed']} | {r['real_ssim']:.3f} | "
    if "estimate_ssim" not in r:
        return real + f"failed: {r['validation_error']} |" + " |" * 7 + f" {r['chosen_step']} / – |"
    return real + (
        f"{r['estimate_ssim']:.3f} | {r['estimate_ssim'] - r['real_ssim']:+.3f} | {r['real_rmse']:.4g} "
        f"| {r['estimate_rmse']:.4g} | {r['real_ssim'] - r['real_gdal_ssim']:+.3f} "
        f"| {r['estimate_ssim'] - r['estimate_gdal_ssim']:+.3f} | {r['cloud_pixels']} / {r['hidden_pixels']} "
        f"| {r['chosen_step']} / {r['validation_chosen_step']} |"
    )


def self_validation_report(records: list[dict], summary: dict) -> list[str]:
    lines = [
        "## Self-validation: estimated against real score",
        "",
        "Per fill (case, seed): masked SSIM and RMSE of the fill on the real cloud against the truth (*real*), and",
        "self-validation's score of the same settings and seed on clear pixels hidden under synthetic clouds",
        "(*estimate*); *bias* = estimate - real. *gain*: MCPN's SSIM minus GDAL Fill nodata's, real and estimated.",
        "*step kept*: the step the validated rule kept in the real fit and in self-validation's fit (0: the anchor).",
        "",
        "| case | seed | SSIM real | SSIM estimate | bias | RMSE real | RMSE estimate | gain real | gain estimate"
        " | cloud / hidden px | step kept (real / validation) |",
        "|" + "---|" * 11,
        *map(_fill_row, records),
        "",
        f"Over the {summary['scored']} fills self-validation scored ({summary['failed']} failed; bias = estimate -"
        " real, mean ± std; RMSE bias relative, as the cases' units differ):",
    ]
    if not summary["scored"]:
        return lines
    lines += [
        "",
        "| score | n | Pearson | Spearman | bias | mean abs. error | estimate below real |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in (("ssim", "MCPN SSIM"), ("gdal_ssim", "GDAL SSIM"), ("gain_over_gdal", "MCPN - GDAL SSIM")):
        s = summary[key]
        lines.append(
            f"| {label} | {s['n']} | {_f(s['pearson'])} | {_f(s['spearman'])} | {s['bias_mean']:+.3f} ± "
            f"{s['bias_std']:.3f} | {s['abs_error_mean']:.3f} | {_pct(s['share_below_real'])} |"
        )
    s = summary["rmse"]
    lines += [
        f"| MCPN RMSE | {s['n']} | {_f(s['pearson'])} | {_f(s['spearman'])} | {s['relative_bias_mean']:+.0%} ± "
        f"{s['relative_bias_std']:.0%} | – | {_pct(s['share_below_real'])} |",
        "",
        "Mean SSIM bias per case: "
        + ", ".join(f"{case} {bias:+.3f}" for case, bias in summary["ssim_bias_per_case"].items())
        + f"; largest SSIM error {summary['ssim']['abs_error_max']:.3f}. Between the seeds of one case (each case's"
        f" mean removed), Pearson of estimate and real SSIM {_f(summary['ssim']['pearson_within_case'])}.",
    ]
    return lines


def uncertainty_report(ensembles: list[dict]) -> list[str]:
    lines = [
        "## Uncertainty: spread against the real error",
        "",
        "Over the cloud pixels of every band (n), error = |ensemble mean - truth| and spread = the members'",
        "population std, both / the band's 1-99 % range. *Spearman*: rank correlation of spread and error, over all",
        "pixels and over those with a spread above zero; *blocks*: of their 8 x 8 px block means; *distance*: of the",
        "error with the distance to the nearest clear pixel (a predictor without an ensemble). *within 1 / 2*:",
        "share with |error| <= 1 / 2 spreads (68 % / 95 % for a calibrated Gaussian spread); *zero*: share whose",
        f"spread is below {ZERO_SPREAD:g} of the range (the members agree: each kept the instant estimate).",
        "",
        "| case | members (anchor kept) | n | Spearman | Spearman, spread > 0 | Spearman blocks | Spearman distance"
        " | within 1 | within 2 | zero | mean error | mean spread | SSIM of the mean | SSIM of one member |",
        "|" + "---|" * 14,
    ]
    for e in ensembles:
        steps = e.get("chosen_steps")
        members = f"{len(steps)} ({sum(s == 0 for s in steps)})" if steps else "–"
        one = _f(float(np.mean(e["ssim_members"])), 3) if "ssim_members" in e else "–"
        blocks = _f(e.get("spearman_blocks"))
        lines.append(
            f"| {e['case']} | {members} | {e['pixels']} "
            f"| {_f(e['spearman'])} | {_f(e['spearman_nonzero'])} | {blocks} | {_f(e.get('spearman_distance'))} "
            f"| {_pct(e['within_1'])} | {_pct(e['within_2'])} | {_pct(e['zero_spread'])} | {e['mean_error']:.3f} "
            f"| {e['mean_spread']:.3f} | {_f(e.get('ssim_mean'), 3)} | {one} |"
        )
    return lines


def report(records: list[dict], summary: dict, ensembles: list[dict], args: argparse.Namespace) -> str:
    defaults = Settings()
    lines = [
        f"{args.size} px crops, seeds {args.seeds}, {args.steps} steps; the engine's default settings otherwise "
        f"(method {defaults.method}, anchor {defaults.anchor}, stopping {defaults.stopping}, holdout "
        f"{defaults.holdout:g}, check every {defaults.check_every} steps, output average {defaults.output_average:g}),"
        f" device {args.device}.",
        "",
        *self_validation_report(records, summary),
        "",
        *uncertainty_report(ensembles),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(INPAINT_CASES), choices=INPAINT_CASES)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one fit and one self-validation each")
    parser.add_argument("--members", type=int, default=3, help="ensemble size K (seeds: the first seed and on)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=_harness.RESULTS)
    parser.add_argument("--data", type=Path, default=_harness.DATA_DIR)
    args = parser.parse_args(argv)
    run = _harness.Run(args)
    records, ensembles, pairs = [], [], []
    for case in build_cases(args.data, args.size, args.cases):
        case_records, ensemble, pair = run_case(case, args)
        records, ensembles, pairs = records + case_records, ensembles + [ensemble], pairs + [pair]
    pooled = {"case": "all cases", **spread_stats(*(np.concatenate(p) for p in zip(*pairs)))}
    summary = self_validation_stats(records)
    data = {"self_validation": summary, "fits": records, "uncertainty": ensembles, "uncertainty_pooled": pooled}
    run.write(args.out, "calibration", report(records, summary, ensembles + [pooled], args), data)


if __name__ == "__main__":
    main()
