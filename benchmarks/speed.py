"""Speed of one optimiser step of each variant: ms/step, GFLOP/step, GFLOP/s, peak memory.

Each configuration runs in a fresh subprocess so its peak memory (VmHWM) is its
own. The step is the engine's real training step (``core.fitting.fit`` with
one target and one guide of 4 bands); the time per step is the median over
``--steps`` steps after ``--warmup`` steps, from the fit's own wall time.

    .venv/bin/python benchmarks/speed.py                     # 128/256 px, fp32 and bf16
    .venv/bin/python benchmarks/speed.py --sizes 128 256 512 --precisions fp32 bf16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import _mcpn
import torch

_mcpn.ensure_package()
from mcpn.core.device import select_device  # noqa: E402
from mcpn.core.fitting import NOISE_CHANNELS, Problem, Settings, fit  # noqa: E402
from mcpn.core.networks import MCPN  # noqa: E402

HERE = Path(__file__).resolve().parent
FLOP_PER_CYCLE_FP32 = 32  # AVX-512 / 2x256-bit FMA: 16 multiply-adds per cycle per core


def _problem(size: int, bands: int = 4) -> Problem:
    generator = torch.Generator().manual_seed(0)
    known = (torch.rand(1, 1, size, size, generator=generator) > 0.2).float().expand(1, bands, size, size)
    return Problem(
        target=torch.rand(1, bands, size, size, generator=generator) * known,
        target_known=known.contiguous(),
        guides=[torch.rand(1, bands, size, size, generator=generator)],
        guide_valid=[torch.ones(1, bands, size, size)],
        shape=(size, size),
    )


def _flop_per_step(method: str, size: int) -> float:
    """Forward + backward FLOP of the networks for one step (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = MCPN(NOISE_CHANNELS, 4, [4], method)
    z = torch.rand(1, NOISE_CHANNELS, size, size)
    with FlopCounterMode(display=False) as counter:
        out = model(z)
        loss = out.target.square().mean() + sum(g.square().mean() for g in out.guides)
        for cycle in out.cycles or []:
            loss = loss + (cycle - out.core).square().mean()
        loss.backward()
    return float(counter.get_total_flops())


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_one(method: str, size: int, precision: str, steps: int, warmup: int, device: str) -> dict:
    """Time ``steps`` steps after ``warmup`` steps in this process."""
    torch_device = select_device(device)
    stamps: list[float] = []
    settings = Settings(method=method, steps=warmup + steps, precision=precision, check_every=10**9)
    fit(_problem(size), settings, torch_device, progress=lambda s, n: stamps.append(time.perf_counter()))
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
    gaps = sorted(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :]))
    ms = 1000 * gaps[len(gaps) // 2]
    gflop = _flop_per_step(method, size) / 1e9
    memory = torch.cuda.max_memory_allocated() / 2**20 if torch_device.type == "cuda" else _peak_rss_mib()
    return {
        "method": method,
        "size": size,
        "precision": precision,
        "device": str(torch_device),
        "ms_per_step": ms,
        "gflop_per_step": gflop,
        "gflop_per_s": gflop / (ms / 1000),
        "peak_mib": memory,
        "threads": torch.get_num_threads(),
    }


def cpu_peak_gflops() -> float:
    """FP32 peak of the cores torch uses at the nominal clock (assumes FLOP_PER_CYCLE_FP32)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    mhz = [float(line.split(":")[1]) for line in cpuinfo if line.startswith("cpu MHz")]
    return torch.get_num_threads() * FLOP_PER_CYCLE_FP32 * (max(mhz) if mhz else float("nan")) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["stacked", "emergent", "direct"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "SIZE", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, size, precision = args.one
        print(json.dumps(measure_one(method, int(size), precision, args.steps, args.warmup, args.device)))
        return
    rows = []
    for size in args.sizes:
        for method in args.methods:
            for precision in args.precisions:
                command = [sys.executable, __file__, "--one", method, str(size), precision]
                command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device]
                row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                rows.append(row)
                print(f"{method:9s} {size:4d} px {precision:5s} {row['ms_per_step']:8.1f} ms/step", flush=True)
    peak = cpu_peak_gflops()
    lines = [
        "# Speed of one optimiser step",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{rows[0]['threads']} threads, device {rows[0]['device']}. FP32 peak assumed "
        f"{peak:.0f} GFLOP/s ({FLOP_PER_CYCLE_FP32} FLOP/cycle/core at the nominal clock). "
        f"Median of {args.steps} steps after {args.warmup} warm-up steps. Run: `benchmarks/speed.py`.",
        "",
        "| method | px | precision | ms/step | GFLOP/step | GFLOP/s | % of FP32 peak | peak memory (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['size']} | {r['precision']} | {r['ms_per_step']:.1f} | {r['gflop_per_step']:.1f} "
            f"| {r['gflop_per_s']:.0f} | {100 * r['gflop_per_s'] / peak:.0f} % | {r['peak_mib']:.0f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.md").write_text("\n".join(lines) + "\n")
    (args.out / "speed.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
