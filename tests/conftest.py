"""Shared fixtures: the plugin seen as package ``mcpn``, the Processing provider, crops of ../shared/data.

Run through ``make test``, which links the repository as plugin ``mcpn`` into
.build/profile and puts that plugins folder on PYTHONPATH; the path is also
added here so a plain ``python -m pytest`` after ``make deploy`` works.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / ".build" / "profile"
PLUGINS = PROFILE / "profiles" / "default" / "python" / "plugins"
DATA = REPO.parent / "shared" / "data"
S2 = DATA / "s2_time_pair"

if not (PLUGINS / "mcpn").exists():
    PLUGINS.mkdir(parents=True, exist_ok=True)
    os.symlink(REPO, PLUGINS / "mcpn")
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))

from mcpn.core.config import Settings  # noqa: E402
from osgeo import gdal  # noqa: E402  (GDAL's default error mode, as in QGIS: the engine must not depend on it)

RGB = ["B04", "B03", "B02"]


def fast(**changes) -> Settings:
    """Settings for tests: the Stacked network, two steps, on the CPU."""
    return Settings(**{"method": "stacked", "steps": 2, "device": "cpu", **changes})


def scene(tmp: Path, size: int = 96, x: int = 400, y: int = 400) -> dict:
    """An RGB crop of 2018-08-05 (target, uint16 with nodata 0), the same of 2018-07-21 (guide)."""
    require_data()
    target = stack([S2 / "2018-08-05" / f"{b}.tif" for b in RGB], tmp / "target.tif", x, y, size, RGB)
    ds = gdal.Open(str(target), gdal.GA_Update)
    for i in range(3):
        ds.GetRasterBand(i + 1).SetNoDataValue(0)
    ds = None
    guide = stack([S2 / "2018-07-21" / f"{b}.tif" for b in RGB], tmp / "guide.tif", x, y, size)
    return {"target": target, "guide": guide, "size": size}


def require_data() -> None:
    """Skip a test that needs ../shared/data where it is absent; in CI (which always has it) fail instead."""
    if not S2.is_dir():
        message = f"shared sample data not found at {DATA}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


_PLUGINS: list = []  # keep the plugin objects alive


@pytest.fixture(autouse=True)
def gdal_default_error_mode():
    """Every test starts in GDAL's default error mode, as QGIS runs (importing a benchmark module switches it)."""
    gdal.DontUseExceptions()


@pytest.fixture(autouse=True)
def collect_garbage():
    """Free refused runs now: a caught exception's traceback keeps its Processing context (and the layers it
    loaded) in a reference cycle; freed by the garbage collector only after QGIS has exited, it segfaults."""
    yield
    gc.collect()


@pytest.fixture
def mcpn_provider(qgis_app, qgis_processing):
    """The MCPN provider in the real QgsApplication's Processing registry (registered via classFactory)."""
    import mcpn
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("mcpn")
    if provider is None:
        plugin = mcpn.classFactory(None)
        plugin.initProcessing()
        _PLUGINS.append(plugin)
        provider = plugin.provider
    return provider


def remove_provider() -> None:
    """Take the ``mcpn`` provider out of the registry (tests that drive the plugin life cycle)."""
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("mcpn")
    if provider is not None:
        for plugin in list(_PLUGINS):
            if plugin.provider is provider:
                plugin.provider = None
                _PLUGINS.remove(plugin)
        registry.removeProvider(provider)


def crop(src: Path, dst: Path, x: int, y: int, size: int) -> Path:
    """Crop ``size`` x ``size`` px at (x, y) of a raster into a GeoTIFF."""
    gdal.Translate(str(dst), str(src), srcWin=[x, y, size, size])
    return dst


def stack(sources: list[Path], dst: Path, x: int, y: int, size: int, descriptions: list[str] | None = None) -> Path:
    """Stack crops of single-band rasters into one multi-band GeoTIFF (keeps the data type)."""
    vrt = gdal.BuildVRT("", [str(s) for s in sources], separate=True, srcNodata=None)
    ds = gdal.Translate(str(dst), vrt, srcWin=[x, y, size, size])
    for i, text in enumerate(descriptions or []):
        ds.GetRasterBand(i + 1).SetDescription(text)
    ds = None
    vrt = None
    return dst


def write_mask(template: Path, dst: Path, mask: np.ndarray, values=(0, 1)) -> Path:
    """A uint8 mask raster on the template's grid: values[1] where mask, values[0] elsewhere."""
    tpl = gdal.Open(str(template))
    ds = gdal.GetDriverByName("GTiff").Create(str(dst), tpl.RasterXSize, tpl.RasterYSize, 1, gdal.GDT_Byte)
    ds.SetProjection(tpl.GetProjection())
    ds.SetGeoTransform(tpl.GetGeoTransform())
    ds.GetRasterBand(1).WriteArray(np.where(mask, values[1], values[0]).astype(np.uint8))
    ds = None
    return dst


POISON = 60000  # written under the cloud: no fit reproduces it, so every masked pixel must change


def poisoned(src: Path, dst: Path, cloud: np.ndarray) -> Path:
    """A copy of ``src`` holding POISON under ``cloud``: after inpainting, the changed pixels must be ``cloud``."""
    gdal.Translate(str(dst), str(src))
    ds = gdal.Open(str(dst), gdal.GA_Update)
    for i in range(ds.RasterCount):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(np.where(cloud, POISON, band.ReadAsArray()))
    ds = None
    return dst


def block_mask(size: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture
def s2_scene(tmp_path):
    """A 48 px RGB crop of 2018-08-05 (target), the same of 2018-07-21 (guide) and a block cloud mask."""
    require_data()
    size, x, y = 48, 420, 380
    bands = ["B04", "B03", "B02"]
    target = stack([S2 / "2018-08-05" / f"{b}.tif" for b in bands], tmp_path / "target.tif", x, y, size, bands)
    guide = stack([S2 / "2018-07-21" / f"{b}.tif" for b in bands], tmp_path / "guide.tif", x, y, size)
    mask = write_mask(target, tmp_path / "mask.tif", block_mask(size, 10, 26, 14, 34))
    return {"target": target, "guide": guide, "mask": mask, "size": size, "tmp": tmp_path}


@pytest.fixture
def sr_scene(tmp_path):
    """B8A (20 m) 24 px crop and the aligned 48 px 10 m crops of B04 and B08 (guides), 2018-08-05."""
    require_data()
    day = S2 / "2018-08-05"
    low = crop(day / "B8A.tif", tmp_path / "b8a_20m.tif", 210, 190, 24)
    b08 = crop(day / "B08.tif", tmp_path / "b08_10m.tif", 420, 380, 48)
    b04 = crop(day / "B04.tif", tmp_path / "b04_10m.tif", 420, 380, 48)
    return {"low": low, "guides": [b08, b04], "tmp": tmp_path}


def raster_info(path: Path) -> dict:
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    info = {
        "size": (ds.RasterXSize, ds.RasterYSize),
        "bands": ds.RasterCount,
        "geotransform": ds.GetGeoTransform(),
        "crs": ds.GetProjection(),
        "dtype": band.DataType,
        "nodata": band.GetNoDataValue(),
        "descriptions": [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)],
        "data": ds.ReadAsArray(),
    }
    ds = None
    return info


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
    """The plugin enabled in the .build profile for qgis_process."""
    if shutil.which(QGIS_PROCESS) is None:
        pytest.fail(f"{QGIS_PROCESS} not found: install QGIS (make venv)")
    done = qgis_process("plugins", "enable", "mcpn", timeout=120)
    assert done.returncode == 0 or "already enabled" in done.stdout + done.stderr, done.stderr
