# SPDX-License-Identifier: GPL-2.0-or-later
"""Check that the engine's Python packages can be imported, without importing them.

The plugin never installs anything itself: when a package is missing the
algorithms stop with :func:`install_message`, which tells the user how to
install the packages into the Python that runs QGIS on their platform.
"""

from __future__ import annotations

import importlib.util
import sys

# import name -> pip distribution name
REQUIRED = {"torch": "torch", "numpy": "numpy", "scipy": "scipy", "skimage": "scikit-image"}
REPORT_REQUIRED = {"matplotlib": "matplotlib"}  # only for the HTML run report (its plots)


def missing_packages(required: dict[str, str] = REQUIRED) -> list[str]:
    """pip names of the ``required`` packages that cannot be found (empty when all are there)."""
    missing = []
    for module, dist in required.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(dist)
    return missing


def install_message(missing: list[str] | None = None, platform: str | None = None) -> str:
    """Instructions to install the missing packages for the given (default: this) platform."""
    missing = missing_packages() if missing is None else missing
    if not missing:
        return "All required Python packages (torch, numpy, scipy, scikit-image) are installed."
    platform = platform or sys.platform
    pkgs = " ".join(missing)
    pip_cpu = f"-m pip install {pkgs}"
    if "torch" in missing:
        pip_cpu += " --extra-index-url https://download.pytorch.org/whl/cpu"
    lines = [f"MCPN needs these Python packages, which QGIS's Python cannot find: {', '.join(missing)}.", ""]
    if platform.startswith("win"):
        lines += [
            "Windows: close QGIS, open the 'OSGeo4W Shell' (Start menu, QGIS folder) and run:",
            f"    python {pip_cpu}",
            "then start QGIS again.",
        ]
    elif platform == "darwin":
        lines += [
            "macOS: close QGIS and run in a Terminal (QGIS's own Python):",
            f"    /Applications/QGIS.app/Contents/MacOS/bin/python3 {pip_cpu}",
            "(adapt the path if QGIS is installed elsewhere), then start QGIS again.",
        ]
    else:
        lines += [
            "Linux: install the packages for the Python that QGIS uses, for example",
            f"    python3 {pip_cpu} --user",
            "(on Debian/Ubuntu the system Python may need a virtual environment made with",
            "'python3 -m venv --system-site-packages', whose site-packages you add to PYTHONPATH",
            "before starting QGIS), then start QGIS again.",
        ]
    lines += [
        "",
        'numpy must stay below 2.0 for QGIS\'s GDAL bindings (add "numpy<2" to the command).',
        f"Python running QGIS: {sys.executable} ({sys.version.split()[0]}).",
    ]
    return "\n".join(lines)
