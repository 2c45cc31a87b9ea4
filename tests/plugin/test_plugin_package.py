# SPDX-License-Identifier: GPL-2.0-or-later
"""`make check-package`: the zip passes the plugin repository's checks, and the checks refuse what it refuses."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import check_package  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--output-dir", str(folder)], check=True)
    (zip_path,) = folder.glob("mcpn-*.zip")
    return zip_path


def test_the_plugin_zip_passes(built):
    assert check_package.check(str(built)) == []
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
    assert "mcpn/LICENSE" in names and "mcpn/metadata.txt" in names
    assert not [n for n in names if n.startswith(("mcpn/tests/", "mcpn/docs/", "mcpn/scripts/"))]
    assert check_package.check(str(built), release=True)  # the placeholders are refused for a release


def rewritten(built, tmp_path, drop=(), add=None):
    out = tmp_path / "changed.zip"
    with zipfile.ZipFile(built) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name not in drop:
                target.writestr(name, source.read(name))
        for name, data in (add or {}).items():
            target.writestr(name, data)
    return str(out)


def test_refused_packages(built, tmp_path):
    problems = check_package.check(rewritten(built, tmp_path, drop={"mcpn/LICENSE"}))
    assert any("LICENSE" in p for p in problems)
    problems = check_package.check(rewritten(built, tmp_path, add={"mcpn/core/__pycache__/x.cpython-311.pyc": b"x"}))
    assert any("compiled" in p for p in problems) and any("__pycache__" in p for p in problems)
    problems = check_package.check(rewritten(built, tmp_path, add={"mcpn/.DS_Store": b"x", "other/a.txt": b"x"}))
    assert any("hidden" in p for p in problems) and any("one top folder" in p for p in problems)
    unsafe = b"import urllib.request\n\ndef get(url):\n    return urllib.request.urlopen(url).read()\n"
    problems = check_package.check(rewritten(built, tmp_path, add={"mcpn/core/fetch.py": unsafe}))
    assert any("B310" in p for p in problems), problems
    with zipfile.ZipFile(built) as archive:
        meta = archive.read("mcpn/metadata.txt").decode().replace("category=Raster", "category=Analysis")
        meta = meta.replace("\nemail=", "\nnot_email=")
    problems = check_package.check(
        rewritten(built, tmp_path, drop={"mcpn/metadata.txt"}, add={"mcpn/metadata.txt": meta})
    )
    assert any("email" in p for p in problems) and any("category" in p for p in problems)
