"""What every benchmark shares: the engine imported from this checkout, the run header, result files, plots.

The plugin root is a Python package whose modules use relative imports
(``mcpn.core.pipeline.api`` inside QGIS). A checkout is not necessarily named ``mcpn``,
so a symlink ``.build/pkg/mcpn -> <repo root>`` is made (``.build`` is
git-ignored) and ``.build/pkg`` is put on ``sys.path``. A results file is
written by its script only, with a header saying how it was made.

A result is the commit's: a run refuses to start when the script, the modules the benchmarks share
(``_harness.py``, ``cases.py``) or ``core/`` differ from the commit it starts from (uncommitted or
untracked files). ``MCPN_ALLOW_DIRTY=1`` allows such a trial run, its header saying "(uncommitted
changes)", but only with ``--out`` outside ``benchmarks/results/``.
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


SHARED = ("benchmarks/_harness.py", "benchmarks/cases.py", "core")  # what every script's results depend on
ALLOW_DIRTY = "MCPN_ALLOW_DIRTY"


def _state(script: Path, repo: Path = REPO) -> tuple[str, bool]:
    """The commit ``repo`` is at and whether ``script`` or ``SHARED`` differ from it (True where git cannot say)."""
    script = script.resolve()
    paths = [*SHARED, *([str(script.relative_to(repo.resolve()))] if repo.resolve() in script.parents else [])]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", *paths], cwd=repo, capture_output=True, text=True
        )
    except OSError:  # no git
        return "unknown", True
    if head.returncode or status.returncode or not head.stdout.strip():
        return "unknown", True
    return head.stdout.strip(), bool(status.stdout.strip())


def refusal(out: Path | None, dirty: bool) -> str | None:
    """Why a run with uncommitted changes may not write into ``out``; None where it may."""
    if not dirty or out is None:
        return None
    inside = RESULTS.resolve() in (out.resolve(), *out.resolve().parents)
    if not inside and os.environ.get(ALLOW_DIRTY) == "1":
        return None
    why = "the script, benchmarks/_harness.py, benchmarks/cases.py or core/ differ from the commit (git status)"
    if inside:
        trial = f"trial run with {ALLOW_DIRTY}=1 and --out elsewhere (benchmarks/out/...)"
        return f"{why}: benchmarks/results/ takes a commit's results only; commit first, or make a {trial}"
    return f"{why}: set {ALLOW_DIRTY}=1 for a trial run (its header will say so), or commit first"


class Run:
    """One benchmark run: notes how it starts (commit, machine, load), writes its results with that header."""

    def __init__(self, args: object) -> None:
        commit, self.dirty = _state(Path(sys.argv[0]))
        why = refusal(getattr(args, "out", None), self.dirty)
        if why:  # before the work, not after it
            raise SystemExit(f"Refusing to run: {why}.")
        import torch

        self.started = time.perf_counter()
        self.header = {
            "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
            "commit at start": commit + (" (uncommitted changes)" if self.dirty else ""),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads",
            "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }

    def write(self, out: Path, name: str, report: str, data: object) -> None:
        """``name``.md (header and report) and ``name``.json (header and raw data) in ``out``; print the report."""
        why = refusal(out, self.dirty)
        if why:
            raise SystemExit(f"Refusing to write {out}: {why}.")
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
