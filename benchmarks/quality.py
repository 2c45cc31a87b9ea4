"""Side-by-side quality benchmark: MCPN variants against the baselines a QGIS user has today.

Run from the repository root, e.g. (full run, long on a CPU)::

    .venv/bin/python benchmarks/quality.py
    .venv/bin/python benchmarks/quality.py --size 64 --steps 5 --out benchmarks/out  # smoke test

Cases (``--cases``, see :mod:`cases`): ``s2_guide`` and ``sar_guide`` (cloud
inpainting with a historical optical or a SAR guide), ``sr_nir`` (B08 x4/x8/x16
with same-date RGB guide) and ``sr_rgb`` (RGB x4/x8 with the older date's RGB).

Each MCPN fit is run once per seed with ``stopping="patch_consistency"`` and the
patience disabled, so that it runs all ``--steps`` while the trace records the
known-region RMSE and the patch consistency every ``--record-every`` steps,
together with a snapshot of the output. From one fit we report the three
stopping rules of the paper - the last step (fixed), the step of minimum
known-region RMSE and the step of minimum patch consistency - and the peak
masked SSIM over the run (an oracle: it needs the ground truth).
Super-resolution has no mask, hence no patch consistency: it reports fixed and
known-region RMSE, and SSIM / RMSE over the whole image.

All metrics are computed on the composite a user gets (known pixels kept, the
gap filled by the method) against the clear ground truth, with
:mod:`core.metrics` (SSIM on per-band percentile-scaled images). Outputs in
``--out``: ``quality.md`` (tables), ``quality.json`` (raw numbers, traces),
``quality_<case>.png`` (inputs and outputs) and ``quality_convergence.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import matplotlib
import numpy as np

matplotlib.use("Agg")
import _mcpn  # noqa: E402
import baselines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from cases import CASE_GROUPS, Case, build_cases  # noqa: E402

metrics = _mcpn.module("core.metrics")

ENGINE_METHODS = ("emergent", "direct", "stacked")
GAP_BASELINES = ("gdal_fill", "biharmonic", "regression")
SR_BASELINES = ("bicubic", "brovey")
ALL_METHODS = ENGINE_METHODS + GAP_BASELINES + SR_BASELINES
LABELS = {
    "emergent": "MCPN Emergent",
    "direct": "MCPN Direct",
    "stacked": "Stacked",
    "gdal_fill": "GDAL Fill nodata",
    "biharmonic": "Biharmonic",
    "regression": "Linear regression",
    "bicubic": "Bicubic",
    "brovey": "Brovey (ratio)",
}
STOPPING_RULES = ("fixed", "known_rmse", "patch_consistency")
COLOURS = {"emergent": "tab:blue", "direct": "tab:orange", "stacked": "tab:green"}


def applicable(case: Case, method: str) -> bool:
    """Whether ``method`` is run on ``case`` (gap baselines on inpainting, SR baselines on SR)."""
    if method in ENGINE_METHODS:
        return True
    return method in (GAP_BASELINES if case.kind == "inpaint" else SR_BASELINES)


def composite(case: Case, image: np.ndarray) -> np.ndarray:
    """What the user gets: known pixels of the truth kept, the cloud from ``image`` (SR: ``image``)."""
    image = np.asarray(image, dtype=np.float64)
    if case.mask is None:
        return image
    return np.where(case.mask[None], image, case.truth)


def scores(case: Case, image: np.ndarray) -> dict[str, float | None]:
    """SSIM and RMSE over the whole image and over the mask (None for super-resolution)."""
    out: dict[str, float | None] = {
        "ssim_all": metrics.masked_ssim(image, case.truth),
        "rmse_all": metrics.rmse(image, case.truth),
        "ssim_mask": None,
        "rmse_mask": None,
    }
    if case.mask is not None:
        out["ssim_mask"] = metrics.masked_ssim(image, case.truth, case.mask)
        out["rmse_mask"] = metrics.rmse(image, case.truth, case.mask)
    return out


def key_ssim(case: Case) -> str:
    """The SSIM that ranks methods: masked for inpainting, whole image for super-resolution."""
    return "ssim_mask" if case.kind == "inpaint" else "ssim_all"


def run_baseline(case: Case, method: str) -> tuple[dict[str, Any], np.ndarray]:
    """Run one baseline; return its record and its (composited) output."""
    size = case.truth.shape[1:]
    funcs: dict[str, Callable[[], np.ndarray]] = {
        "gdal_fill": lambda: baselines.fill_gdal(case.target, case.mask),
        "biharmonic": lambda: baselines.fill_biharmonic(case.target, case.mask),
        "regression": lambda: baselines.fill_regression(case.target, case.mask, _baseline_guides(case)),
        "bicubic": lambda: baselines.upsample_bicubic(case.target, size),
        "brovey": lambda: baselines.brovey(case.target, case.guides[0]),
    }
    started = time.perf_counter()
    image = composite(case, funcs[method]())
    seconds = time.perf_counter() - started
    record = {
        "case": case.name,
        "method": method,
        "seed": None,
        "seconds": seconds,
        "device": "cpu",
        "stopping": {"-": {"step": None, **scores(case, image)}},
    }
    return record, image


def _baseline_guides(case: Case) -> np.ndarray:
    """All guide bands stacked, SAR guides converted to dB (as the engine does)."""
    bands = []
    for index, guide in enumerate(case.guides):
        if index in case.sar_guides:
            with np.errstate(divide="ignore", invalid="ignore"):
                guide = 10.0 * np.log10(np.where(guide > 0, guide, np.nan))
        bands.append(guide)
    return np.concatenate(bands)


def case_method_groups(runs: list[dict]) -> list[tuple[str, str]]:
    """The (case, method) pairs of ``runs``: by case, then in the order of ``ENGINE_METHODS``."""
    return sorted({(r["case"], r["method"]) for r in runs}, key=lambda g: (g[0], ENGINE_METHODS.index(g[1])))


def record_every_for(steps: int, wanted: int) -> int:
    """The largest divisor of ``steps`` not above ``wanted`` (so the last step is recorded)."""
    wanted = max(1, min(wanted, steps))
    return max(d for d in range(1, wanted + 1) if steps % d == 0)


def run_engine(
    case: Case,
    method: str,
    seed: int,
    steps: int,
    record_every: int,
    device: str = "auto",
    log: Callable[[str], None] = print,
    **options: Any,
) -> tuple[dict[str, Any], np.ndarray]:
    """One MCPN / Stacked fit; the record holds every stopping rule, the peak and the SSIM curve.

    Returns the record and the composited output of the fixed (last) step.
    """
    api = _mcpn.module("core.api")
    every = record_every_for(steps, record_every)
    common = {
        "method": method,
        "steps": steps,
        "seed": seed,
        "device": device,
        "record_every": every,
        "check_every": every,
        **options,
    }
    started = time.perf_counter()
    if case.kind == "inpaint":
        res = api.inpaint(
            case.target,
            case.mask,
            case.guides,
            stopping="patch_consistency",
            patience=steps + 1,
            sar_guides=case.sar_guides,
            log=None,
            **common,
        )
    else:
        res = api.super_resolve(case.target, case.guides, stopping="fixed", sar_guides=case.sar_guides, **common)
    wall = time.perf_counter() - started

    evaluated = {step: scores(case, composite(case, snap)) for step, snap in sorted(res.snapshots.items())}
    last = max(evaluated)
    chosen: dict[str, int | None] = {"fixed": last}
    usable = [p for p in res.trace if p.step in evaluated]
    chosen["known_rmse"] = min(usable, key=lambda p: p.known_rmse).step if usable else None
    with_pc = [p for p in usable if p.patch_consistency is not None]
    chosen["patch_consistency"] = min(with_pc, key=lambda p: p.patch_consistency).step if with_pc else None
    key = key_ssim(case)
    peak = max(evaluated, key=lambda s: evaluated[s][key])

    record: dict[str, Any] = {
        "case": case.name,
        "method": method,
        "seed": seed,
        "steps": steps,
        "seconds": res.seconds,
        "wall_seconds": wall,
        "device": res.device,
        "options": {k: v for k, v in options.items()},
        "notes": list(res.notes),
        "stopping": {rule: {"step": s, **evaluated[s]} for rule, s in chosen.items() if s is not None},
        "peak": {"step": peak, **evaluated[peak]},
        "curve": [{"step": s, **v} for s, v in evaluated.items()],
        "trace": [
            {"step": p.step, "loss": p.loss, "known_rmse": p.known_rmse, "patch_consistency": p.patch_consistency}
            for p in res.trace
        ],
    }
    final = res.snapshots.get(last, res.image)
    return record, composite(case, final)


def fit_in_worker(
    data: Path, size: int, case_name: str, method: str, seed: int, steps: int, record_every: int, **options: Any
) -> tuple[dict[str, Any], str]:
    """One fit in a one-thread benchmark worker: the :func:`run_engine` record and the key of the case's SSIM."""
    import torch

    torch.set_num_threads(1)
    case = build_cases(data, size, [case_name])[0]
    record, _ = run_engine(case, method, seed, steps, record_every, log=lambda _: None, **options)
    return record, key_ssim(case)


# --------------------------------------------------------------------------- reporting


def _fmt(values: list[float | None], digits: int) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals):.{digits}f}"


def _rmse_digits(case: Case) -> int:
    scale = float(np.nanpercentile(np.abs(case.truth), 99))
    return 1 if scale >= 100 else 4


def markdown(cases: list[Case], records: list[dict[str, Any]], header: dict[str, Any]) -> str:
    """The Markdown report: one table per case, rows = method x stopping rule, mean ± std over seeds."""
    lines = ["# MCPN quality benchmark", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += [
        "",
        "SSIM: per-band percentile-scaled SSIM (core/metrics.py), averaged over the masked (cloud) pixels",
        "or the whole image; RMSE in the data's units. Metrics are computed on the composite (known pixels",
        "kept). `peak` is the best masked SSIM over the run (needs the ground truth: an upper bound).",
        "Mean ± std over seeds where more than one seed was run.",
        "",
    ]
    for case in cases:
        recs = [r for r in records if r["case"] == case.name]
        if not recs:
            continue
        digits = _rmse_digits(case)
        lines += [f"## {case.name}: {case.description}", ""]
        if case.kind == "inpaint":
            cloud = 100.0 * float(case.mask.mean())
            lines += [f"Cloud: {cloud:.1f} % of {case.truth.shape[2]} x {case.truth.shape[1]} px.", ""]
            cols = ["ssim_mask", "ssim_all", "rmse_mask", "rmse_all"]
            head = "| Method | Stopping | SSIM mask | SSIM whole | RMSE mask | RMSE whole | Step | Seconds |"
        else:
            cols = ["ssim_all", "rmse_all"]
            head = "| Method | Stopping | SSIM | RMSE | Step | Seconds |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for method in ALL_METHODS:
            mrecs = [r for r in recs if r["method"] == method]
            if not mrecs:
                continue
            rules = [k for k in ("-", *STOPPING_RULES, "peak") if k in mrecs[0]["stopping"] or k in mrecs[0]]
            for rule in rules:
                rows = [r["peak"] if rule == "peak" else r["stopping"].get(rule) for r in mrecs]
                rows = [row for row in rows if row is not None]
                cells = [_fmt([row[c] for row in rows], 3 if c.startswith("ssim") else digits) for c in cols]
                step = _fmt([row["step"] for row in rows], 0)
                secs = _fmt([r["seconds"] for r in mrecs], 1)
                label = rule if rule != "-" else ""
                lines.append(f"| {LABELS[method]} | {label} | " + " | ".join(cells) + f" | {step} | {secs} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _display(image: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """RGB (first three bands) or grey image stretched by the reference's 1-99 percentiles."""
    bands = image[:3] if image.shape[0] >= 3 else image[:1]
    refb = ref[:3] if ref.shape[0] >= 3 else ref[:1]
    out = np.empty(bands.shape, dtype=np.float64)
    for b in range(bands.shape[0]):
        finite = refb[b][np.isfinite(refb[b])]
        lo, hi = np.percentile(finite, (1, 99)) if finite.size else (0.0, 1.0)
        out[b] = (bands[b] - lo) / (hi - lo if hi > lo else 1.0)
    out = np.clip(np.nan_to_num(out, nan=1.0), 0, 1)
    return out.transpose(1, 2, 0) if out.shape[0] == 3 else out[0]


def figure_case(case: Case, outputs: dict[str, np.ndarray], path: Path) -> None:
    """Inputs, ground truth and each method's output (seed of the first run, fixed stopping)."""
    guide = case.guides[0]
    if 0 in case.sar_guides:
        with np.errstate(divide="ignore", invalid="ignore"):
            guide = 10.0 * np.log10(np.where(guide > 0, guide, np.nan))
        guide = guide[-1:]  # VV
    if case.kind == "sr":
        up = np.repeat(np.repeat(case.target, case.factor, axis=1), case.factor, axis=2)
        shown_input = up[:, : case.truth.shape[1], : case.truth.shape[2]]
        panels = [("low-res input", _display(shown_input, case.truth))]
    else:
        panels = [("input (cloud white)", _display(case.target, case.truth)), ("mask", case.mask.astype(float))]
    panels += [
        (f"guide: {case.guide_names[0]}", _display(guide, guide)),
        ("ground truth", _display(case.truth, case.truth)),
    ]
    panels += [(LABELS[m], _display(img, case.truth)) for m, img in outputs.items()]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), panels):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    fig.suptitle(case.description, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


BASELINE_STYLES = {
    "gdal_fill": ("dimgrey", "--"),
    "biharmonic": ("grey", ":"),
    "regression": ("black", "-."),
    "bicubic": ("grey", "--"),
    "brovey": ("black", ":"),
}


def figure_convergence(cases: list[Case], records: list[dict[str, Any]], path: Path) -> None:
    """Masked SSIM (SR: whole-image SSIM) vs step, one panel per case; baselines as horizontal lines."""
    cols = min(4, len(cases))
    rows = -(-len(cases) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(cases) :]:
        ax.axis("off")
    for ax, case in zip(axes.ravel(), cases):
        key = key_ssim(case)
        labelled: set[str] = set()
        for r in records:
            if r["case"] != case.name:
                continue
            label = LABELS[r["method"]] if r["method"] not in labelled else None
            labelled.add(r["method"])
            if "curve" in r:
                steps = [p["step"] for p in r["curve"]]
                vals = [p[key] for p in r["curve"]]
                ax.plot(steps, vals, color=COLOURS.get(r["method"]), label=label, lw=1.2, alpha=0.8)
            else:
                colour, style = BASELINE_STYLES[r["method"]]
                ax.axhline(r["stopping"]["-"][key], ls=style, lw=1, color=colour, label=label)
        ax.set_title(case.name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("SSIM (mask)" if key == "ssim_mask" else "SSIM")
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4000, help="optimisation steps per fit (default 4000)")
    parser.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    parser.add_argument("--cases", nargs="+", default=list(CASE_GROUPS), help=f"of {', '.join(CASE_GROUPS)}")
    parser.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--record-every", type=int, default=50, help="snapshot / trace interval in steps")
    parser.add_argument(
        "--learning-rates",
        nargs="+",
        default=[],
        metavar="VARIANT=RATE",
        help="per-variant learning rates, e.g. emergent=1e-3 direct=3e-3 (default: the engine's)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, default=_mcpn.DATA_DIR, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=_mcpn.REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rates = {}
    for item in args.learning_rates:
        variant, _, value = item.partition("=")
        if variant not in ENGINE_METHODS or not value:
            raise SystemExit(f"--learning-rates: expected VARIANT=RATE with VARIANT in {ENGINE_METHODS}, got {item!r}")
        rates[variant] = float(value)
    cases = build_cases(args.data, args.size, args.cases)
    args.out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    devices: set[str] = set()
    started = _mcpn.start()  # notes the commit the run starts from
    for case in cases:
        outputs: dict[str, np.ndarray] = {}
        for method in args.methods:
            if not applicable(case, method):
                continue
            for seed in args.seeds if method in ENGINE_METHODS else [None]:
                t0 = time.perf_counter()
                if seed is None:
                    record, image = run_baseline(case, method)
                else:
                    options = {"learning_rate": rates[method]} if method in rates else {}
                    record, image = run_engine(
                        case, method, seed, args.steps, args.record_every, args.device, **options
                    )
                    devices.add(record["device"])
                records.append(record)
                outputs.setdefault(method, image)
                key = key_ssim(case)
                best = record["stopping"].get("fixed", record["stopping"].get("-"))
                print(
                    f"{case.name:12s} {method:11s} seed={seed} {key}={best[key]:.3f} "
                    f"({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
        figure_case(case, outputs, args.out / f"quality_{case.name}.png")
    header = {
        "command": "python benchmarks/quality.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "steps": args.steps,
        "crop size": args.size,
        "seeds": args.seeds,
        "learning rates": ", ".join(f"{k}={v:g}" for k, v in rates.items()) or "engine defaults",
        "snapshot interval": record_every_for(args.steps, args.record_every),
        "device": ", ".join(sorted(devices)) or "-",
        "total wall time (s)": round(time.perf_counter() - started, 1),
        "git commit": _mcpn.git_commit(),
        "python / numpy": f"{platform.python_version()} / {np.__version__}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    (args.out / "quality.md").write_text(markdown(cases, records, header), encoding="utf-8")
    (args.out / "quality.json").write_text(json.dumps({"settings": header, "records": records}, indent=1))
    figure_convergence(cases, records, args.out / "quality_convergence.png")
    print(f"wrote {args.out / 'quality.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
