"""Coarse-to-fine fitting against the fixed-step run, in a third of its time (inpainting cases).

Issue #7 asks for the masked SSIM of the fixed ``--reference-steps`` run in at
most a third of its wall time. Here each case is fitted once at full resolution
for ``--reference-steps`` (the reference), and then, for every ``--coarse K``,
with K steps on the sample averaged 2 x 2 (``Settings.coarse_steps``) followed by
as many full-resolution steps as fit in the rest of the third (K = 0: the plain
fit stopped at a third) (from step times
measured on this machine, in the same run). All fits start from the same seed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coarse_to_fine.py --jobs 2
    .venv/bin/python benchmarks/coarse_to_fine.py --size 64 --reference-steps 30 --coarse 10 \\
        --cases s2_guide --out benchmarks/out/c2f  # smoke test

Writes ``coarse_to_fine.md`` and ``coarse_to_fine.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _mcpn
from cases import add_inpainting_arguments
from quality import ENGINE_METHODS, LABELS, fit_in_worker

CALIBRATION_STEPS = 40


def fit_case(data: Path, size: int, case_name: str, method: str, seed: int, steps: int, coarse: int) -> dict:
    """One fit (``coarse`` steps at half size, then ``steps``); masked SSIM of its last step and its time."""
    record, key = fit_in_worker(data, size, case_name, method, seed, steps, steps, coarse_steps=coarse)
    return {
        "case": case_name,
        "coarse": coarse,
        "steps": steps,
        "ssim": record["stopping"]["fixed"][key],
        "seconds": record["seconds"],
    }


def step_seconds(data: Path, size: int, case_name: str, method: str) -> tuple[float, float]:
    """Seconds per full-resolution step and per coarse step, from two short fits."""
    full = fit_case(data, size, case_name, method, 0, CALIBRATION_STEPS, 0)["seconds"]
    coarse = fit_case(data, size, case_name, method, 0, 1, CALIBRATION_STEPS)["seconds"]
    return full / CALIBRATION_STEPS, coarse / CALIBRATION_STEPS


def markdown(rows: list[dict], header: dict) -> str:
    lines = [
        "# Coarse-to-fine fitting in a third of the time (inpainting)",
        "",
        *(f"- {key}: {value}" for key, value in header.items()),
        "",
        "Masked SSIM of the last step against the clear ground truth. *Reference*: the fixed run at full "
        "resolution. Coarse-to-fine: K steps on the sample averaged 2 x 2, then the full-resolution steps that "
        "fit in a third of the reference's time (planned from measured step times). Time: wall time of the fit "
        "over the reference's. Coarse steps 0 below the reference: the plain fit stopped at a third of the time.",
        "",
        "| case | coarse steps | full steps | SSIM | reference SSIM | reached | time (share of the reference) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reference = next(r for r in rows if r["case"] == row["case"] and r["reference"])
        reached = "-" if row["reference"] else ("yes" if row["ssim"] >= reference["ssim"] else "no")
        name = f"{row['case']} (reference)" if row["reference"] else row["case"]
        lines.append(
            f"| {name} | {row['coarse']} | {row['steps']} | {row['ssim']:.3f} | {reference['ssim']:.3f} "
            f"| {reached} | {row['seconds']:.0f} s ({row['seconds'] / reference['seconds']:.2f}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_inpainting_arguments(parser)
    parser.add_argument("--method", default="stacked", choices=ENGINE_METHODS)
    parser.add_argument("--reference-steps", type=int, default=4000)
    parser.add_argument("--coarse", nargs="+", type=int, default=[0, 1000, 2000, 3000], help="coarse steps to try")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = _mcpn.start()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        timing = {case: pool.submit(step_seconds, args.data, args.size, case, args.method) for case in args.cases}
        timing = {case: future.result() for case, future in timing.items()}
        jobs = [(case, args.reference_steps, 0) for case in args.cases]
        for case in args.cases:
            full, coarse = timing[case]
            budget = args.reference_steps * full / 3
            for steps_coarse in args.coarse:
                steps_full = int((budget - steps_coarse * coarse) / full)
                if steps_full >= 1:
                    jobs.append((case, steps_full, steps_coarse))
        futures = [
            pool.submit(fit_case, args.data, args.size, case, args.method, args.seed, steps, coarse)
            for case, steps, coarse in jobs
        ]
        rows = [{**future.result(), "reference": index < len(args.cases)} for index, future in enumerate(futures)]
    rows.sort(key=lambda r: (r["case"], not r["reference"], r["coarse"]))
    header = _mcpn.run_header(
        started,
        f"{args.jobs} worker(s) x 1 thread",
        method=LABELS[args.method],
        **{"crop size": args.size, "seed": args.seed},
        **{"step times (s, full / coarse)": {case: [round(t, 4) for t in ts] for case, ts in timing.items()}},
    )
    _mcpn.write_results(args.out, "coarse_to_fine", markdown(rows, header), {"header": header, "rows": rows})


if __name__ == "__main__":
    main()
