"""The environment in which qgis_process and the QGIS desktop load this checkout's plugin, defined once.

The Makefile prefixes its QGIS commands with what this script prints (``NAME=value``
words, shell-quoted); the plugin tests and the desktop benchmark import
:func:`qgis_environment`. The settings: offscreen Qt, no ``.aux.xml`` files
beside the outputs, the ``.build`` profile where ``make deploy`` enables the
plugin, and the venv's packages (torch ...) importable by QGIS's embedded
Python, which does not see the venv otherwise.

Usage: python scripts/qgis_env.py [--desktop-profile FOLDER]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sysconfig
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / ".build" / "profile"
PLUGINS = PROFILE / "profiles" / "default" / "python" / "plugins"
QGIS_PROCESS = os.environ.get("MCPN_QGIS_PROCESS", "qgis_process.bin")  # /usr/bin/qgis_process rejects 3.22


def qgis_settings(base: Mapping[str, str] = os.environ, desktop: bool = False) -> dict[str, str]:
    """The variables to set on top of ``base`` (PYTHONPATH extends ``base``'s).

    ``desktop``: for the QGIS desktop on a (virtual) display, which takes its
    profile from ``--profiles-path`` (:func:`desktop_profile`): neither
    offscreen Qt nor qgis_process's profile.
    """
    paths = [*([] if desktop else [str(PLUGINS)]), sysconfig.get_paths()["purelib"]]
    paths += base.get("PYTHONPATH", "").split(os.pathsep)
    settings = {
        "GDAL_PAM_ENABLED": "NO",
        "XDG_RUNTIME_DIR": base.get("XDG_RUNTIME_DIR") or f"/tmp/runtime-{os.getuid()}",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in paths if p)),
        "MCPN_QGIS_PROCESS": QGIS_PROCESS,
    }
    if not desktop:
        settings.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(PROFILE))
    return settings


def qgis_environment(base: Mapping[str, str] = os.environ, desktop: bool = False) -> dict[str, str]:
    """``base`` (the current environment) with :func:`qgis_settings` applied."""
    changed = {**base, **qgis_settings(base, desktop)}
    if desktop:
        changed.pop("QT_QPA_PLATFORM", None)  # the desktop crashes offscreen
    return changed


def desktop_profile(folder: Path) -> Path:
    """``folder`` made (once) a profiles folder for the QGIS desktop with the plugin enabled.

    Not qgis_process's profile: the desktop enables QGIS's own plugins in the
    profile it starts with, and qgis_process would then print their warnings.
    """
    default = folder / "profiles" / "default"
    plugin = default / "python" / "plugins" / "mcpn"
    if not plugin.exists():
        plugin.parent.mkdir(parents=True, exist_ok=True)
        plugin.symlink_to(REPO, target_is_directory=True)
    ini = default / "QGIS" / "QGIS3.ini"
    if not ini.exists():
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text("[PythonPlugins]\nmcpn=true\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--desktop-profile", type=Path, help="make this profiles folder and print the desktop's")
    args = parser.parse_args()
    if args.desktop_profile:
        desktop_profile(args.desktop_profile)
    settings = qgis_settings(desktop=bool(args.desktop_profile))
    print(" ".join(f"{name}={shlex.quote(value)}" for name, value in settings.items()))


if __name__ == "__main__":
    main()
