"""What every benchmark shares: the engine imported from this checkout, the run header, result files, plots.

The plugin root is a Python package whose modules use relative imports
(``mcpn.core.pipeline.api`` inside QGIS). A checkout is not necessarily named ``mcpn``,
so a symlink ``.build/pkg/mcpn -> <repo root>`` is made (``.build`` is
git-ignored) and ``.build/pkg`` is put on ``sys.path``. A results file is
written by its script only, with a header saying how it was made.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
PKG_DIR = REPO / ".build" / "pkg"
DATA_DIR = REPO.parent / "shared" / "data"  # ../shared/data relative to the repo root
RESULTS = REPO / "benchmarks" / "results"


def module(name: str) -> ModuleType:
    """Import ``mcpn.<name>`` (e.g. ``"core.pipeline.api"``) from this checkout."""
    link = PKG_DIR / "mcpn"
    if not link.exists():
        PKG_DIR.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():  # dangling link from a moved checkout
            link.unlink()
        os.symlink(REPO, link, target_is_directory=True)
    elif link.resolve() != REPO:
        raise RuntimeError(f"{link} points to {link.resolve()}, not to this checkout {REPO}")
    if str(PKG_DIR) not in sys.path:
        sys.path.insert(0, str(PKG_DIR))
    return importlib.import_module(f"mcpn.{name}")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "core"], cwd=REPO, capture_output=True, text=True)
        return (out.stdout.strip() or "unknown") + (" (core/ modified)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


class Run:
    """One benchmark run: notes how it starts (commit, machine, load), writes its results with that header."""

    def __init__(self, args: object) -> None:
        import torch

        self.started = time.perf_counter()
        self.header = {
            "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
            "commit at start": _commit(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads",
            "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }

    def write(self, out: Path, name: str, report: str, data: object) -> None:
        """``name``.md (header and report) and ``name``.json (header and raw data) in ``out``; print the report."""
        header = {**self.header, "wall time (s)": round(time.perf_counter() - self.started)}
        out.mkdir(parents=True, exist_ok=True)
        lines = [f"# {name}", "", *(f"- {key}: {value}" for key, value in header.items()), "", report]
        (out / f"{name}.md").write_text("\n".join(lines))
        (out / f"{name}.json").write_text(json.dumps({"run": header, "data": data}, indent=1, default=str))
        print(report)


def plot_quality_time(records: list[dict], path: Path, budgets: tuple[int, ...]) -> None:
    """Masked SSIM against CPU seconds per case: MCPN's curves (mean over seeds), the baselines as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cases = list(dict.fromkeys(r["case"] for r in records))
    columns = min(4, len(cases))
    rows = -(-len(cases) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax, case in zip(axes.flat, cases):
        for record in (r for r in records if r["case"] == case and r["method"] == "baselines"):
            for name, value in record["baselines"].items():
                ax.plot(max(value["seconds"], 0.1), value["ssim"], "o", label=name)
        groups = dict.fromkeys((r["method"], r.get("setup")) for r in records if r["case"] == case and "curve" in r)
        for method, setup in groups:
            fits = [r for r in records if r["case"] == case and r["method"] == method and r.get("setup") == setup]
            steps = sorted({int(s) for r in fits for s in r["curve"]})
            if not steps:
                continue
            values = np.array([[r["curve"].get(str(s), np.nan) for s in steps] for r in fits])
            seconds = np.array(steps) * np.mean([r["seconds_per_step"] for r in fits])
            ax.plot(seconds, np.nanmean(values, axis=0), "-", label=f"MCPN {method} ({setup})")
        for budget in budgets:
            ax.axvline(budget, color="0.85", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(case, fontsize=9)
        ax.set_xlabel("CPU seconds per tile")
        ax.set_ylabel("masked SSIM")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(cases) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
