"""Does bf16 autocast keep the quality of FP32? Masked SSIM over seeds, on the inpainting cases.

A bf16 fit and an FP32 fit from the same seed part ways after a few steps (Adam's
first updates are sign-like, so rounding flips some of them), so comparing one
seed of each measures chance as much as precision. This script fits every case x
method x precision with ``--seeds`` seeds and compares the *mean* masked SSIM of
the last step (and of the best recorded step) between precisions, with the
standard error of the difference and the seed-to-seed spread beside it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/precision.py --jobs 2
    .venv/bin/python benchmarks/precision.py --size 64 --steps 20 --seeds 0 1 --methods stacked \\
        --cases s2_guide --out benchmarks/out/precision  # smoke test

Writes ``precision.md`` and ``precision.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Any

import _mcpn
from cases import add_inpainting_arguments
from quality import ENGINE_METHODS, LABELS, case_method_groups, fit_in_worker

TOLERANCE = 0.005  # issue #7: bf16 must keep the masked SSIM within this of FP32


def run_one(data: Path, size: int, case_name: str, method: str, precision: str, seed: int, steps: int) -> dict:
    """One fit; the masked SSIM of its last and best recorded steps, and its seconds per step."""
    record, key = fit_in_worker(data, size, case_name, method, seed, steps, max(1, steps // 5), precision=precision)
    return {
        "case": case_name,
        "method": method,
        "precision": precision,
        "seed": seed,
        "last": record["stopping"]["fixed"][key],
        "peak": record["peak"][key],
        "ms_per_step": 1000 * record["seconds"] / steps,
    }


def _summary(values: list[float]) -> tuple[float, float, int]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


def _select(runs: list[dict], case: str, method: str, precision: str, metric: str) -> list[float]:
    return [r[metric] for r in runs if (r["case"], r["method"], r["precision"]) == (case, method, precision)]


def markdown(runs: list[dict], header: dict[str, Any]) -> str:
    """One row per case x method: mean +- std per precision, difference of means +- its standard error."""
    lines = [
        "# bf16 autocast against FP32: masked SSIM over seeds (inpainting)",
        "",
        *(f"- {key}: {value}" for key, value in header.items()),
        "",
        "Mean +- standard deviation over seeds of the masked SSIM against the clear ground truth, at the last step "
        "and at the best recorded step (an oracle). Difference: bf16 mean - FP32 mean, +- its standard error "
        f"(sqrt(s1^2/n1 + s2^2/n2)). The tolerance is {TOLERANCE}. ms/step: single-thread workers running side by "
        "side (relative, not absolute, speed).",
        "",
        "| case | method | SSIM FP32 (last) | SSIM bf16 (last) | difference (last) | SSIM FP32 (best) "
        "| SSIM bf16 (best) | difference (best) | ms/step FP32 | ms/step bf16 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, method in case_method_groups(runs):
        cells = []
        for metric in ("last", "peak"):
            m32, s32, n32 = _summary(_select(runs, case, method, "fp32", metric))
            m16, s16, n16 = _summary(_select(runs, case, method, "bf16", metric))
            error = math.sqrt(s32**2 / n32 + s16**2 / n16)
            cells += [f"{m32:.3f} +- {s32:.3f}", f"{m16:.3f} +- {s16:.3f}", f"{m16 - m32:+.3f} +- {error:.3f}"]
        times = {p: statistics.median(_select(runs, case, method, p, "ms_per_step")) for p in ("fp32", "bf16")}
        lines.append(f"| {case} | {LABELS[method]} | {' | '.join(cells)} | {times['fp32']:.0f} | {times['bf16']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_inpainting_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=["stacked", "emergent"], choices=ENGINE_METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    started = _mcpn.start()
    jobs = [
        (args.data, args.size, case, method, precision, seed, args.steps)
        for method in args.methods  # the slowest method first
        for case in args.cases
        for seed in args.seeds
        for precision in ("fp32", "bf16")
    ]
    jobs.sort(key=lambda job: job[3] == "stacked")
    runs = _mcpn.run_in_workers(
        run_one,
        jobs,
        args.jobs,
        lambda run: f"{run['case']} {run['method']} {run['precision']} seed {run['seed']}: {run['last']:.3f}",
    )
    header = _mcpn.run_header(
        started,
        f"{args.jobs} worker(s) x 1 thread",
        steps=args.steps,
        **{"crop size": args.size, "seeds": args.seeds},
    )
    _mcpn.write_results(args.out, "precision", markdown(runs, header), {"header": header, "runs": runs})


if __name__ == "__main__":
    main()
