"""Quality benchmark: MCPN's default result against what a QGIS user gets in a second, over seeds and budgets.

Run from the repository root with the project's venv::

    .venv/bin/python benchmarks/quality.py                                    # the table that decides
    .venv/bin/python benchmarks/quality.py --size 128 --seeds 0 --methods emergent direct stacked --paper
    .venv/bin/python benchmarks/quality.py --size 64 --steps 4 --seeds 0 --out benchmarks/out/smoke
    .venv/bin/python benchmarks/quality.py --size 128 --seeds 0 1 --grid learning_rate=1e-3,3e-3,1e-2 --name sweep
    .venv/bin/python benchmarks/quality.py --baselines-only --cases gap10 gap80 --out benchmarks/out/baselines

Every case (``cases.py``) is scored on what the user gets: known pixels kept,
the gap (or the whole image, for super-resolution) from the method, against
the clear ground truth, with :mod:`core.metrics` (masked SSIM on
percentile-scaled bands). The baselines run in the same process on the same
arrays; each MCPN fit records its output at every checked step, so the
quality reached after 1, 5 and 20 minutes of this CPU is read from one fit
(the validated rule choosing among the steps reached by then). ``--paper``
adds the paper's set-up (no anchor, fixed steps, bilinear degradation);
``--grid`` fits every combination of the settings' values it lists instead
of the default set-up (``auto``: None, e.g. an estimated sensor blur), and
adds a table of each combination's mean gain; ``--baselines-only`` fits nothing.
For inpainting it also says how deep the gaps are: how far their pixels lie from clear ground.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path

import _harness
import numpy as np
import pansharpening
from cases import ALL_CASES, Case, build_cases
from scipy import ndimage

api = _harness.module("core.pipeline.api")
classic = _harness.module("core.classic")
nspi = _harness.module("core.nspi").nspi
sharpening = _harness.module("core.sharpening")
metrics = _harness.module("core.metrics")
Degradation = _harness.module("core.model.degradation").Degradation
Settings = _harness.module("core.config").Settings

BUDGETS = (60, 300, 1200)  # seconds of fitting per tile: what 1, 5 and 20 minutes buy
DEFAULT_METHOD = {"inpaint": Settings().method, "sr": Settings().method}
PAPER = {"anchor": "none", "stopping": "fixed", "degradation": "bilinear", "sensor_blur": 0.0}


def score(case: Case, image: np.ndarray) -> float:
    """Masked SSIM of what the user gets (known pixels kept) against the truth."""
    composite = np.where(case.region[None], image, case.truth)
    return metrics.masked_ssim(composite, case.truth, case.region)


def errors(case: Case, image: np.ndarray) -> dict[str, float]:
    """RMSE (the target's units) and mean spectral angle (degrees; NaN for one band) of what the user gets."""
    composite = np.where(case.region[None], image, case.truth)
    return {
        "rmse": metrics.rmse(composite, case.truth, case.region),
        "sam": metrics.spectral_angle(composite, case.truth, case.region),
    }


def guides_in_db(case: Case) -> list[np.ndarray]:
    """The case's guides, radar guides in dB."""
    return [
        10 * np.log10(np.where(g > 0, g, np.nan)) if i in case.radar_guides else g for i, g in enumerate(case.guides)
    ]


def guide_information(case: Case) -> float:
    """Share of the scored pixels' variance that a linear fit of the guides explains, fitted on the truth itself.

    An upper bound for any guide regression (mean R² over bands): near 0, the
    guides say little about what is missing and no guided method can do much
    better than interpolation.
    """
    return explained_share(case, [band for guide in guides_in_db(case) for band in guide])


def explained_share(case: Case, features: list[np.ndarray]) -> float:
    """Mean R² over bands of the scored pixels' truth on ``features`` and a constant, fitted on the truth."""
    region = case.region
    design = np.stack([f[region] for f in features] + [np.ones(region.sum())], 1)
    usable = np.isfinite(design).all(1)
    shares = []
    for band in case.truth:
        y = band[region][usable]
        residual = y - design[usable] @ np.linalg.lstsq(design[usable], y, rcond=None)[0]
        shares.append(1 - residual.var() / y.var() if y.var() > 0 else 0.0)
    return float(np.mean(shares))


def gap_depth(case: Case) -> dict[str, float]:
    """How far the gap's pixels lie from clear ground (px): median and 90th percentile."""
    depth = ndimage.distance_transform_edt(case.mask)[case.mask]
    return {"median": float(np.median(depth)), "p90": float(np.percentile(depth, 90))}


def baselines(case: Case) -> dict[str, dict]:
    """Each baseline's score and seconds."""
    if case.kind == "inpaint":
        known = ~case.mask
        guides = guides_in_db(case)
        runs = {
            "GDAL Fill nodata": lambda: classic.fill_nodata(case.target, case.mask),
            "biharmonic": lambda: classic.biharmonic(case.target, case.mask),
            "guide regression (global)": lambda: classic.regression(case.target, known, guides),
            "guide regression (moving window)": lambda: classic.local_regression(case.target, known, guides),
            "NSPI": lambda: nspi(case.target, known, guides),
        }
    else:
        shape = case.truth.shape[1:]
        area = Degradation("area", shape, case.target.shape[1:])
        known = np.ones(case.target.shape, bool)
        factor = shape[0] / case.target.shape[1]
        runs = {
            "bicubic": lambda: sharpening.bicubic(case.target, shape),
            "consistent bicubic": lambda: sharpening.consistent_bicubic(case.target, known, area),
            "regression + residual": lambda: sharpening.regression_and_residual(case.target, known, case.guides, area),
            "GDAL pansharpening (Brovey)": lambda: pansharpening.gdal_brovey(case.target, case.guides),
            "guided filter": lambda: pansharpening.guided_filter(
                sharpening.bicubic(case.target, shape), case.guides, math.ceil(factor)
            ),
        }
        if case.sensor_blur:  # MTF-GLP: the guides' detail injected through the sensor's known blur
            psf = Degradation("area", shape, case.target.shape[1:], blur=case.sensor_blur)
            runs["MTF-GLP (known blur)"] = lambda: sharpening.regression_and_residual(
                case.target, known, case.guides, psf
            )
    results = {}
    for name, run in runs.items():
        started = time.perf_counter()
        image = run()
        seconds = time.perf_counter() - started
        results[name] = {"ssim": score(case, image), **errors(case, image), "seconds": seconds}
    return results


def fit(case: Case, settings: object) -> dict:
    """One MCPN fit: its kept output's score, and the score the validated rule keeps within each budget."""
    started = time.perf_counter()
    if case.kind == "inpaint":
        result = api.inpaint(case.target, case.mask, case.guides, settings, radar_guides=case.radar_guides)
    else:
        result = api.super_resolve(case.target, case.guides, settings, radar_guides=case.radar_guides)
    seconds = time.perf_counter() - started
    per_step = result.seconds / max(result.trace[-1].step, 1)  # the steps run: validated stopping may end early
    curve = {step: score(case, image) for step, image in result.snapshots.items()}
    record = {
        "ssim": score(case, result.image),
        **errors(case, result.image),
        "chosen_step": result.chosen_step,
        "seconds": seconds,
        "seconds_per_step": per_step,
        "curve": {str(step): value for step, value in sorted(curve.items())},
        "notes": result.notes,
    }
    if 0 in curve:
        record["anchor_ssim"] = curve[0]  # the instant estimate the fit starts from
    record["step_choice"] = step_choice(result.trace, curve, result.chosen_step)
    # Cut by --steps, not stopped by its rule; a fit with the default step count ended as a user's would,
    # so a larger budget buys the same result.
    ran_out = result.trace[-1].step >= settings.steps and settings.steps < Settings().steps
    record["budgets"] = {
        str(b): None if ran_out and b / per_step > settings.steps else _within(result.trace, curve, b / per_step)
        for b in BUDGETS
    }
    record["at_100_steps"] = _within(result.trace, curve, 100)
    return record


def step_choice(trace: list, curve: dict[int, float], chosen: int) -> dict | None:
    """The step kept against the alternative the held-out choice rejected, both scored in the real gap: the anchor
    when a network step was kept; the network step with the best held-out score when the anchor was kept."""
    steps = [p for p in trace if p.step > 0 and p.step in curve and p.holdout_ssim is not None]
    if 0 not in curve or chosen not in curve or not steps:
        return None
    rejected = 0 if chosen > 0 else max(steps, key=lambda p: p.holdout_ssim).step
    return {"kept": curve[chosen], "rejected": curve[rejected], "rejected_step": rejected}


def _within(trace: list, curve: dict[int, float], steps: float) -> float | None:
    """The score of the step the validated rule keeps among the checked steps reached within ``steps``."""
    reached = [p for p in trace if p.step <= steps and p.holdout_ssim is not None and p.step in curve]
    if not reached:
        return None
    best = max(reached, key=lambda p: p.holdout_ssim)
    return curve[best.step]


def _audit(fits: list[dict], best: float) -> str:
    """How often, in the real gap, the held-out choices lost: the estimate against the best instant baseline (by
    more than 0.005), the kept step against the alternative it rejected, the result against its own anchor (by
    more than 0.005)."""
    anchored = [r for r in fits if "anchor_ssim" in r]
    estimate = sum(r["anchor_ssim"] < best - 0.005 for r in anchored)
    choices = [r["step_choice"] for r in fits if r.get("step_choice")]
    step = sum(c["kept"] < c["rejected"] for c in choices)
    below = sum(r["ssim"] < r["anchor_ssim"] - 0.005 for r in anchored)
    return f"{estimate}/{len(anchored)} | {step}/{len(choices)} | {below}/{len(anchored)}"


def error_report(records: list[dict]) -> list[str]:
    """RMSE and spectral angle of the best baseline (by SSIM) and of each fitted set-up (mean over seeds)."""

    def sam(value: float) -> str:
        return "–" if np.isnan(value) else f"{value:.2f}"

    lines = [
        "RMSE (the target's units) and mean spectral angle (SAM, degrees; – for one band) over the scored pixels "
        "(lower is better), MCPN with the default method and set-up, mean over seeds:",
        "",
        "| case | best baseline RMSE | SAM | MCPN RMSE | SAM |",
        "|---|---|---|---|---|",
    ]
    for case in dict.fromkeys(r["case"] for r in records):
        base = next(r["baselines"] for r in records if r["case"] == case and r["method"] == "baselines")
        best = base[max(base, key=lambda n: base[n]["ssim"])]
        fits = [r for r in records if r["case"] == case and r.get("setup") == "default"
                and str(r["method"]) == str(DEFAULT_METHOD[r["kind"]])]  # fmt: skip
        if "rmse" not in best or not fits:
            continue
        rmse, angle = np.mean([r["rmse"] for r in fits]), np.mean([r["sam"] for r in fits])
        lines.append(f"| {case} | {best['rmse']:.4g} | {sam(best['sam'])} | {rmse:.4g} | {sam(angle)} |")
    return lines


def grid_setups(grid: list[str]) -> list[tuple[str, dict]]:
    """``["learning_rate=1e-3,3e-3", "output_average=0,0.99"]``: each combination, named by its values."""
    names, choices = [], []
    for item in grid:
        name, _, values = item.partition("=")
        field = Settings.__dataclass_fields__.get(name)
        if field is None or not values:
            raise SystemExit(f"--grid {item}: expected SETTING=VALUE,VALUE with a setting of core.config.Settings")
        floats = ("learning_rate", "output_average", "holdout", "sensor_blur")
        convert = float if name in floats else type(getattr(Settings(), name))
        names.append(name)
        choices.append([None if v == "auto" else convert(v) for v in values.split(",")])
    return [
        (
            ", ".join(f"{n}={'auto' if v is None else format(v, 'g')}" for n, v in zip(names, combo)),
            dict(zip(names, combo)),
        )
        for combo in itertools.product(*choices)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(ALL_CASES), choices=ALL_CASES)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=Settings().steps)
    parser.add_argument("--check-every", type=int, default=25)
    parser.add_argument("--methods", nargs="+", default=None, help="default: each algorithm's default method")
    parser.add_argument("--paper", action="store_true", help="also fit the paper's set-up (no anchor, fixed steps)")
    parser.add_argument("--grid", nargs="+", default=[], metavar="SETTING=V1,V2", help="fit each combination")
    parser.add_argument("--baselines-only", action="store_true", help="score the baselines, fit nothing")
    parser.add_argument("--out", type=Path, default=_harness.RESULTS / "quality")
    parser.add_argument("--name", default="quality", help="name of the result files (quality.md, .json, _time.png)")
    parser.add_argument("--data", type=Path, default=_harness.DATA_DIR)
    args = parser.parse_args()
    run = _harness.Run(args)
    records = []
    for case in build_cases(args.data, args.size, args.cases):
        records.append(
            {
                "case": case.name,
                "kind": case.kind,
                "method": "baselines",
                "baselines": baselines(case),
                "guide_information": guide_information(case),
                **({"gap_depth": gap_depth(case), "cover": float(case.mask.mean())} if case.kind == "inpaint" else {}),
            }
        )
        print(case.name, {k: round(v["ssim"], 4) for k, v in records[-1]["baselines"].items()}, flush=True)
        methods = [] if args.baselines_only else args.methods or [DEFAULT_METHOD[case.kind]]
        setups = grid_setups(args.grid) if args.grid else [("default", {})]
        setups += [("paper", PAPER)] if args.paper else []
        for method in methods:
            for setup, changes in setups:
                for seed in args.seeds:
                    values = {"method": method, "steps": args.steps, "seed": seed, "check_every": args.check_every}
                    settings = Settings(**values, record_every=args.check_every, device="cpu", **changes)
                    record = {"case": case.name, "kind": case.kind, "method": method, "setup": setup, "seed": seed}
                    record.update(fit(case, settings))
                    records.append(record)
                    print(case.name, method, setup, seed, round(record["ssim"], 4), record["chosen_step"], flush=True)
    run.write(args.out, args.name, report(records, args), records)
    _harness.plot_quality_time(records, args.out / f"{args.name}_time.png", BUDGETS)


def report(records: list[dict], args: argparse.Namespace) -> str:
    """The Markdown tables: defaults against the baselines, and what each budget buys."""
    lines = [
        f"MCPN against the instant baselines: {args.size} px, seeds {args.seeds}, up to {args.steps} steps, "
        "masked SSIM of the composite a user gets (higher is better; mean ± std over seeds).",
        "",
        "| case | best baseline | anchor | MCPN | MCPN − best | anchor kept | s/step | estimate below best | "
        "step below rejected | below own anchor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cases = list(dict.fromkeys(r["case"] for r in records))
    for case in cases:
        base = next(r["baselines"] for r in records if r["case"] == case and r["method"] == "baselines")
        best_name = max(base, key=lambda n: base[n]["ssim"])
        best = base[best_name]["ssim"]
        for method, setup in dict.fromkeys(
            (r["method"], r["setup"]) for r in records if r["case"] == case and "setup" in r
        ):
            fits = [r for r in records if r["case"] == case and r.get("method") == method and r.get("setup") == setup]
            ssim = np.array([r["ssim"] for r in fits])
            kept = sum(r["chosen_step"] == 0 for r in fits)
            per_step = np.mean([r["seconds_per_step"] for r in fits])
            label = f"{method}" + ("" if setup == "default" else f" ({setup})")
            anchors = [r["anchor_ssim"] for r in fits if "anchor_ssim" in r]
            anchor = f"{np.mean(anchors):.3f}" if anchors else "–"
            lines.append(
                f"| {case} | {best_name} {best:.3f} | {anchor} | {label} {ssim.mean():.3f} ± {ssim.std():.3f} | "
                f"{ssim.mean() - best:+.3f} | {kept}/{len(fits)} | {per_step:.2f} | {_audit(fits, best)} |"
            )
    lines += ["", *error_report(records)]
    lines += [
        "",
        "Every baseline (masked SSIM, seconds), and the share of the scored pixels' variance the guides can explain "
        "linearly (R², fitted on the truth: an upper bound for any guide regression):",
        "",
    ]
    for case in cases:
        record = next(r for r in records if r["case"] == case and r["method"] == "baselines")
        scores = "; ".join(f"{n} {v['ssim']:.3f} ({v['seconds']:.1f} s)" for n, v in record["baselines"].items())
        depth = record.get("gap_depth")
        where = (
            f"; {record['cover']:.0%} cover, gap pixels {depth['median']:.0f} px from clear ground "
            f"(median; 90th percentile {depth['p90']:.0f} px)"
            if depth
            else ""
        )
        lines.append(f"- {case}: {scores}; guides explain {record['guide_information']:.0%}{where}")
    if args.grid:
        lines += ["", *grid_report(records)]
    lines += [
        "",
        "What a budget buys (default set-up; the validated step among those reached, mean over seeds; "
        "– where the run was cut by --steps, below the default step count, before the budget):",
        "",
    ]
    lines += [
        "| case | method | " + " | ".join(f"{b // 60} min" for b in BUDGETS) + " |",
        "|---|---|" + "---|" * len(BUDGETS),
    ]
    for case in cases:
        for method in dict.fromkeys(r["method"] for r in records if r["case"] == case and r.get("setup") == "default"):
            fits = [
                r for r in records if r["case"] == case and r.get("method") == method and r.get("setup") == "default"
            ]
            cells = []
            for budget in BUDGETS:
                values = [r["budgets"][str(budget)] for r in fits if r["budgets"][str(budget)] is not None]
                cells.append(f"{np.mean(values):.3f}" if values else "–")
            lines.append(f"| {case} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def grid_report(records: list[dict]) -> list[str]:
    """Each combination's gain over the best baseline, averaged over cases and seeds, at the final step and at 100,
    and its seconds per step."""
    gains: dict[tuple[str, str], dict[str, list[float]]] = {}
    for case in dict.fromkeys(r["case"] for r in records):
        base = next(r["baselines"] for r in records if r["case"] == case and r["method"] == "baselines")
        best = max(v["ssim"] for v in base.values())
        for r in (r for r in records if r["case"] == case and "setup" in r):
            entry = gains.setdefault((r["method"], r["setup"]), {"final": [], "100": [], "seconds": []})
            entry["seconds"].append(r["seconds_per_step"])
            entry["final"].append(r["ssim"] - best)
            entry["100"].append((r["at_100_steps"] if r["at_100_steps"] is not None else r["ssim"]) - best)
    lines = [
        "| method | setting | gain at 100 steps | gain at the end | worst case and seed | s/step |",
        "|---|---|---|---|---|---|",
    ]
    for (method, setup), entry in gains.items():
        lines.append(
            f"| {method} | {setup} | {np.mean(entry['100']):+.3f} | {np.mean(entry['final']):+.3f} | "
            f"{min(entry['final']):+.3f} | {np.mean(entry['seconds']):.3f} |"
        )
    return ["Each setting's gain over the best baseline (masked SSIM, mean over cases and seeds):", "", *lines]


if __name__ == "__main__":
    main()
