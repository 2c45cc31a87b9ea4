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


def test_any_bandit_finding_of_the_sites_tests_fails(built, tmp_path):
    """The site runs Bandit's enabled tests at every severity: a low-severity ``assert`` (B101) refuses the zip,
    through the command line as `make check-package` runs it; a test the site leaves off (B404) does not."""
    script = [sys.executable, str(REPO / "scripts" / "check_package.py")]
    assert subprocess.run([*script, str(built)], capture_output=True).returncode == 0
    checked = b"def ready(done):\n    assert done, 'not ready'\n    return done\n"
    changed = rewritten(built, tmp_path, add={"mcpn/core/ready.py": checked})
    done = subprocess.run([*script, changed], capture_output=True, text=True)
    assert done.returncode == 1 and "B101 (low severity) at core/ready.py:2" in done.stdout, done.stdout
    subprocess_only = b"import subprocess\n\nRUN = subprocess.run\n"
    assert check_package.check(rewritten(built, tmp_path, add={"mcpn/core/spawn.py": subprocess_only})) == []
