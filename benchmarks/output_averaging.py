"""Does averaging the output over the steps (Deep Image Prior's smoothing) give a better fill, sooner?

``Settings.output_average`` keeps an exponential moving average of the network's
output instead of the last step's output. It does not change what the network
learns: a fit with averaging and one without, from the same seed, take exactly
the same steps, so their difference is *paired* (the same trajectory, read two
ways) and is not seed noise. Every case x method x seed is fitted both ways,
recording the masked SSIM of the composite every ``--record-every`` steps.

Reported per case x method (means over seeds):

- the masked SSIM of the last step, plain and averaged, and their paired difference;
- the SSIM of the step that known-region-RMSE stopping keeps, plain and averaged;
- *time to result*: the first recorded step at which the averaged fit reaches the
  plain fit's last-step SSIM, as a fraction of the steps (issue #7 asks for 1/3);
- *wander*: the mean absolute change of the SSIM between recorded steps over the
  second half of the fit (how much the result depends on the step one stops at).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/output_averaging.py --jobs 2 \\
        --steps stacked=4000 emergent=2000 direct=2000 --seeds stacked=0,1,2 emergent=0 direct=0
    .venv/bin/python benchmarks/output_averaging.py --size 64 --steps 40 --record-every 10 --seeds 0 \\
        --methods stacked --cases s2_guide --out benchmarks/out/averaging  # smoke test

Writes ``output_averaging.md`` and ``output_averaging.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import _mcpn
from cases import add_inpainting_arguments
from quality import ENGINE_METHODS, LABELS, case_method_groups, fit_in_worker
from time_to_result import STEP_COST, parse_steps

DECAY = 0.99  # Deep Image Prior's averaging weight: a window of about 100 steps


def parse_seeds(values: list[str], methods: list[str]) -> dict[str, list[int]]:
    """``["0", "1"]`` (every method) or ``["stacked=0,1,2", "emergent=0"]``."""
    plain = [int(v) for v in values if "=" not in v]
    seeds = {method: list(plain) for method in methods}
    for value in values:
        if "=" in value:
            method, _, listed = value.partition("=")
            seeds[method] = [int(s) for s in listed.split(",")]
    missing = [m for m in methods if not seeds.get(m)]
    if missing:
        raise SystemExit(f"--seeds gives no seed for {', '.join(missing)}")
    return seeds


def run_one(data: Path, size: int, case_name: str, method: str, seed: int, steps: int, every: int, decay: float):
    """One fit; its masked-SSIM curve, the SSIM known-region-RMSE stopping keeps, and its seconds per step."""
    record, key = fit_in_worker(data, size, case_name, method, seed, steps, every, output_average=decay)
    return {
        "case": case_name,
        "method": method,
        "seed": seed,
        "steps": steps,
        "output_average": decay,
        "curve": [(p["step"], p[key]) for p in record["curve"]],
        "known_rmse": record["stopping"]["known_rmse"][key],
        "ms_per_step": 1000 * record["seconds"] / steps,
    }


def compare(plain: dict, averaged: dict) -> dict[str, Any]:
    """The paired comparison of one seed's plain and averaged fits."""
    target = plain["curve"][-1][1]
    reached = next((step for step, ssim in averaged["curve"] if ssim >= target), None)

    def wander(curve: list) -> float:
        half = [ssim for step, ssim in curve if step > curve[-1][0] / 2]
        return statistics.mean(abs(b - a) for a, b in zip(half, half[1:])) if len(half) > 1 else 0.0

    return {
        "last": (target, averaged["curve"][-1][1]),
        "known_rmse": (plain["known_rmse"], averaged["known_rmse"]),
        "reached": None if reached is None else reached / plain["steps"],
        "wander": (wander(plain["curve"]), wander(averaged["curve"])),
    }


def _mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f}"


def _difference(pairs: list[tuple[float, float]]) -> str:
    """Mean paired difference (averaged - plain), with its standard error when there are several seeds."""
    diffs = [b - a for a, b in pairs]
    if len(diffs) == 1:
        return f"{diffs[0]:+.3f}"
    return f"{statistics.mean(diffs):+.3f} +- {statistics.stdev(diffs) / len(diffs) ** 0.5:.3f}"


def markdown(runs: list[dict], header: dict[str, Any]) -> str:
    lines = [
        "# Averaging the output over the steps (inpainting)",
        "",
        *(f"- {key}: {value}" for key, value in header.items()),
        "",
        f"Masked SSIM of the composite against the clear ground truth. *Plain*: the last step's output; "
        f"*averaged*: the moving average of the output (decay {DECAY}). Both come from the same steps (same seed), so "
        "differences are paired: mean over seeds, +- its standard error with several seeds. *Reached*: the first "
        "recorded step where the averaged fit reaches the plain fit's last-step SSIM, as a share of the steps "
        "(per seed). *Wander*: mean absolute SSIM change between recorded steps over the second half of the fit.",
        "",
        "| case | method | steps | seeds | last: plain | last: averaged | difference | known-RMSE stop: plain "
        "| averaged | difference | reached at | wander: plain | averaged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, method in case_method_groups(runs):
        mine = [r for r in runs if (r["case"], r["method"]) == (case, method)]
        seeds = sorted({r["seed"] for r in mine})
        fits = {(r["seed"], r["output_average"]): r for r in mine}
        pairs = [compare(fits[seed, 0.0], fits[seed, DECAY]) for seed in seeds]
        last, stop, wander = ([p[key] for p in pairs] for key in ("last", "known_rmse", "wander"))
        reached = ", ".join("never" if p["reached"] is None else f"{p['reached']:.2f}" for p in pairs)
        lines.append(
            f"| {case} | {LABELS[method]} | {mine[0]['steps']} | {len(seeds)} "
            f"| {_mean([a for a, _ in last])} | {_mean([b for _, b in last])} | {_difference(last)} "
            f"| {_mean([a for a, _ in stop])} | {_mean([b for _, b in stop])} | {_difference(stop)} "
            f"| {reached} | {_mean([a for a, _ in wander])} | {_mean([b for _, b in wander])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_inpainting_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=list(ENGINE_METHODS), choices=ENGINE_METHODS)
    parser.add_argument("--steps", nargs="+", default=["2000"], help="N, or METHOD=N per method")
    parser.add_argument("--seeds", nargs="+", default=["0"], help="seeds, or METHOD=S1,S2,... per method")
    parser.add_argument("--record-every", type=int, default=100)
    args = parser.parse_args()
    steps = parse_steps(args.steps, args.methods)
    seeds = parse_seeds(args.seeds, args.methods)
    started = _mcpn.start()
    jobs = [
        (args.data, args.size, case, method, seed, steps[method], args.record_every, decay)
        for method in args.methods
        for case in args.cases
        for seed in seeds[method]
        for decay in (0.0, DECAY)
    ]
    jobs.sort(key=lambda job: -STEP_COST[job[3]] * job[5])  # the longest fits first
    runs = _mcpn.run_in_workers(
        run_one,
        jobs,
        args.jobs,
        lambda run: f"{run['case']} {run['method']} seed {run['seed']} average {run['output_average']}: "
        f"last {run['curve'][-1][1]:.3f}, {run['ms_per_step']:.0f} ms/step",
    )
    header = _mcpn.run_header(
        started, f"{args.jobs} worker(s) x 1 thread", **{"crop size": args.size, "record every": args.record_every}
    )
    _mcpn.write_results(args.out, "output_averaging", markdown(runs, header), {"header": header, "runs": runs})


if __name__ == "__main__":
    main()
