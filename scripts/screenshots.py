# SPDX-License-Identifier: GPL-2.0-or-later
"""Screenshots of the algorithm dialogs (help panel included) and of a run's log, from the real QGIS desktop.

Run by ``make screenshots``: QGIS starts under a virtual display (Xvfb) with this
checkout's profile and runs this file (``qgis --code``). With the bundled
sample (``resources/sample``) loaded as layers, each algorithm's dialog is opened
the way the Processing Toolbox opens it (``processing.createAlgorithmDialog``),
filled with the sample and grabbed to PNG; then the inpainting dialog's *Run* is
pressed (``MCPN_SCREENSHOT_STEPS`` steps; the run is a real fit in QGIS's background
task) and its log is grabbed once the run has finished. QGIS then exits; the exit
status says whether every picture was written.

Environment: ``MCPN_SCREENSHOTS`` (the folder for the PNGs), ``MCPN_SCREENSHOT_STEPS``.
"""

from __future__ import annotations

import glob
import os
import sys
import traceback

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface

OUT = os.environ.get("MCPN_SCREENSHOTS", "docs/screenshots")
STEPS = int(os.environ.get("MCPN_SCREENSHOT_STEPS", "300"))
SIZE = (1060, 760)  # the dialog, in pixels
KEEP: list = []


def sample_folder() -> str:
    return os.path.join(os.path.dirname(sys.modules["mcpn"].__file__), "resources", "sample")


def sample_layers() -> dict[str, QgsRasterLayer]:
    """The bundled sample as project layers, named as a user would see them."""
    folder = sample_folder()
    layers = {}
    for key, name in (
        ("target", "target_2018-08-05"),
        ("guide", "guide_2018-07-21"),
        ("mask", "cloud_mask"),
        ("low", "sr_b08_20m"),
        ("guides10", "sr_guides_10m"),
    ):
        layer = QgsRasterLayer(os.path.join(folder, f"{name}.tif"), name)
        if not layer.isValid():
            raise RuntimeError(f"cannot load the sample raster {name}.tif")
        layers[key] = QgsProject.instance().addMapLayer(layer)
    return layers


def dialog(algorithm: str, parameters: dict):
    """The algorithm's dialog as the Processing Toolbox opens it, filled in, shown at a readable size."""
    import processing

    window = processing.createAlgorithmDialog(algorithm, parameters)
    KEEP.append(window)  # as the Toolbox does while its dialog is open: a run's context lives in it
    window.resize(*SIZE)
    window.show()
    settle()
    return window


def settle() -> None:
    for _ in range(20):
        QgsApplication.processEvents()


def grab(window, name: str) -> None:
    settle()
    path = os.path.join(OUT, name)
    if not window.grab().save(path, "PNG"):
        raise RuntimeError(f"cannot write {path}")
    try:  # 64 colours, no dithering: a third of the size, the same to the eye
        from PIL import Image

        Image.open(path).convert("RGB").quantize(64, dither=0).save(path, optimize=True)
    except ImportError:
        pass
    print(f"screenshot: {path} ({os.path.getsize(path) // 1024} KiB)", flush=True)


def take() -> None:
    os.makedirs(OUT, exist_ok=True)
    layers = sample_layers()
    inpainting = {
        "INPUT": layers["target"].id(),
        "MASK": layers["mask"].id(),
        "MASK_VALUES": "1",
        "GUIDES": [layers["guide"].id()],
    }
    grab(dialog("mcpn:guidedsuperresolution", {"INPUT": layers["low"].id(), "GUIDES": [layers["guides10"].id()]}),
         "super_resolution_dialog.png")  # fmt: skip
    target, guide = sorted(glob.glob(os.path.join(sample_folder(), "sentinel2", "*.zip")), reverse=True)
    grab(dialog("mcpn:sentinel2product", {"INPUT": target, "GUIDES": [guide]}), "sentinel2_dialog.png")
    window = dialog("mcpn:guidedcloudinpainting", {**inpainting, "STEPS": STEPS})
    grab(window, "inpainting_dialog.png")
    window.algorithmFinished.connect(lambda ok, results: finish(window, ok))
    window.runAlgorithm()  # the Run button: the fit runs in QGIS's task manager; finish() follows


def finish(window, ok: bool) -> None:
    try:
        if not ok:
            raise RuntimeError("the run from the dialog failed")
        window.show()
        window.showLog()
        grab(window, "run_log.png")
    except Exception:
        fail()
    QgsProject.instance().clear()
    os._exit(0)  # at once: QGIS would ask whether to save the project; the pictures are written


def fail() -> None:
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)


def start() -> None:
    try:
        if iface is None:
            raise RuntimeError("run inside the QGIS desktop: make screenshots")
        take()
    except Exception:
        fail()


QTimer.singleShot(1000, start)  # once the main window is up
