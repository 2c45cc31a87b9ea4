"""Import the plugin's engine as the package ``mcpn`` from a source checkout; write result files.

The plugin root is a Python package whose modules use relative imports
(``mcpn.core.api`` inside QGIS). A checkout directory is not necessarily named
``mcpn``, so a symlink ``.build/pkg/mcpn -> <repo root>`` is made (``.build`` is
git-ignored) and ``.build/pkg`` is put on ``sys.path``.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
PKG_DIR = REPO / ".build" / "pkg"
DATA_DIR = REPO.parent / "shared" / "data"  # ../shared/data relative to the repo root


def ensure_package() -> None:
    """Create the ``mcpn`` symlink if needed and put its parent on ``sys.path``."""
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


def module(name: str) -> ModuleType:
    """Import ``mcpn.<name>`` (e.g. ``"core.api"``, ``"core.metrics"``)."""
    ensure_package()
    return importlib.import_module(f"mcpn.{name}")


@functools.cache
def git_commit() -> str:
    """The checkout's short commit hash when first asked (the code a run started with; "unknown" outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def write_results(out: Path, name: str, report: str, data: dict) -> None:
    """Write ``name``.md (the report) and ``name``.json (the raw data) in ``out``, and print the report."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(report)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(report)


def run_in_workers(function: Callable[..., dict], jobs: list[tuple], workers: int, describe: Callable[[dict], str]):
    """``function(*job)`` for every job in ``workers`` fresh processes; the results in job order, each printed."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(function, *job) for job in jobs]
        results = []
        for future in futures:
            results.append(future.result())
            print(describe(results[-1]), flush=True)
    return results


def start() -> float:
    """Note the commit a run starts from (for :func:`run_header`); return the start time."""
    import time

    git_commit()
    return time.perf_counter()


def run_header(started: float, workers: str, **fields: object) -> dict:
    """What a result file records about its run: command, commit, ``fields``, machine, wall time and date.

    The commit is the one :func:`start` noted, not one made while a long run went on.
    """
    import platform
    import time

    import torch

    return {
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "commit": git_commit(),
        **fields,
        "machine": f"{platform.machine()}, torch {torch.__version__}, {workers}",
        "total wall time (s)": round(time.perf_counter() - started),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
