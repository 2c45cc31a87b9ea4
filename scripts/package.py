# SPDX-License-Identifier: GPL-2.0-or-later
"""Build dist/mcpn-<version>.zip for the QGIS plugin manager: one top folder ``mcpn/``.

Packs the plugin's runtime files (git-tracked plus untracked-but-not-ignored ones) and
leaves out tests, benchmarks, scripts, CI and development files.

Usage: python3 scripts/package.py [--output-dir dist]
"""

from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXCLUDED_DIRS = ("tests/", "benchmarks/", "scripts/", "docs/", ".ci/", ".build/", ".venv/", "dist/", ".github/")
EXCLUDED_FILES = {"Makefile", "pyproject.toml", "requirements.txt", ".gitignore", ".gitattributes"}


def _listed() -> list[str]:
    """Files git knows (tracked or not ignored); outside a git checkout, every file below the root."""
    try:
        return subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        found = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files]
        return found


def plugin_files() -> list[str]:
    listed = _listed()
    keep = []
    for path in listed:
        if path.startswith(EXCLUDED_DIRS) or path in EXCLUDED_FILES or "__pycache__" in path:
            continue
        if path.endswith((".pyc", ".aux.xml")) or not os.path.isfile(os.path.join(ROOT, path)):
            continue
        keep.append(path)
    return sorted(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=os.path.join(ROOT, "dist"))
    args = parser.parse_args()
    meta = configparser.ConfigParser()
    meta.read(os.path.join(ROOT, "metadata.txt"))
    version = meta["general"]["version"]
    os.makedirs(args.output_dir, exist_ok=True)
    target = os.path.join(args.output_dir, f"mcpn-{version}.zip")
    files = plugin_files()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(os.path.join(ROOT, path), f"mcpn/{path}")
    print(f"{target}: {len(files)} files")


if __name__ == "__main__":
    main()
