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
from conftest import PLUGINS, PROFILE, block_mask, raster_info

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
    out = s2_scene["tmp"] / "cli.tif"
    done = qgis_process(
        "run",
        "mcpn:guidedcloudinpainting",
        "--json",
        "--",
        f"INPUT={s2_scene['target']}",
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
    got, truth = raster_info(out), raster_info(s2_scene["target"])
    assert got["size"] == truth["size"] and got["dtype"] == truth["dtype"] and got["bands"] == 3
    clear = ~block_mask(48, 10, 26, 14, 34)
    np.testing.assert_array_equal(got["data"][:, clear], truth["data"][:, clear])


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
