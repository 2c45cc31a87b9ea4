"""Speed of one optimiser step of each variant: ms/step, GFLOP/step, GFLOP/s and its share of the peak, memory.

The step is the engine's real training step (``core.model.fitting.fit`` with one
4-band target and one 4-band guide); its time is the median over ``--steps``
steps after ``--warmup`` steps, from the fit's own progress callbacks. Every
configuration (method x size x precision x memory format) runs in a fresh
subprocess, ``--repeats`` times in interleaved rounds so that a burst of load
on the machine does not hit one configuration only; the table gives the median
over repeats. FLOP are counted once per method and size with
``torch.utils.flop_counter`` (forward and backward of the networks). With
``--breakdown METHOD SIZE`` the report also gives where a step's time goes
(torch.profiler, self CPU time per operator, channels-last), and with ``--adam``
the time of the optimiser step alone (loop, foreach and fused Adam). Everything in
``speed.md`` comes from this run: the file is written by the script only.

Peak memory is the growth of the resident set during the fit: the peak RSS
counter is reset (``/proc/self/clear_refs``) just before it and read after
(on CUDA: ``torch.cuda.max_memory_allocated``).

The CPU peak is cores x clock x FLOP per cycle per core. The clock is the
nominal one of ``/proc/cpuinfo`` (boost clocks make the true peak higher); FLOP
per cycle come from the instruction set (:func:`flop_per_cycle`), and bf16 runs
are compared with the bf16 peak (twice FP32 with AVX-512 BF16 dot products).

    .venv/bin/python benchmarks/speed.py                    # full table (long): run it on a quiet machine
    .venv/bin/python benchmarks/speed.py --sizes 64 --repeats 2 --out benchmarks/out/speed  # smoke test
    .venv/bin/python benchmarks/speed.py --breakdown stacked-reference 256 --adam           # + operators, Adam
    .venv/bin/python benchmarks/speed.py --methods stacked --sizes 256 --precisions fp32 --memory-formats \
        channels_last --batches 1 8 --device cuda                                            # batched tiles
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _harness
import torch
from _speed_report import adam_table, breakdown, table

_harness.module("core")
from mcpn.core.callbacks import Callbacks  # noqa: E402
from mcpn.core.choices import Device, MemoryFormat, Precision  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.model.fitting import Problem, build_model, fit  # noqa: E402

HERE = Path(__file__).resolve().parent
BANDS = 4
# What each benchmarked method is; "stacked-reference" is the network of the reference code
# (Czerkawski et al.'s Stacked baseline: 5x5 up-sampling kernels, 2-channel coordinate-grid input).
METHODS = {
    "stacked": {"method": "stacked"},
    "stacked-reference": {"method": "stacked", "up_kernel": 5, "input_kind": "meshgrid"},
    "emergent": {"method": "emergent"},
    "direct": {"method": "direct"},
}


def _problem(size: int, seed: int = 0) -> Problem:
    bands = BANDS
    generator = torch.Generator().manual_seed(seed)
    known = (torch.rand(1, 1, size, size, generator=generator) > 0.2).float().expand(1, bands, size, size)
    return Problem(
        target=torch.rand(1, bands, size, size, generator=generator) * known,
        target_known=known.contiguous(),
        guides=[torch.rand(1, bands, size, size, generator=generator)],
        guide_valid=[torch.ones(1, bands, size, size)],
        shape=(size, size),
    )


def flop_per_step(method: str, size: int) -> float:
    """Forward + backward FLOP of the networks for one step, on the working grid ``fit`` uses."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(_problem(size), _settings(method, "fp32", "contiguous", 1))
    working = max(size, model.min_size)
    z = torch.rand(1, model.core.in_channels, working, working)
    with FlopCounterMode(display=False) as counter:
        out = model(z)
        loss = out.target.square().mean() + sum(g.square().mean() for g in out.guides)
        for cycle in out.cycles or []:
            loss = loss + (cycle - out.core).square().mean()
        loss.backward()
    return float(counter.get_total_flops())


def _status_kib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def _reset_peak_rss() -> bool:
    """Reset the peak-RSS counter (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _settings(method: str, precision: str, memory_format: str, steps: int) -> Settings:
    return Settings(
        **METHODS[method],
        steps=steps,
        precision=precision,
        memory_format=memory_format,
        check_every=10**9,
        stopping="fixed",
        anchor="none",
    )


def measure_one(
    method: str, size: int, precision: str, memory_format: str, steps: int, warmup: int, device: str, batch: int = 1
) -> dict:
    """Time ``steps`` steps after ``warmup`` steps in this process (of ``batch`` tiles in one vectorised fit)."""
    torch_device = Device.of(device).torch()
    stamps: list[float] = []
    rss_before = _status_kib("VmRSS")
    exact_peak = _reset_peak_rss()
    settings = _settings(method, precision, memory_format, warmup + steps)
    callbacks = Callbacks(progress=lambda s, n: stamps.append(time.perf_counter()))
    fit([_problem(size, seed) for seed in range(batch)], settings, torch_device, callbacks)
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
        memory = torch.cuda.max_memory_allocated() / 2**20
    else:
        memory = (_status_kib("VmHWM") - (rss_before if exact_peak else 0.0)) / 1024
    gaps = sorted(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :]))
    return {
        "method": method,
        "size": size,
        "precision": precision,
        "memory_format": memory_format,
        "batch": batch,
        "device": str(torch_device),
        "ms_per_step": 1000 * gaps[len(gaps) // 2],
        "peak_mib": memory,
        "peak_is_delta": exact_peak or torch_device.type == "cuda",
        "threads": torch.get_num_threads(),
    }


def _cpu_flags() -> tuple[str, int, set[str], float]:
    """Vendor, family, feature flags and nominal clock (GHz) from /proc/cpuinfo."""
    info: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return (
        info.get("vendor_id", ""),
        int(info.get("cpu family", "0") or 0),
        set(info.get("flags", "").split()),
        float(info.get("cpu MHz", "nan")) / 1000,
    )


def flop_per_cycle(vendor: str, family: int, flags: set[str]) -> tuple[int, str]:
    """FP32 FLOP per cycle per core (2 FLOP per fused multiply-add lane) and how it was decided."""
    if "avx512f" in flags and vendor == "AuthenticAMD" and family < 26:
        return 32, "AMD Zen 4: AVX-512 on two 256-bit FMA pipes = 16 FP32 FMA/cycle"
    if "avx512f" in flags:
        return 64, "AVX-512 with two 512-bit FMA units = 32 FP32 FMA/cycle"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2 with two 256-bit FMA units = 16 FP32 FMA/cycle"
    return 16, "no FMA vector extension found: 4-wide SSE multiply and add = 16 FLOP/cycle (assumed)"


def cpu_peak(threads: int) -> dict:
    """FP32 and bf16 peaks (GFLOP/s) of ``threads`` cores at the nominal clock, with the reasoning."""
    vendor, family, flags, ghz = _cpu_flags()
    per_cycle, how = flop_per_cycle(vendor, family, flags)
    bf16_factor = 2 if "avx512_bf16" in flags else 1
    fp32 = threads * ghz * per_cycle
    how = f"{threads} core(s) x {ghz:.2f} GHz (nominal, /proc/cpuinfo) x {per_cycle} FLOP/cycle ({how})"
    if bf16_factor == 2:
        how += "; bf16 peak x2 (AVX-512 BF16 dot products: two multiply-adds per FP32 lane)"
    if "amx_bf16" in flags:
        how += "; AMX tiles are not modelled (their bf16 peak is higher still)"
    return {"fp32": fp32, "bf16": fp32 * bf16_factor, "fp16": fp32, "how": how}


def profile(method: str, size: int, precision: str, memory_format: str, device: str, steps: int) -> dict:
    """Self CPU time per operator (ms per step, torch.profiler) of a ``steps``-step fit after a warm-up fit."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch_device = Device.of(device).torch()
    fit([_problem(size)], _settings(method, precision, memory_format, 2), torch_device)  # warm-up
    started = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fit([_problem(size)], _settings(method, precision, memory_format, steps), torch_device)
    wall = time.perf_counter() - started
    operators = {e.key: e.self_cpu_time_total / 1000 / steps for e in prof.key_averages()}
    return {"wall_ms_per_step": 1000 * wall / steps, "operators": operators}


def adam_step_ms(parameters: list[torch.Tensor], repeats: int = 30) -> dict[str, float]:
    """Time of one Adam step over ``parameters`` (random gradients): loop, foreach and fused kernels."""
    for parameter in parameters:
        parameter.grad = torch.rand_like(parameter)
    times = {}
    for name, options in {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}.items():
        optimiser = torch.optim.Adam(parameters, lr=1e-3, **options)
        gaps = []
        for _ in range(repeats):
            start = time.perf_counter()
            optimiser.step()
            gaps.append(time.perf_counter() - start)
        times[name] = 1000 * statistics.median(gaps)
    return times


def _median_rows(rows: list[dict]) -> list[dict]:
    """One row per configuration: the median step time over repeats (and the largest memory)."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = (row["method"], row["size"], row["precision"], row["memory_format"], row["batch"])
        merged.setdefault(key, {**row, "repeats_ms": []})["repeats_ms"].append(row["ms_per_step"])
        merged[key]["peak_mib"] = max(merged[key]["peak_mib"], row["peak_mib"])
    for row in merged.values():
        row["ms_per_step"] = statistics.median(row["repeats_ms"])
    return list(merged.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=[p.value for p in Precision])
    parser.add_argument("--memory-formats", nargs="+", default=[m.value for m in MemoryFormat],
                        choices=[m.value for m in MemoryFormat])  # fmt: skip
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process measurements per configuration")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--breakdown", nargs=2, metavar=("METHOD", "SIZE"), help="self CPU time per operator")
    parser.add_argument("--adam", action="store_true", help="also time the Adam step alone (loop, foreach, fused)")
    parser.add_argument("--profile", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1], help="tiles per vectorised fit, e.g. 1 8")
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        method, size, precision, memory_format, batch = args.one
        row = measure_one(method, int(size), precision, memory_format, args.steps, args.warmup, args.device, int(batch))
        print(json.dumps(row))
        return
    if args.profile:
        method, size, precision, memory_format = args.profile
        print(json.dumps(profile(method, int(size), precision, memory_format, args.device, args.steps)))
        return
    run = _harness.Run(args)
    configs = list(itertools.product(args.sizes, args.methods, args.precisions, args.memory_formats, args.batches))
    rows = []
    for repeat in range(args.repeats):
        for size, method, precision, memory_format, batch in configs:
            row = json.loads(_child(args, "--one", method, str(size), precision, memory_format, str(batch)))
            rows.append(row)
            print(
                f"[{repeat + 1}/{args.repeats}] {method:9s} {size:4d} px {precision:5s} {memory_format:13s} "
                f"x{batch} {row['ms_per_step']:8.1f} ms/step",
                flush=True,
            )
    merged = _median_rows(rows)
    peak = cpu_peak(merged[0]["threads"]) if merged[0]["device"] == "cpu" else None
    data: dict = {"peak": peak, "rows": merged, "runs": rows}
    data["gflop_per_step"] = {f"{m} {s}": flop_per_step(m, s) / 1e9 for m in args.methods for s in args.sizes}
    flops = {(m, s): data["gflop_per_step"][f"{m} {s}"] for m in args.methods for s in args.sizes}
    sections = [table(merged, flops, peak, args)]
    if args.breakdown:
        method, size = args.breakdown[0], int(args.breakdown[1])
        data["breakdown"] = {p: json.loads(_child(args, "--profile", method, str(size), p, "channels_last"))
                             for p in args.precisions}  # fmt: skip
        sections.append(breakdown(method, size, data["breakdown"], flop_per_step(method, size) / 1e9, peak))
    if args.adam:
        data["adam_ms"] = {m: adam_step_ms(list(build_model(_problem(256), _settings(m, "fp32", "contiguous", 1))
                                                .parameters())) for m in args.methods}  # fmt: skip
        sections.append(adam_table(data["adam_ms"]))
    run.write(args.out, "speed", "\n\n".join(sections) + "\n", data)


def _child(args: argparse.Namespace, *what: str) -> str:
    """The standard output of this script run in a fresh process with ``what`` and the run's options."""
    command = [sys.executable, __file__, *what, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--device", args.device, "--threads", str(args.threads)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


if __name__ == "__main__":
    main()
