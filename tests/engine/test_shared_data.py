"""The tests' rule for ../shared/data (``require_data`` in tests/conftest.py): skip where absent, fail in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFTEST = REPO / "tests" / "conftest.py"
QGIS_ENV = REPO / "scripts" / "qgis_env.py"  # the root conftest takes the profile's paths from it
NEEDS_DATA = "def test_needs_the_sentinel_2_pair(s2):\n    assert s2.is_dir()\n"


def _pytest_without_data(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    """Run a test that needs the data under a copy of the root conftest in a checkout with no ../shared/data."""
    tests, scripts = tmp_path / "repo" / "tests", tmp_path / "repo" / "scripts"
    tests.mkdir(parents=True)
    scripts.mkdir()
    shutil.copy(CONFTEST, tests / "conftest.py")
    shutil.copy(QGIS_ENV, scripts / "qgis_env.py")
    (tests / "test_needs_data.py").write_text(NEEDS_DATA)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci:
        env["CI"] = "true"
    command = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "-p", "no:pytest_qgis", str(tests)]
    return subprocess.run(command, cwd=tests.parent, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
def test_without_the_shared_data_a_test_skips_with_a_reason_and_fails_in_ci(tmp_path, ci) -> None:
    assert not (tmp_path / "shared" / "data").exists()
    run = _pytest_without_data(tmp_path, ci)
    assert "shared sample data not found" in run.stdout, run.stdout + run.stderr
    if ci:
        # the fixture fails in its setup: pytest counts an error, and the run fails (exit status 1)
        assert run.returncode == 1 and "Failed: shared sample data not found" in run.stdout, run.stdout
    else:
        assert run.returncode == 0 and "1 skipped" in run.stdout, run.stdout
