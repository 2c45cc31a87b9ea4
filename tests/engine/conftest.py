"""Engine tests: ``core/`` (and the benchmarks' statistics) in plain Python, without QGIS.

`make test` runs this folder with the pytest-qgis plugin disabled (``-p no:pytest_qgis``); QGIS is then made
unimportable, so a test (or an engine module) that needs it fails instead of quietly starting it.
"""

from __future__ import annotations

import importlib.abc
import sys

import pytest
from mcpn.core.config import Settings
from osgeo import gdal

RGB = ["B04", "B03", "B02"]


class _NoQgis(importlib.abc.MetaPathFinder):
    """Refuses every import of ``qgis``: the engine and its tests must run where QGIS is absent."""

    def find_spec(self, name, path=None, target=None):
        if name == "qgis" or name.startswith("qgis."):
            raise ImportError(f"the engine tests must not import QGIS (import of {name!r})")
        return None


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("pytest_qgis"):
        sys.meta_path.insert(0, _NoQgis())


def _fast(**changes) -> Settings:
    return Settings(**{"method": "stacked", "steps": 2, "device": "cpu", **changes})


@pytest.fixture(scope="session")
def fast():
    """Settings for tests: the Stacked network, two steps, on the CPU (keyword arguments change any setting)."""
    return _fast


@pytest.fixture
def scene(tmp_path, s2, rasters):
    """``scene(size, x, y)``: an RGB crop of 2018-08-05 (target, uint16 with nodata 0) and the same of 2018-07-21
    (guide), as ``{"target": path, "guide": path, "size": size}``."""

    def make(size: int = 96, x: int = 400, y: int = 400) -> dict:
        target = rasters.stack([s2 / "2018-08-05" / f"{b}.tif" for b in RGB], tmp_path / "target.tif", x, y, size, RGB)
        ds = gdal.Open(str(target), gdal.GA_Update)
        for i in range(3):
            ds.GetRasterBand(i + 1).SetNoDataValue(0)
        ds = None
        guide = rasters.stack([s2 / "2018-07-21" / f"{b}.tif" for b in RGB], tmp_path / "guide.tif", x, y, size)
        return {"target": target, "guide": guide, "size": size}

    return make
