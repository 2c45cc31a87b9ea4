"""Time to result on the inpainting cases: how soon the masked SSIM of the fixed-step run is reached.

For each inpainting case and method, one *reference* fit runs ``--steps`` steps at
the constant default learning rate (the fixed-step result of issue #7), recording
a snapshot, the known-region RMSE and the patch consistency every
``--record-every`` steps (``stopping="patch_consistency"`` with the patience off,
so that every stopping rule can be replayed on one trace). From it we report:

- the masked SSIM of the last step (the target to reach) and the first recorded
  step reaching it (an oracle: it needs the ground truth);
- for ``known_rmse`` and ``patch_consistency`` with each ``--patience``: the step
  the rule keeps, its SSIM, and the step at which the rule stops the fit.

*Short* fits (``--short``: learning-rate schedule and multiplier of the default
rate; the reference's own curve gives the constant rate) run a third of the steps
(rounded down to a multiple of ``--record-every``); their last-step SSIM says
whether a schedule reaches the target in a third of the time. Runs go to
``--jobs`` worker processes, one thread each by default.

Wall-time fractions are modelled from measured times, relative to the reference's
``steps`` x (median training-step time): a rule's time to its stop is its steps
x that step time plus its checks x the measured cost of one check (patch
consistency runs a feature network; known-region RMSE costs nothing measurable).
Short fits use the reference's step time (same network and grid), so the
fractions do not move with the machine's load; their measured ms/step is listed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/time_to_result.py --jobs 2 \\
        --steps stacked=4000 direct=2000 emergent=2000
    .venv/bin/python benchmarks/time_to_result.py --size 64 --steps 40 --record-every 10 \\
        --methods stacked --out benchmarks/out/ttr  # smoke test
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import _mcpn
import numpy as np
import torch
from cases import Case, add_inpainting_arguments, build_cases
from quality import ENGINE_METHODS, LABELS, composite, scores

RULES = ("known_rmse", "patch_consistency")
# Relative cost of one step of each method, to start the longest runs first.
STEP_COST = {"emergent": 5.0, "direct": 4.5, "stacked": 1.0}


def parse_steps(values: list[str], methods: list[str]) -> dict[str, int]:
    """``["4000"]`` (every method) or ``["stacked=4000", "emergent=2000"]``."""
    steps: dict[str, int] = {}
    for value in values:
        name, _, count = value.rpartition("=")
        for method in [name] if name else methods:
            steps[method] = int(count)
    missing = set(methods) - set(steps)
    if missing:
        raise SystemExit(f"--steps gives no step count for {', '.join(sorted(missing))}")
    return steps


def parse_short(value: str) -> tuple[str, float]:
    """``cosine`` or ``cosine:2`` (schedule, multiplier of the default learning rate)."""
    schedule, _, factor = value.partition(":")
    return schedule, float(factor or 1)


def short_steps(steps: int, every: int) -> int:
    """A third of ``steps``, rounded down to a multiple of ``every`` (at least ``every``)."""
    return max(every, steps // 3 // every * every)


def run_fit(
    case: Case, method: str, steps: int, every: int, schedule: str, lr_factor: float, threads: int
) -> dict[str, Any]:
    """One fit with snapshots; returns the masked-SSIM curve, the trace and the step timings."""
    torch.set_num_threads(threads)
    api = _mcpn.module("core.api")
    fitting = _mcpn.module("core.fitting")
    stamps: list[float] = []
    started = time.perf_counter()
    result = api.inpaint(
        case.target,
        case.mask,
        case.guides,
        method=method,
        steps=steps,
        device="cpu",
        stopping="patch_consistency",
        patience=steps + 1,
        sar_guides=case.sar_guides,
        record_every=every,
        check_every=every,
        lr_schedule=schedule,
        learning_rate=fitting.DEFAULT_LEARNING_RATES[method] * lr_factor,
        progress=lambda step, total: stamps.append(time.perf_counter()),
    )
    wall = time.perf_counter() - started
    gaps = np.diff(np.array([started, *stamps]))  # gaps[i] = time of step i + 1, its check included
    checked = np.zeros(len(gaps), bool)
    checked[every - 1 :: every] = True
    step_s = float(np.median(gaps[~checked][1:]))  # the first step also builds the scorer
    check_s = max(0.0, float(np.mean(gaps[checked]) - step_s))
    curve = {s: scores(case, composite(case, snap))["ssim_mask"] for s, snap in sorted(result.snapshots.items())}
    return {
        "case": case.name,
        "method": method,
        "steps": steps,
        "lr_schedule": schedule,
        "learning_rate": fitting.DEFAULT_LEARNING_RATES[method] * lr_factor,
        "ms_per_step": 1000 * step_s,
        "ms_per_patch_check": 1000 * check_s,
        "wall_seconds": wall,
        "threads": torch.get_num_threads(),
        "notes": result.notes,
        "curve": [{"step": s, "ssim_mask": v} for s, v in curve.items()],
        "trace": [
            {"step": p.step, "known_rmse": p.known_rmse, "patch_consistency": p.patch_consistency} for p in result.trace
        ],
    }


def replay(record: dict[str, Any], rule_name: str, patience: int) -> dict[str, Any]:
    """The step a stopping rule keeps and the step at which it stops, from the recorded trace."""
    stopping = _mcpn.module("core.stopping")
    rule = stopping.StoppingRule(rule_name, patience)
    stop = record["steps"]
    for point in record["trace"]:
        if not rule.update(point["step"], point[rule_name]) and rule.should_stop(point["step"]):
            stop = point["step"]
            break
    ssim = {p["step"]: p["ssim_mask"] for p in record["curve"]}
    checks = stop // (record["trace"][1]["step"] - record["trace"][0]["step"]) if len(record["trace"]) > 1 else 1
    return {
        "rule": rule_name,
        "patience": patience,
        "chosen": rule.best_step,
        "stop": stop,
        "checks": checks,
        "ssim_mask": ssim.get(rule.best_step),
    }


def summarise(reference: dict[str, Any], shorts: list[dict[str, Any]], patiences: list[int]) -> dict[str, Any]:
    """Target SSIM, oracle first step reaching it, stopping rules and short fits, with time fractions."""
    step_s = reference["ms_per_step"] / 1000
    full = reference["steps"] * step_s
    check_cost = {"known_rmse": 0.0, "patch_consistency": reference["ms_per_patch_check"] / 1000}
    curve = reference["curve"]
    target = curve[-1]["ssim_mask"]
    first = next(p["step"] for p in curve if p["ssim_mask"] >= target)
    peak = max(curve, key=lambda p: p["ssim_mask"])
    rules = []
    for rule in RULES:
        for patience in patiences:
            r = replay(reference, rule, patience)
            r["time_fraction"] = (r["stop"] * step_s + r["checks"] * check_cost[rule]) / full
            rules.append(r)
    short_rows = []
    for short in shorts:
        end = short["curve"][-1]["ssim_mask"]
        short_rows.append(
            {
                "lr_schedule": short["lr_schedule"],
                "learning_rate": short["learning_rate"],
                "steps": short["steps"],
                "ssim_mask": end,
                "peak_ssim_mask": max(p["ssim_mask"] for p in short["curve"]),
                "reaches_target": end >= target,
                "time_fraction": short["steps"] * step_s / full,
                "ms_per_step": short["ms_per_step"],
            }
        )
    return {
        "case": reference["case"],
        "method": reference["method"],
        "steps": reference["steps"],
        "ms_per_step": reference["ms_per_step"],
        "ms_per_patch_check": reference["ms_per_patch_check"],
        "target_ssim_mask": target,
        "first_step_at_target": first,
        "first_time_fraction": first / reference["steps"],
        "peak": peak,
        "rules": rules,
        "short": short_rows,
    }


def markdown(summaries: list[dict[str, Any]], header: dict[str, Any]) -> str:
    lines = ["# Time to result (inpainting)", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += [
        "",
        "Masked SSIM (core/metrics.py) of the composite against the clear ground truth. *Target*: the SSIM of",
        "the reference fit's last step (constant default learning rate). *Oracle*: the first recorded step",
        "at or above the target (needs the ground truth, so no user can stop there). Rules: the step a",
        "stopping rule keeps and where it stops (patience in steps). Fractions are of the reference's wall",
        "time, modelled as steps x its median step time + checks x their measured cost (see the script).",
        "",
        "## Reference fits, oracle and stopping rules",
        "",
        "| case | method | steps | ms/step | target SSIM | peak SSIM (step) | oracle step (time) "
        "| rule, patience | kept step | SSIM kept | stops at (time) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        for i, r in enumerate(s["rules"]):
            lead = (
                f"| {s['case']} | {LABELS[s['method']]} | {s['steps']} | {s['ms_per_step']:.0f} "
                f"| {s['target_ssim_mask']:.3f} | {s['peak']['ssim_mask']:.3f} ({s['peak']['step']}) "
                f"| {s['first_step_at_target']} ({s['first_time_fraction']:.2f}) "
                if i == 0
                else "| | | | | | | "
            )
            ssim = "-" if r["ssim_mask"] is None else f"{r['ssim_mask']:.3f}"
            lines.append(
                lead
                + f"| {r['rule']}, {r['patience']} | {r['chosen']} | {ssim} | {r['stop']} ({r['time_fraction']:.2f}) |"
            )
    lines += [
        "",
        "## Short fits (a third of the steps)",
        "",
        "| case | method | schedule | learning rate | steps (time) | SSIM at end | target | reached | ms/step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        for r in s["short"]:
            lines.append(
                f"| {s['case']} | {LABELS[s['method']]} | {r['lr_schedule']} | {r['learning_rate']:g} "
                f"| {r['steps']} ({r['time_fraction']:.2f}) | {r['ssim_mask']:.3f} | {s['target_ssim_mask']:.3f} "
                f"| {'yes' if r['reaches_target'] else 'no'} | {r['ms_per_step']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_inpainting_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=list(ENGINE_METHODS), choices=ENGINE_METHODS)
    parser.add_argument("--steps", nargs="+", default=["4000"], help="N, or METHOD=N per method")
    parser.add_argument("--record-every", type=int, default=100)
    parser.add_argument("--patience", nargs="+", type=int, default=[500, 1000])
    parser.add_argument("--short", nargs="*", default=["cosine", "cosine:2"], help="SCHEDULE[:LR_FACTOR]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = parse_steps(args.steps, args.methods)
    every = args.record_every
    if any(n % every for n in steps.values()):
        raise SystemExit("every --steps count must be a multiple of --record-every")
    cases = build_cases(args.data, args.size, args.cases)
    jobs = []  # (case, method, steps, schedule, learning-rate factor)
    for case in cases:
        for method in args.methods:
            jobs.append((case, method, steps[method], "constant", 1.0))
            count = short_steps(steps[method], every)
            jobs += [(case, method, count, *parse_short(short)) for short in args.short]
    jobs.sort(key=lambda job: -STEP_COST[job[1]] * job[2])
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        futures = [pool.submit(run_fit, *job[:3], every, *job[3:], args.threads) for job in jobs]
        records = []
        for future in futures:
            record = future.result()
            records.append(record)
            print(
                f"{record['case']:9s} {record['method']:8s} {record['steps']:5d} steps {record['lr_schedule']:8s} "
                f"lr {record['learning_rate']:g}: end SSIM {record['curve'][-1]['ssim_mask']:.3f}, "
                f"{record['ms_per_step']:.0f} ms/step, {record['wall_seconds']:.0f} s",
                flush=True,
            )
    summaries = []
    for case in cases:
        for method in args.methods:
            mine = [r for r in records if (r["case"], r["method"]) == (case.name, method)]
            reference = next(r for r in mine if r["steps"] == steps[method] and r["lr_schedule"] == "constant")
            shorts = [r for r in mine if r is not reference]
            summaries.append(summarise(reference, shorts, args.patience))
    header = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/time_to_result.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "crop size": args.size,
        "snapshot and check interval": every,
        "machine": f"{platform.machine()}, torch {torch.__version__}, {args.jobs} worker(s) x {args.threads} thread",
        "total wall time (s)": round(time.perf_counter() - started),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "time_to_result.md").write_text(markdown(summaries, header), encoding="utf-8")
    payload = {"settings": header, "summaries": summaries, "records": records}
    (args.out / "time_to_result.json").write_text(json.dumps(payload, indent=1))
    print(markdown(summaries, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
