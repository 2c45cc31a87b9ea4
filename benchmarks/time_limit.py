"""What the time limit buys at scene scale: the same large scene filled under several time limits.

The ``--size`` px mosaic of :mod:`scene_scale` (B04 B03 B02 B08, 20 % cloud in real shapes in every tile, the
guide on a grid shifted by half a pixel) is filled with the engine's defaults (one network for the scene) under
each of ``--limits`` (minutes, 0: none), each run in a fresh process, one after the other, and scored over the
clouds of the diagonal blocks beside the moving-window guide regression. Per limit the report gives the time
the run took, the time its scene network got and its steps, the tiles that kept their instant estimate because
they were reached behind time, masked SSIM and RMSE; the plot shows SSIM against the minutes taken.

    python benchmarks/time_limit.py [--size 2136] [--limits 0,6,4,2] [--name time_limit_2136]

Results: benchmarks/results/scene_scope/<name>.{md,json,png}.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from _harness import RESULTS, Run, module
from scene import WORK
from scene_scale import BLOCK, filled, scene_inputs, scores_of

module("core")
from mcpn.core.config import Settings  # noqa: E402


def fit_steps(log: list[str], steps: int) -> int:
    """The scene network's steps: where the log says the time limit stopped it, else all ``steps``."""
    stopped = [re.search(r"scene network: .* after (\d+) steps", line) for line in log]
    return next((int(m.group(1)) for m in stopped if m), steps)


def fit_seconds(log: list[str]) -> float | None:
    """The seconds the time limit gave the scene network, as its log says (None without a limit)."""
    given = [re.search(r"the scene network gets ([\d.]+) s", line) for line in log]
    return next((float(m.group(1)) for m in given if m), None)


def behind_time(notes: list[str]) -> int:
    """Tiles reached behind time (they kept their instant estimate), from the run's time-limit note."""
    found = [re.search(r"; (\d+) of \d+ tile\(s\) stopped", note) for note in notes]
    return next((int(m.group(1)) for m in found if m), 0)


def plot(rows: list[dict], regression: float, path: Path) -> None:
    """Masked SSIM against the minutes each run took, the regression as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([r["minutes"] for r in rows], [r["ssim"] for r in rows], "o-", label="MCPN, one network for the scene")
    for row in rows:
        ax.annotate(row["label"], (row["minutes"], row["ssim"]), fontsize=7, xytext=(4, -10),
                    textcoords="offset points")  # fmt: skip
    ax.axhline(regression, color="0.5", linestyle="--", label="moving-window guide regression")
    ax.set_xlabel("minutes, end to end, two cores")
    ax.set_ylabel("masked SSIM over the clouds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2 * BLOCK, help="side of the mosaic in px (at least 1068)")
    parser.add_argument("--limits", default="0,6,4,2", help="time limits in minutes, comma-separated (0: none)")
    parser.add_argument("--name", default="time_limit_2136", help="results file name")
    parser.add_argument("--out", type=Path, default=RESULTS / "scene_scope")
    args = parser.parse_args()
    if args.size < BLOCK:
        parser.error(f"--size must be at least {BLOCK}")
    limits = [float(value) for value in args.limits.split(",")]
    run = Run(args)
    target, guide, mask = scene_inputs(args.size)
    output = WORK / f"time_limit_filled_{args.size}.tif"
    rows = []
    for limit in limits:
        settings = Settings(device="cpu", scope="scene", time_limit=limit)
        result, peak, log = filled(target, mask, guide, output, settings)
        _, means, _ = scores_of(target, mask, guide, output)
        rows.append({
            "limit": limit, "label": f"{limit:g} min" if limit else "none", "minutes": result.seconds / 60,
            "fit_seconds_given": fit_seconds(log), "fit_s": result.stages.get("fit", 0.0),
            "steps": fit_steps(log, settings.steps), "behind_time": behind_time(result.notes),
            "kept_estimate": sum(step == 0 for step in result.chosen_steps), "tiles": result.fitted,
            "stages": result.stages, "peak_rss_mib": peak, "log": log, **means,
        })  # fmt: skip
    regression = rows[0]["regression_ssim"]
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, regression, args.out / f"{args.name}.png")
    table = [
        "| time limit | run took | scene network: time, steps | tiles behind time | tiles keeping their estimate "
        "| masked SSIM | RMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['label']} | {r['minutes']:.1f} min | {r['fit_s'] / 60:.1f} min, {r['steps']} | {r['behind_time']} "
            f"of {r['tiles']} | {r['kept_estimate']} of {r['tiles']} | {r['ssim']:.3f} | {r['rmse']:.0f} |"
        )
    report = "\n".join([
        f"The {args.size} x {args.size} px scene of `scene_scale.py` ({rows[0]['tiles']} cloudy tiles, "
        f"{100 * rows[0]['cloud']:.0f} % cloud over the scored blocks), the engine's defaults under each time "
        "limit, one run after the other on the same machine:",
        "",
        *table,
        "",
        f"Moving-window guide regression on the same pixels: masked SSIM {regression:.3f} "
        f"(RMSE {rows[0]['regression_rmse']:.0f}). Plot: `{args.name}.png`.",
    ])  # fmt: skip
    run.write(args.out, args.name, report, {"size": args.size, "rows": rows, "regression_ssim": regression})


if __name__ == "__main__":
    main()
