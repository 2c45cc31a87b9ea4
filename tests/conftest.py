"""What the engine tests (tests/engine) and the plugin tests (tests/plugin) share: the plugin as package ``mcpn``,
the shared data and the builders of small rasters. Nothing here imports QGIS.

Run through ``make test``, which links the repository as plugin ``mcpn`` into
.build/profile and puts that plugins folder on PYTHONPATH; the path is also
added here so a plain ``python -m pytest`` after ``make deploy`` works. Test
modules import nothing from the conftest files: they take these builders as
fixtures.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
S2 = DATA / "s2_time_pair"

sys.path.insert(0, str(REPO / "scripts"))
from qgis_env import PLUGINS  # noqa: E402  (the .build profile's plugins folder, as `make deploy` makes it)

if not (PLUGINS / "mcpn").exists():
    PLUGINS.mkdir(parents=True, exist_ok=True)
    os.symlink(REPO, PLUGINS / "mcpn")
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))

from osgeo import gdal  # noqa: E402  (GDAL's default error mode, as in QGIS: the engine must not depend on it)

RGB = ["B04", "B03", "B02"]
POISON = 60000  # written under the cloud by Rasters.poisoned: no fit reproduces it, so every masked pixel must change
# Rasters.assert_filled: a fill's RMSE may be this much of the instant estimate's. Measured on the tests' scenes:
# 0.97-1.03 (tiles, two or three steps, rounding); a band's mean fill there: 1.23-2.43.
FILL_TOLERANCE = 1.1


def require_data() -> None:
    """Skip a test that needs ../shared/data where it is absent; in CI (which always has it) fail instead."""
    if not S2.is_dir():
        message = f"shared sample data not found at {DATA}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class Rasters:
    """Builders and readers of the small GeoTIFFs the tests run on (the ``rasters`` fixture)."""

    @staticmethod
    def crop(src: Path, dst: Path, x: int, y: int, size: int) -> Path:
        """Crop ``size`` x ``size`` px at (x, y) of a raster into a GeoTIFF."""
        gdal.Translate(str(dst), str(src), srcWin=[x, y, size, size])
        return dst

    @staticmethod
    def stack(sources: list[Path], dst: Path, x: int, y: int, size: int, descriptions: list[str] | None = None) -> Path:
        """Stack crops of single-band rasters into one multi-band GeoTIFF (keeps the data type)."""
        vrt = gdal.BuildVRT("", [str(s) for s in sources], separate=True, srcNodata=None)
        ds = gdal.Translate(str(dst), vrt, srcWin=[x, y, size, size])
        for i, text in enumerate(descriptions or []):
            ds.GetRasterBand(i + 1).SetDescription(text)
        ds = None
        vrt = None
        return dst

    @staticmethod
    def block(size: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """A ``size`` x ``size`` boolean mask, True on rows y0..y1-1 and columns x0..x1-1."""
        mask = np.zeros((size, size), dtype=bool)
        mask[y0:y1, x0:x1] = True
        return mask

    @staticmethod
    def mask(template: Path, dst: Path, mask: np.ndarray, values=(0, 1)) -> Path:
        """A uint8 mask raster on the template's grid: values[1] where mask, values[0] elsewhere."""
        tpl = gdal.Open(str(template))
        ds = gdal.GetDriverByName("GTiff").Create(str(dst), tpl.RasterXSize, tpl.RasterYSize, 1, gdal.GDT_Byte)
        ds.SetProjection(tpl.GetProjection())
        ds.SetGeoTransform(tpl.GetGeoTransform())
        ds.GetRasterBand(1).WriteArray(np.where(mask, values[1], values[0]).astype(np.uint8))
        ds = None
        return dst

    @staticmethod
    def copy_with(src: Path, dst: Path, geotransform=None, crs: str | None = None) -> Path:
        """A copy of a raster with another geotransform and/or CRS ("" removes it)."""
        gdal.Translate(str(dst), str(src))
        ds = gdal.Open(str(dst), gdal.GA_Update)
        if geotransform is not None:
            ds.SetGeoTransform(geotransform)
        if crs is not None:
            ds.SetProjection(crs)
        ds = None
        return dst

    @staticmethod
    def poisoned(src: Path, dst: Path, cloud: np.ndarray) -> Path:
        """A copy of ``src`` holding POISON under ``cloud``: after inpainting, the changed pixels must be ``cloud``."""
        gdal.Translate(str(dst), str(src))
        ds = gdal.Open(str(dst), gdal.GA_Update)
        for i in range(ds.RasterCount):
            band = ds.GetRasterBand(i + 1)
            band.WriteArray(np.where(cloud, POISON, band.ReadAsArray()))
        ds = None
        return dst

    @staticmethod
    def truncated(src: Path, dst: Path, readable_header: bool = True, keep: float = 0.6) -> Path:
        """The first ``keep`` of a GeoTIFF's bytes, as an interrupted download leaves it.

        ``readable_header``: the copy is first rewritten with its header first and 16 px tiles, so that it
        still opens and fails only when the missing tiles are read; otherwise only its first 64 bytes are
        kept (the TIFF signature, not its directory) and the file fails to open.
        """
        whole = dst.with_name(f"whole_{dst.name}")
        options = ["COPY_SRC_OVERVIEWS=YES", "TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"] if readable_header else []
        gdal.Translate(str(whole), str(src), creationOptions=options)
        data = whole.read_bytes()
        whole.unlink()
        dst.write_bytes(data[: int(len(data) * keep) if readable_header else 64])
        gdal.PushErrorHandler("CPLQuietErrorHandler")
        try:
            opens = gdal.Open(str(dst)) is not None
        except RuntimeError:
            opens = False
        finally:
            gdal.PopErrorHandler()
        assert opens == readable_header, f"{dst} {'does not open' if readable_header else 'opens'}"
        return dst

    @staticmethod
    def info(path: Path) -> dict:
        """Size, band count, grid, CRS, data type, nodata (of band 1), band names and all values of a raster."""
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

    @staticmethod
    def instant_fill(clean, missing: np.ndarray, guides=(), radar=()) -> np.ndarray:
        """The instant estimate an inpainting with the default settings starts from (the anchor
        :meth:`Sample.prepare` computes, in the target's units): ``clean`` with ``missing`` hidden, and its guides
        (arrays on its grid; ``radar``: the indices of radar ones)."""
        from mcpn.core.config import Settings
        from mcpn.core.pipeline.sample import Sample

        clean = np.asarray(clean, dtype=np.float64).reshape(-1, *missing.shape)
        target = np.where(missing, np.nan, clean)
        guides = [np.asarray(g, dtype=np.float64).reshape(-1, *missing.shape) for g in guides]
        sample = Sample.prepare(target, ~missing, guides, missing.shape, Settings(), radar)
        return sample.scaling.invert(sample.anchor.image)

    @staticmethod
    def assert_filled(output, poisoned, clean, filled: np.ndarray, guides=(), radar=(), scored=None) -> None:
        """An inpainting ``output`` of ``poisoned`` (a copy of ``clean`` with POISON under the cloud) changed
        exactly the ``filled`` pixels, and on the ``scored`` ones (default: all filled) came as close to the clean
        values as the instant estimate the engine starts from (:meth:`instant_fill` with ``guides``), within
        FILL_TOLERANCE of its RMSE. The network starts as that estimate and a run keeps its step only where its
        held-out pixels say it beats the estimate; FILL_TOLERANCE covers what a test's few steps, tiles (each with
        its own estimate) and rounding to the output type change. Both also beat the best constant fill (each band's
        mean over the scored clean pixels, which no fill could know): a copy, zeros, a band's mean, a network that
        spoils its estimate or an estimate that is no better than a constant do not pass."""
        output, poisoned, clean = (np.asarray(a, dtype=np.float64).reshape(-1, *filled.shape)
                                   for a in (output, poisoned, clean))  # fmt: skip
        np.testing.assert_array_equal((output != poisoned).any(axis=0), filled)
        scored = filled if scored is None else scored
        truth, got = clean[:, scored], output[:, scored]
        assert np.isfinite(got).all()
        instant = Rasters.instant_fill(clean, filled, guides, radar)[:, scored]
        constant = truth.mean(axis=1, keepdims=True)
        error, instant_error, constant_error = (np.sqrt(np.mean((a - truth) ** 2)) for a in (got, instant, constant))
        assert (
            instant_error < constant_error
        ), f"instant estimate RMSE {instant_error:.4g}, a constant's {constant_error:.4g}"
        assert (
            error <= FILL_TOLERANCE * instant_error
        ), f"fill RMSE {error:.4g} against {instant_error:.4g} for the instant estimate the engine starts from"


@pytest.fixture(scope="session")
def rasters() -> type[Rasters]:
    return Rasters


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (the test skips without it, and fails in CI)."""
    require_data()
    return DATA


@pytest.fixture(scope="session")
def s2(shared_data) -> Path:
    """The Sentinel-2 pair of ../shared/data: one folder per date (2018-07-21, 2018-08-05), one GeoTIFF per band."""
    return S2


@pytest.fixture(scope="session")
def plugins_folder() -> Path:
    """The plugins folder holding the repository as ``mcpn`` (on ``sys.path``)."""
    return PLUGINS


@pytest.fixture(scope="session")
def plain_python_env() -> dict:
    """The environment of a plain Python subprocess (no QGIS) that imports the engine as ``mcpn.core``."""
    paths = [str(PLUGINS)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


@pytest.fixture(autouse=True)
def gdal_default_error_mode():
    """Every test starts in GDAL's default error mode, as QGIS runs (importing a benchmark module switches it)."""
    gdal.DontUseExceptions()


@pytest.fixture
def s2_scene(tmp_path, s2):
    """A 48 px RGB crop of 2018-08-05 (target), the same of 2018-07-21 (guide) and a block cloud mask."""
    size, x, y = 48, 420, 380
    target = Rasters.stack([s2 / "2018-08-05" / f"{b}.tif" for b in RGB], tmp_path / "target.tif", x, y, size, RGB)
    guide = Rasters.stack([s2 / "2018-07-21" / f"{b}.tif" for b in RGB], tmp_path / "guide.tif", x, y, size)
    mask = Rasters.mask(target, tmp_path / "mask.tif", Rasters.block(size, 10, 26, 14, 34))
    return {"target": target, "guide": guide, "mask": mask, "size": size, "tmp": tmp_path}


@pytest.fixture
def sr_scene(tmp_path, s2):
    """B8A (20 m) 24 px crop and the aligned 48 px 10 m crops of B04 and B08 (guides), 2018-08-05."""
    day = s2 / "2018-08-05"
    low = Rasters.crop(day / "B8A.tif", tmp_path / "b8a_20m.tif", 210, 190, 24)
    b08 = Rasters.crop(day / "B08.tif", tmp_path / "b08_10m.tif", 420, 380, 48)
    b04 = Rasters.crop(day / "B04.tif", tmp_path / "b04_10m.tif", 420, 380, 48)
    return {"low": low, "guides": [b08, b04], "tmp": tmp_path}


@pytest.fixture
def pam_on():
    """GDAL's PAM on, as in QGIS by default (the test environment switches it off)."""
    previous = gdal.GetConfigOption("GDAL_PAM_ENABLED")
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "YES")
    yield
    gdal.SetConfigOption("GDAL_PAM_ENABLED", previous)


@pytest.fixture
def s2_products(tmp_path, s2):
    """``s2_products(size=48, x=420, y=378, **build_args)``: a cloudy Level-2A product of 2018-08-05 (baseline
    04.00, offset 1000; a cloud classed 9 and a shadow classed 3 in its SCL, POISON - 1000 under both) and a clear
    guide of 2018-07-21 (baseline 02.06, no offset), as ``{"target": Product, "guide": Product, "size": size,
    "truth": folder of 2018-08-05, "tmp": folder}``; ``build_args`` change the target's build
    (scripts/s2_product.py)."""

    from s2_product import build as build_product  # scripts/

    def make(size: int = 48, x: int = 420, y: int = 378, **build_args) -> dict:
        cloud = np.zeros((size, size), bool)
        cloud[size // 4 : size // 2, size // 4 : 3 * size // 4] = True
        shadow = np.zeros((size, size), bool)
        shadow[size // 2 : size // 2 + 6, size // 4 : size // 2] = True
        options = {"cloud": cloud, "shadow": shadow, "cloud_value": POISON - 1000, **build_args}
        target = build_product(str(s2 / "2018-08-05"), str(tmp_path), x, y, size, **options)
        guide = build_product(
            str(s2 / "2018-07-21"), str(tmp_path), x, y, size, baseline="02.06", date="20180721T110621"
        )
        return {"target": target, "guide": guide, "size": size, "truth": s2 / "2018-08-05", "tmp": tmp_path}

    return make
