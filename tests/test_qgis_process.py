# SPDX-License-Identifier: GPL-2.0-or-later
"""The algorithms through the qgis_process command line (--json), as in scripts and CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
from conftest import PLUGINS, PROFILE, block_mask, poisoned, raster_info

QGIS_PROCESS = os.environ.get("MCPN_QGIS_PROCESS", "qgis_process.bin")


def qgis_process_env() -> dict:
    """The environment `make` gives qgis_process: offscreen, the .build profile, venv packages importable."""
    env = dict(os.environ)
    site = sysconfig.get_paths()["purelib"]
    paths = [str(PLUGINS), site] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QGIS_CUSTOM_CONFIG_PATH=str(PROFILE),
        PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
        XDG_RUNTIME_DIR=env.get("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}"),
    )
    return env


def qgis_process(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [QGIS_PROCESS, *args], env=qgis_process_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def enabled():
    if shutil.which(QGIS_PROCESS) is None:
        pytest.fail(f"{QGIS_PROCESS} not found: install QGIS (make venv)")
    done = qgis_process("plugins", "enable", "mcpn", timeout=120)
    assert done.returncode == 0 or "already enabled" in done.stdout + done.stderr, done.stderr


def parse_json(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


def test_listed(enabled):
    done = qgis_process("--json", "list", timeout=120)
    assert done.returncode == 0, done.stderr
    providers = parse_json(done.stdout)["providers"]
    algorithms = providers["mcpn"]["algorithms"]
    assert set(algorithms) == {"mcpn:guidedcloudinpainting", "mcpn:guidedsuperresolution"}
    assert algorithms["mcpn:guidedcloudinpainting"]["group"] == "Raster restoration"


def test_inpainting_json_run(enabled, s2_scene):
    """Exactly the masked pixels are filled, and the output keeps the target's grid, CRS, type, nodata and names."""
    cloud = block_mask(48, 10, 26, 14, 34)
    target = poisoned(s2_scene["target"], s2_scene["tmp"] / "poisoned.tif", cloud)
    out = s2_scene["tmp"] / "cli.tif"
    done = qgis_process(
        "run",
        "mcpn:guidedcloudinpainting",
        "--json",
        "--",
        f"INPUT={target}",
        f"MASK={s2_scene['mask']}",
        "MASK_VALUES=1",
        f"GUIDES={s2_scene['guide']}",
        "STEPS=3",
        "DEVICE=1",
        f"OUTPUT={out}",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = parse_json(done.stdout)
    assert result["results"]["OUTPUT"] == str(out)
    assert result["algorithm_details"]["id"] == "mcpn:guidedcloudinpainting"
    got, truth = raster_info(out), raster_info(target)
    for key in ("size", "bands", "geotransform", "crs", "dtype", "nodata", "descriptions"):
        assert got[key] == truth[key], key
    np.testing.assert_array_equal((got["data"] != truth["data"]).any(axis=0), cloud)


def test_super_resolution_json_run(enabled, sr_scene):
    """The output takes the first guide's grid and the low-resolution input's type."""
    out = sr_scene["tmp"] / "sr.tif"
    done = qgis_process(
        "run",
        "mcpn:guidedsuperresolution",
        "--json",
        "--",
        f"INPUT={sr_scene['low']}",
        *(f"GUIDES={guide}" for guide in sr_scene["guides"]),
        "STEPS=3",
        "DEVICE=1",
        f"OUTPUT={out}",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert parse_json(done.stdout)["results"]["OUTPUT"] == str(out)
    got, guide, low = raster_info(out), raster_info(sr_scene["guides"][0]), raster_info(sr_scene["low"])
    for key in ("size", "geotransform", "crs"):
        assert got[key] == guide[key], key
    assert got["dtype"] == low["dtype"] and got["bands"] == 1 and (got["data"] > 0).all()


def test_error_is_reported(enabled, s2_scene):
    done = qgis_process(
        "run",
        "mcpn:guidedcloudinpainting",
        "--",
        f"INPUT={s2_scene['target']}",
        f"MASK={s2_scene['mask']}",
        "MASK_VALUES=not-a-number",
        f"GUIDES={s2_scene['guide']}",
        f"OUTPUT={s2_scene['tmp'] / 'never.tif'}",
        timeout=120,
    )
    assert done.returncode != 0
    assert "Cannot read the cloud mask value" in done.stdout + done.stderr
    assert not (s2_scene["tmp"] / "never.tif").exists()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
