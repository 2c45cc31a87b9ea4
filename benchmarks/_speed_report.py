"""The markdown of ``speed.py``'s report: the step-time table, batched tiles, the operator breakdown, Adam."""

from __future__ import annotations

import argparse

BREAKDOWN_ROWS = 10  # operators listed in the breakdown (the rest are summed)


def table(rows: list[dict], flops: dict[tuple, float], peak: dict | None, args: argparse.Namespace) -> str:
    """Markdown report: one row per configuration, with speed-up and growth with pixels; then batches."""
    batches = [r for r in rows if r["batch"] > 1]
    rows = [r for r in rows if r["batch"] == 1]
    by_key = {(r["method"], r["size"], r["precision"], r["memory_format"]): r for r in rows}
    first = rows[0]
    lines = [
        f"Device {first['device']}, {first['threads']} torch thread(s). Median of {args.steps} steps after "
        f"{args.warmup} warm-up steps, median over {args.repeats} repeats in fresh processes run in interleaved "
        "rounds; spread: (slowest - fastest repeat) / median.",
        "",
        (
            f"Peak: FP32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s = {peak['how']}. "
            if peak
            else "No peak is modelled for this device (% of peak: -). "
        )
        + "GFLOP/step: forward + backward of the networks (torch.utils.flop_counter). Speed-up: against FP32 "
        "contiguous of the same method and size. ns/px: step time per output pixel; growth: step time ratio to "
        "the previous size (linear in pixels = the pixel ratio, 4.0 for each doubling of the side; the networks "
        "work on at least 65 x 65 px, so smaller sizes cost the same). Memory: "
        "growth of the resident set during the fit"
        + (" (peak RSS counter reset before the fit)." if all(r["peak_is_delta"] for r in rows) else "."),
        "",
        "| method | px | precision | memory format | ms/step | spread | speed-up | GFLOP/step | GFLOP/s | % of peak "
        "| peak memory (MiB) | ns/px | growth |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sizes = sorted({r["size"] for r in rows})
    for r in sorted(rows, key=lambda r: (args.methods.index(r["method"]), r["size"])):
        gflop = flops[(r["method"], r["size"])]
        gflops = gflop / (r["ms_per_step"] / 1000)
        base = by_key.get((r["method"], r["size"], "fp32", "contiguous"))
        speedup = f"{base['ms_per_step'] / r['ms_per_step']:.2f}x" if base else "-"
        index = sizes.index(r["size"])
        previous = by_key.get((r["method"], sizes[index - 1], r["precision"], r["memory_format"])) if index else None
        growth = "-"
        if previous:
            growth = f"{r['ms_per_step'] / previous['ms_per_step']:.1f} (px x{(r['size'] / previous['size']) ** 2:.0f})"
        share = f"{100 * gflops / peak[r['precision']]:.0f} %" if peak else "-"
        lines.append(
            f"| {r['method']} | {r['size']} | {r['precision']} | {r['memory_format']} | {r['ms_per_step']:.1f} "
            f"| {100 * (max(r['repeats_ms']) - min(r['repeats_ms'])) / r['ms_per_step']:.0f} % | {speedup} "
            f"| {gflop:.1f} | {gflops:.0f} | {share} "
            f"| {r['peak_mib']:.0f} | {1e6 * r['ms_per_step'] / r['size'] ** 2:.0f} "
            f"| {growth} |"
        )
    return "\n".join(lines + _batch_table(batches, by_key))


def _batch_table(batches: list[dict], singles: dict[tuple, dict]) -> list[str]:
    """Tiles fitted at once (``core.batched.fit_batch``): step time, tiles per minute at 4000 steps, gain."""
    if not batches:
        return []
    lines = [
        "",
        "## Batched tiles",
        "",
        "N tiles of the same size fitted in one vectorised step (one network each: `core.model.fitting.fit` with "
        "N problems, `torch.func.vmap`). Tiles/min: N x 60 s / (4000 steps x the batch's step time). Gain: "
        "tiles/min against single fits of the row's memory format (the stacked weights of the vectorised "
        "networks are not converted to it; their input is).",
        "",
        "| method | px | precision | memory format | tiles | ms/step (batch) | ms/step per tile | tiles/min "
        "(4000 steps) | gain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(batches, key=lambda r: (r["method"], r["size"], r["precision"], r["batch"])):
        single = singles.get((r["method"], r["size"], r["precision"], r["memory_format"]))
        per_tile = r["ms_per_step"] / r["batch"]
        gain = f"{single['ms_per_step'] / per_tile:.2f}x" if single else "-"
        lines.append(
            f"| {r['method']} | {r['size']} | {r['precision']} | {r['memory_format']} | {r['batch']} "
            f"| {r['ms_per_step']:.1f} | {per_tile:.1f} | {60_000 / (4000 * per_tile):.2f} | {gain} |"
        )
    return lines


def breakdown(method: str, size: int, profiles: dict[str, dict], gflop: float, peak: dict | None) -> str:
    """Where a step's time goes: the operators with the most self CPU time, per precision."""
    names = sorted({n for prof in profiles.values() for n in prof["operators"]},
                   key=lambda n: -max(prof["operators"].get(n, 0.0) for prof in profiles.values()))  # fmt: skip
    precisions = list(profiles)
    lines = [
        f"## Where a step goes: {method}, {size} px, channels-last",
        "",
        "Self CPU time per operator (ms per step) of a fit in a fresh process after a 2-step warm-up fit "
        "(torch.profiler, which slows the fit down: compare its total with the wall time of the profiled fit). "
        "Convolutions: the operators whose name contains `convolution`; their GFLOP/s are the GFLOP/step of the "
        "networks (nearly all of them convolutions) over their time.",
        "",
        "| operator | " + " | ".join(precisions) + " |",
        "|---|" + "---|" * len(precisions),
    ]

    def row(label: str, values: list[float]) -> None:
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + " |")

    for name in names[:BREAKDOWN_ROWS]:
        row(f"`{name}`", [prof["operators"].get(name, 0.0) for prof in profiles.values()])
    row("other operators", [sum(prof["operators"].get(n, 0.0) for n in names[BREAKDOWN_ROWS:]) for prof in
                            profiles.values()])  # fmt: skip
    totals = [sum(prof["operators"].values()) for prof in profiles.values()]
    row("**all operators**", totals)
    row("wall time of the profiled fit", [prof["wall_ms_per_step"] for prof in profiles.values()])
    convolutions = [sum(v for n, v in prof["operators"].items() if "convolution" in n) for prof in profiles.values()]
    row("convolutions", convolutions)
    row("everything but convolutions", [t - c for t, c in zip(totals, convolutions)])
    rates = [gflop / (ms / 1000) for ms in convolutions]
    lines.append("| convolutions' GFLOP/s | " + " | ".join(f"{r:.0f}" + (f" ({100 * r / peak[p]:.0f} % of peak)"
                 if peak else "") for r, p in zip(rates, precisions)) + " |")  # fmt: skip
    return "\n".join(lines)


def adam_table(times: dict[str, dict[str, float]]) -> str:
    """The optimiser step alone, per method: a loop over the weights, foreach and fused kernels."""
    lines = [
        "## The Adam step alone",
        "",
        "One `torch.optim.Adam` step over the weights of each method's network (256 px problem, random "
        "gradients), median of 30 steps, ms: a loop over the tensors, `foreach=True`, `fused=True` (the engine's).",
        "",
        "| method | loop | foreach | fused |",
        "|---|---|---|---|",
    ]
    for method, ms in times.items():
        lines.append(f"| {method} | {ms['loop']:.2f} | {ms['foreach']:.2f} | {ms['fused']:.2f} |")
    return "\n".join(lines)
