"""Speed inside QGIS against the engine's own, on an idle CPU and beside a second CPU job.

One fit (guided cloud inpainting of a crop of the shared Sentinel-2 pair, default
method Stacked, fixed steps, on the CPU) runs three ways, each in a fresh process:

- ``python``: the engine's raster pipeline in plain Python (``core.pipeline.inpainting``);
- ``qgis_process``: ``qgis_process run mcpn:guidedcloudinpainting``;
- ``desktop``: the QGIS desktop itself (``qgis``, on a virtual display: ``xvfb-run``;
  offscreen it does not start), the algorithm's dialog opened as the Toolbox opens it
  (``processing.createAlgorithmDialog``) and *Run*: the fit runs in a
  ``QgsProcessingAlgRunnerTask`` in ``QgsApplication.taskManager()``; the log is read from
  the dialog. The executables ``qgis`` and ``qgis_process`` load their own libraries
  (OpenBLAS among them) before Python, which plain Python does not.

Each way runs on an idle CPU (run the script under the shared CPU lock) and beside
a second CPU job that the script starts and stops: ``fit``, another MCPN fit of
the same tile in plain Python (a second algorithm run), and ``busy``, a plain
CPU-bound process (a single-threaded Python loop, like a map render or a build).
The per-step time is the engine's own (its log line "X ms per step", the mean over
the steps after the first, from ``core.model.threads``), so process start-up, QGIS's
start and the reading and writing of rasters are left out. For the ``fit``
competitor its own per-step time during the measured run is given too.

    make deploy   # qgis_process and the desktop load the plugin from .build/profile; xvfb-run: apt-get install xvfb
    .venv/bin/python benchmarks/desktop_speed.py --lock /work/scratch/cpu.lock            # 256 px, 100 steps
    .venv/bin/python benchmarks/desktop_speed.py --size 64 --steps 8 --out benchmarks/out  # smoke test
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import _harness

sys.path.insert(0, str(_harness.REPO / "scripts"))
from qgis_env import PLUGINS, QGIS_PROCESS, desktop_profile, qgis_environment  # noqa: E402

WAYS = ("python", "qgis_process", "desktop")
CONDITIONS = ("idle", "fit", "busy")
COMPETITORS = {
    "fit": "another MCPN fit of the same tile (plain Python, the engine's thread policy)",
    "busy": "a plain CPU-bound process (one Python busy loop, one thread)",
}
ALGORITHM = "mcpn:guidedcloudinpainting"
STEP_LINE = re.compile(r"fit on \S+: ([\d.]+) ms per step[^;]*(?:; CPU threads: (.*))?")
HERE = Path(__file__).resolve().parent


# --- the inputs ---------------------------------------------------------------------------------
def make_inputs(data: Path, size: int, folder: Path) -> dict[str, str]:
    """Target (2018-08-05), guide (2018-07-21), B04 B03 B02 B08 at 10 m, and a real cloud mask on their grid."""
    import numpy as np
    from osgeo import gdal

    gdal.UseExceptions()
    x0, y0 = 496, 236  # around the bundled sample's window (resources/sample)
    paths = {}
    for key, date in (("target", "2018-08-05"), ("guide", "2018-07-21")):
        vrt = gdal.BuildVRT("", [str(data / "s2_time_pair" / date / f"{b}.tif") for b in ("B04", "B03", "B02", "B08")],
                            separate=True)  # fmt: skip
        paths[key] = str(folder / f"{key}.tif")
        gdal.Translate(paths[key], vrt, srcWin=[x0, y0, size, size])
    cloud = gdal.Open(str(data / "s1_sar_guide" / "cloud_mask.tif")).ReadAsArray()
    cloud = (np.resize(cloud, (size, size)) > 0).astype(np.uint8)  # the 256 px mask, cropped (or repeated)
    template = gdal.Open(paths["target"])
    paths["mask"] = str(folder / "mask.tif")
    mask = gdal.GetDriverByName("GTiff").Create(paths["mask"], size, size, 1, gdal.GDT_Byte)
    mask.SetProjection(template.GetProjection())
    mask.SetGeoTransform(template.GetGeoTransform())
    mask.GetRasterBand(1).WriteArray(cloud)
    mask = template = None
    return paths


def parameters(inputs: dict[str, str], output: str, method: str, steps: int) -> dict[str, object]:
    """The algorithm's parameters for the fit (fixed steps on the CPU, everything else as the dialog offers)."""
    choices = _harness.module("core.choices")
    return {
        "INPUT": inputs["target"],
        "MASK": inputs["mask"],
        "MASK_VALUES": "1",
        "GUIDES": [inputs["guide"]],
        "METHOD": choices.Method.of(method).number,
        "STOPPING": 0,  # fixed: every run does all its steps
        "STEPS": steps,
        "DEVICE": choices.Device.CPU.number,
        "OUTPUT": output,
    }


# --- the ways, each in a fresh process (this script with --worker) -----------------------------------
def worker_python(params: dict) -> list[str]:
    inpainting = _harness.module("core.pipeline.inpainting")
    config, engine_callbacks = _harness.module("core.config"), _harness.module("core.callbacks")
    choices = _harness.module("core.choices")
    settings = config.Settings(method=list(choices.Method)[params["METHOD"]], stopping="fixed", steps=params["STEPS"],
                               device="cpu")  # fmt: skip
    logs: list[str] = []
    mask = inpainting.CloudMask(params["MASK"], params["MASK_VALUES"])
    callbacks = engine_callbacks.Callbacks(log=logs.append)
    inpainting.inpaint_raster(params["INPUT"], mask, params["GUIDES"], params["OUTPUT"], settings, callbacks=callbacks)
    return logs


# run inside the QGIS desktop (qgis --code): this script's folder on sys.path, then in_desktop(parameters, log file)
DESKTOP_BOOTSTRAP = (
    "import sys\nsys.path.insert(0, {folder!r})\nimport desktop_speed\ndesktop_speed.in_desktop({params!r}, {log!r})\n"
)


KEEP: list = []


def in_desktop(params: dict, log: str) -> None:
    """In the QGIS desktop: the algorithm's dialog as the Toolbox opens it, Run (the fit runs in QGIS's task
    manager), then its log into the file ``log`` and QGIS ends (exit status 0 once the run has succeeded)."""
    import processing
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QTextEdit

    def finish(window: object, ok: bool) -> None:
        Path(log).write_text(window.findChild(QTextEdit, "txtLog").toPlainText())
        os._exit(0 if ok else 1)  # at once: QGIS would ask whether to save the project

    def start() -> None:
        try:
            window = processing.createAlgorithmDialog(ALGORITHM, params)
            KEEP.append(window)  # as the Toolbox does while its dialog is open: the run's context lives in it
            window.show()
            window.algorithmFinished.connect(lambda ok, results: finish(window, ok))
            window.runAlgorithm()  # the Run button
        except Exception:
            traceback.print_exc()
            os._exit(2)

    QTimer.singleShot(500, start)  # once the main window is up


def worker_competitor(params: dict) -> None:
    """A long fit that prints the time of every step (flushed) until it is stopped."""
    inpainting = _harness.module("core.pipeline.inpainting")
    config, engine_callbacks = _harness.module("core.config"), _harness.module("core.callbacks")
    choices = _harness.module("core.choices")
    settings = config.Settings(
        method=list(choices.Method)[params["METHOD"]], stopping="fixed", steps=10**6, device="cpu"
    )
    callbacks = engine_callbacks.Callbacks(
        progress=lambda step, total: print(f"step {time.perf_counter()}", flush=True)
    )
    mask = inpainting.CloudMask(params["MASK"], params["MASK_VALUES"])
    inpainting.inpaint_raster(params["INPUT"], mask, params["GUIDES"], params["OUTPUT"], settings, callbacks=callbacks)


def worker_busy() -> None:
    while True:
        pass


def environment() -> dict[str, str]:
    """The environment qgis_process needs (``scripts/qgis_env.py``), once ``make deploy`` has enabled the plugin."""
    if not (PLUGINS / "mcpn").exists():
        sys.exit(f"{PLUGINS / 'mcpn'} is missing: run 'make deploy' first")
    return qgis_environment()


def run_way(way: str, params: dict, env: dict[str, str]) -> tuple[float, str]:
    """One fit the given way: the engine's ms per step, and on how many threads (its log says both)."""
    log = Path(params["OUTPUT"]).with_suffix(".log")
    if way == "qgis_process":
        command = [QGIS_PROCESS, "run", ALGORITHM, "--"]
        for key, value in params.items():
            command += [f"{key}={item}" for item in value] if isinstance(value, list) else [f"{key}={value}"]
    elif way == "desktop":  # QGIS's desktop needs a display (offscreen it crashes): a virtual one
        bootstrap = log.with_suffix(".py")
        bootstrap.write_text(DESKTOP_BOOTSTRAP.format(folder=str(HERE), params=params, log=str(log)))
        profile = desktop_profile(log.parent / "desktop-profile")  # in the run's scratch folder
        command = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "qgis", "--profiles-path", str(profile),
                   "--nologo", "--noversioncheck", "--code", str(bootstrap)]  # fmt: skip
        env = qgis_environment(desktop=True)
    else:
        command = [sys.executable, __file__, "--worker", way, json.dumps(params)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    lines = (log.read_text() if way == "desktop" and log.exists() else done.stdout).splitlines()
    found = [m for m in map(STEP_LINE.search, lines) if m]
    if done.returncode != 0 or len(found) != 1:
        raise RuntimeError(f"{way} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return float(found[0].group(1)), found[0].group(2) or ""


class Competitor:
    """The second CPU job, started before a measured run and stopped after it."""

    def __init__(self, kind: str, params: dict, env: dict[str, str]) -> None:
        self.kind = kind
        command = [sys.executable, __file__, "--worker", "competitor" if kind == "fit" else "busy", json.dumps(params)]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        if kind == "fit":  # measure only once it is fitting: wait for its second step
            for _ in range(2):
                if not self.process.stdout.readline():
                    raise RuntimeError("the competing fit ended before its second step")
        else:
            time.sleep(1.0)

    def stop(self, start: float, end: float) -> float | None:
        """Stop it; for a fit, its mean ms per step between ``start`` and ``end`` (perf_counter times)."""
        self.process.kill()
        output, _ = self.process.communicate()
        if self.kind != "fit":
            return None
        stamps = [float(line.split()[1]) for line in output.splitlines() if line.startswith("step ")]
        inside = [b - a for a, b in zip(stamps, stamps[1:]) if start <= a and b <= end]
        return 1000 * statistics.mean(inside) if inside else None


def measure_one(way: str, condition: str, params: dict, env: dict[str, str]) -> dict:
    """One fit the given way beside the given competitor (none when idle)."""
    load = _harness.module("core.model.threads").OtherLoad(
        children=True
    )  # this script's fits are its children: not others
    competitor = Competitor(condition, params, env) if condition != "idle" else None
    start = time.perf_counter()
    try:
        ms, threads = run_way(way, params, env)
    finally:
        other = competitor.stop(start, time.perf_counter()) if competitor else None
    return {"condition": condition, "way": way, "ms_per_step": ms, "threads": threads,
            "competitor_ms_per_step": other, "foreign_cores": round(load.cores(), 2)}  # fmt: skip


def describe(row: dict) -> str:
    other = row["competitor_ms_per_step"]
    return (
        f"{row['condition']:5s} {row['way']:13s} {row['ms_per_step']:8.1f} ms/step"
        + (f", competitor {other:.0f} ms/step" if other else "")
        + f", threads: {row['threads'] or '-'}, other processes {row['foreign_cores']:.2f} cores"
        + f" ({row['attempts']} attempt(s))"
    )


def measure(args: argparse.Namespace, params: dict, env: dict[str, str]) -> list[dict]:
    """Every way in every condition, ``repeats`` times; a run during which other processes used more than
    ``max_foreign`` cores is run again (at most ``attempts`` times in all; the quietest attempt is kept)."""
    rows = []
    for repeat in range(args.repeats):
        for condition in args.conditions:
            for way in args.ways:
                output = str(Path(params["OUTPUT"]).with_name(f"{way}_{condition}.tif"))
                attempts = []
                while len(attempts) < args.attempts and (
                    not attempts or attempts[-1]["foreign_cores"] > args.max_foreign
                ):
                    if attempts:
                        time.sleep(20)  # someone else's job (not under the lock): wait a little, try again
                    attempts.append(measure_one(way, condition, {**params, "OUTPUT": output}, env))
                row = {"repeat": repeat, **min(attempts, key=lambda r: r["foreign_cores"]), "attempts": len(attempts)}
                rows.append(row)
                print(f"[{repeat + 1}/{args.repeats}] {describe(row)}", flush=True)
    return rows


def report(rows: list[dict], args: argparse.Namespace) -> str:
    def median(condition: str, way: str, key: str = "ms_per_step") -> float | None:
        values = [r[key] for r in rows if r["condition"] == condition and r["way"] == way and r[key] is not None]
        return statistics.median(values) if values else None

    conditions = [c for c in CONDITIONS if c in args.conditions]
    busy = [c for c in conditions if c != "idle"]
    jobs = "; ".join(f"*{c}*: {COMPETITORS[c]}" for c in busy)
    columns = [f"{c} (ms/step)" for c in conditions] + [f"{c} / idle" for c in busy if "idle" in conditions]
    lines = [
        f"Fit: guided cloud inpainting, {args.size} x {args.size} px, 4 bands, one 4-band guide, method {args.method}, "
        f"{args.steps} fixed steps on the CPU; per-step time from the engine's log (mean of steps 2-{args.steps}), "
        f"median over {args.repeats} repeat(s)."
        + (f" Second CPU job: {jobs}." if jobs else "")
        + " In brackets: the ratio to plain Python on the idle CPU.",
        "",
        "| way | " + " | ".join(columns) + " |",
        "|---" * (1 + len(columns)) + "|",
    ]
    base = median("idle", "python") if "idle" in conditions else None
    for way in args.ways:
        cells = []
        for condition in conditions:
            value = median(condition, way)
            ratio = f" ({value / base:.2f}x)" if value and base and way != "python" and condition == "idle" else ""
            cells.append(f"{value:.1f}{ratio}" if value else "-")
        idle = median("idle", way)
        for condition in busy if idle else ():
            value = median(condition, way)
            cells.append(f"{value / idle:.2f}x" if value else "-")
        lines.append(f"| {way} | " + " | ".join(cells) + " |")
    foreign = [r["foreign_cores"] for r in rows]
    lines += [
        "",
        f"Processes not started by this script used {statistics.median(foreign):.2f} cores (median over the "
        f"runs; at most {max(foreign):.2f}) while the fits ran (/proc/stat): the *idle* column is idle up to that.",
    ]
    if "fit" in conditions:
        lines += [
            "",
            "The competing fit meanwhile (ms/step; alone it costs what *python, idle* does): "
            + ", ".join(
                f"{way} {value:.1f}" for way in args.ways if (value := median("fit", way, "competitor_ms_per_step"))
            ),
        ]
    lines += [
        "",
        "Each run (threads: the engine's count of steps per CPU thread count; attempts: runs made until other "
        f"processes used at most {args.max_foreign} cores, the quietest kept):",
        "",
    ]
    lines += [f"- {describe(row)}" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="tile side in pixels (at most 256)")
    parser.add_argument("--steps", type=int, default=100, help="fixed steps per fit (a real fit runs hundreds)")
    parser.add_argument("--method", default="stacked")
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data", type=Path, default=_harness.DATA_DIR)
    parser.add_argument("--out", type=Path, default=_harness.RESULTS / "desktop")
    parser.add_argument("--name", default="desktop_speed", help="name of the result files (.md, .json)")
    parser.add_argument("--max-foreign", type=float, default=0.2, help="cores others may use during a run")
    parser.add_argument("--attempts", type=int, default=3, help="runs per measurement while others use more")
    parser.add_argument(
        "--lock", type=Path, help="a lock file held while measuring (the shared CPU lock): idle is idle"
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        way, params = args.worker[0], json.loads(args.worker[1])
        if way == "busy":
            worker_busy()
        elif way == "competitor":
            worker_competitor(params)
        else:
            print("\n".join(worker_python(params)), flush=True)
        return
    env = environment()
    lock = open(args.lock, "a") if args.lock else None  # noqa: SIM115 (held until the process ends)
    if lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
    run = _harness.Run(args)
    run.header["CPU lock"] = f"{args.lock}, held while measuring" if lock else "none: other jobs may have run"
    with tempfile.TemporaryDirectory(prefix="mcpn-desktop-speed-") as folder:
        inputs = make_inputs(args.data, args.size, Path(folder))
        params = parameters(inputs, str(Path(folder) / "out.tif"), args.method, args.steps)
        rows = measure(args, params, env)
    jobs = "; ".join(f"{c}: {COMPETITORS[c]}" for c in args.conditions if c in COMPETITORS)
    run.header["second CPU job"] = jobs or "none (idle only)"
    run.write(args.out, args.name, report(rows, args), rows)


if __name__ == "__main__":
    main()
