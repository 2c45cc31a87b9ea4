"""Learning-rate sweep per MCPN variant, from convergence traces (masked SSIM vs step).

As in the paper, one learning rate is picked per variant by looking at how the
inpainting SSIM (against the ground truth) evolves during the fit, for a few
rates and seeds. Uses inpainting case ``s2_guide`` (see :mod:`cases`). Run from
the repository root::

    .venv/bin/python benchmarks/learning_rates.py                     # full sweep (long)
    .venv/bin/python benchmarks/learning_rates.py --size 64 --steps 5 --record-every 1 \\
        --variants emergent --rates 1e-3 1e-2 --out benchmarks/out  # smoke test
    # network input and regularisation noise comparison:
    .venv/bin/python benchmarks/learning_rates.py --input-kinds noise meshgrid --reg-noise 0 0.03

Writes ``learning_rates.png`` (one panel per variant and configuration, one
line per rate, seeds averaged with the spread shaded), ``learning_rates.md``
(peak masked SSIM, step of the peak, SSIM at the last step and at the steps
chosen by the known-region RMSE and patch-consistency rules) and
``learning_rates.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import _mcpn  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from cases import build_cases  # noqa: E402
from quality import COLOURS, ENGINE_METHODS, LABELS, record_every_for, run_engine  # noqa: E402

RATE_COLOURS = ("tab:purple", "tab:blue", "tab:green", "tab:orange", "tab:red", "tab:brown", "tab:pink")


def config_label(input_kind: str, reg_noise: float) -> str:
    return f"input={input_kind}, reg_noise={reg_noise:g}"


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def markdown(records: list[dict[str, Any]], header: dict[str, Any]) -> str:
    """Table: one row per variant x configuration x rate, mean ± std over seeds."""
    lines = ["# Learning-rate sweep (inpainting, case s2_guide)", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += [
        "",
        "Masked SSIM against the ground truth (core/metrics.py) on the composite output; peak = best over",
        "the recorded steps (an oracle); end = last step; known_rmse / patch_consistency = at the step",
        "that rule would choose. Mean ± std over seeds.",
        "",
        "| Variant | Configuration | Learning rate | Peak SSIM | Step of peak | SSIM at end "
        "| SSIM known_rmse | SSIM patch_consistency | Seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r["config"], r["learning_rate"]), []).append(r)
    for (method, config, rate), recs in groups.items():
        peak = [r["peak"]["ssim_mask"] for r in recs]
        steps = [r["peak"]["step"] for r in recs]
        step_txt = f"{np.mean(steps):.0f}" + (f" ± {np.std(steps):.0f}" if len(steps) > 1 else "")
        end = [r["stopping"]["fixed"]["ssim_mask"] for r in recs]
        rule_cells = []
        for rule in ("known_rmse", "patch_consistency"):
            vals = [r["stopping"][rule]["ssim_mask"] for r in recs if rule in r["stopping"]]
            rule_cells.append(_mean_std(vals) if vals else "-")
        secs = np.mean([r["seconds"] for r in recs])
        lines.append(
            f"| {LABELS[method]} | {config} | {rate:g} | {_mean_std(peak)} | {step_txt} | {_mean_std(end)} "
            f"| {rule_cells[0]} | {rule_cells[1]} | {secs:.1f} |"
        )
    return "\n".join(lines) + "\n"


def figure(records: list[dict[str, Any]], variants: list[str], configs: list[str], rates: list[float], path: Path):
    """One panel per variant (columns) and configuration (rows); one line per rate, seeds averaged."""
    fig, axes = plt.subplots(
        len(configs), len(variants), figsize=(4.4 * len(variants), 3.4 * len(configs)), squeeze=False
    )
    for (row, config), (col, method) in itertools.product(enumerate(configs), enumerate(variants)):
        ax = axes[row][col]
        for k, rate in enumerate(rates):
            recs = [r for r in records if (r["method"], r["config"], r["learning_rate"]) == (method, config, rate)]
            if not recs:
                continue
            steps = [p["step"] for p in recs[0]["curve"]]
            curves = np.array([[p["ssim_mask"] for p in r["curve"]][: len(steps)] for r in recs])
            colour = RATE_COLOURS[k % len(RATE_COLOURS)]
            mean = curves.mean(axis=0)
            ax.plot(steps, mean, color=colour, lw=1.3, label=f"lr {rate:g}")
            if len(recs) > 1:
                ax.fill_between(steps, curves.min(axis=0), curves.max(axis=0), color=colour, alpha=0.15)
        title = LABELS[method] if len(configs) == 1 else f"{LABELS[method]}\n{config}"
        ax.set_title(title, fontsize=9, color=COLOURS.get(method, "black"))
        ax.set_xlabel("step")
        ax.set_ylabel("masked SSIM")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(ENGINE_METHODS), choices=ENGINE_METHODS)
    parser.add_argument("--rates", nargs="+", type=float, default=[3e-4, 1e-3, 3e-3, 1e-2])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    parser.add_argument("--record-every", type=int, default=50, help="snapshot interval in steps")
    parser.add_argument("--input-kinds", nargs="+", default=["noise"], choices=["noise", "meshgrid"])
    parser.add_argument("--reg-noise", nargs="+", type=float, default=[0.0], help="e.g. 0 0.03")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="autocast precision")
    parser.add_argument("--data", type=Path, default=_mcpn.DATA_DIR)
    parser.add_argument("--out", type=Path, default=_mcpn.REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    (case,) = build_cases(args.data, args.size, ["s2_guide"])
    args.out.mkdir(parents=True, exist_ok=True)
    configs = list(itertools.product(args.input_kinds, args.reg_noise))
    records: list[dict[str, Any]] = []
    devices: set[str] = set()
    started = time.perf_counter()
    for method, (kind, noise), rate, seed in itertools.product(args.variants, configs, args.rates, args.seeds):
        options: dict[str, Any] = {"learning_rate": rate, "precision": args.precision}
        if kind != "noise":
            options["input_kind"] = kind
        if noise:
            options["reg_noise"] = noise
        record, _ = run_engine(case, method, seed, args.steps, args.record_every, args.device, **options)
        record.update(config=config_label(kind, noise), learning_rate=rate)
        records.append(record)
        devices.add(record["device"])
        print(
            f"{method:9s} {record['config']} lr={rate:g} seed={seed} peak={record['peak']['ssim_mask']:.3f}"
            f"@{record['peak']['step']} end={record['stopping']['fixed']['ssim_mask']:.3f} "
            f"({record['wall_seconds']:.1f} s)",
            flush=True,
        )
    header = {
        "command": "python benchmarks/learning_rates.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "steps": args.steps,
        "crop size": args.size,
        "seeds": args.seeds,
        "snapshot interval": record_every_for(args.steps, args.record_every),
        "device": ", ".join(sorted(devices)),
        "total wall time (s)": round(time.perf_counter() - started, 1),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    config_labels = [config_label(k, n) for k, n in configs]
    figure(records, args.variants, config_labels, args.rates, args.out / "learning_rates.png")
    (args.out / "learning_rates.md").write_text(markdown(records, header), encoding="utf-8")
    for r in records:  # the per-step curves are in the JSON; the trace is enough once
        r.pop("notes", None)
    (args.out / "learning_rates.json").write_text(json.dumps({"settings": header, "records": records}, indent=1))
    print(f"wrote {args.out / 'learning_rates.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
