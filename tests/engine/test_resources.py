"""What a raster run costs and leaves behind: peak memory at two scene sizes, GDAL's block cache while the
blend and the output are written, and a cancel while fitting or while writing the output leaves no file
(core.pipeline.inpainting)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from mcpn.core.callbacks import Callbacks
from mcpn.core.errors import Cancelled
from mcpn.core.pipeline import inpainting
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.pipeline.tiles import Blend, FittedTile
from mcpn.core.raster import io as raster_io
from mcpn.core.raster.io import Grid, RasterWriter
from mcpn.core.raster.masks import CloudMask
from mcpn.core.raster.tiling import tile_windows
from osgeo import gdal, osr

PEAK = """
import resource, sys
from mcpn.core.config import Settings
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.raster.masks import CloudMask
target, mask, out = sys.argv[1:4]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = inpaint_raster(target, CloudMask(mask), [target], out, Settings(steps=1, device="cpu", tile_size=128))
print(result.fitted, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


UTM30 = osr.SpatialReference()
UTM30.ImportFromEPSG(32630)


def ramp_scene(folder, size: int) -> tuple[str, str]:
    """A ``size`` px, 3-band uint16 scene (tiled GeoTIFF) and a mask with one small cloud near its corner."""
    paths = []
    for name, bands, gdal_type in (("target", 3, gdal.GDT_UInt16), ("mask", 1, gdal.GDT_Byte)):
        path = str(folder / f"{name}_{size}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, size, size, bands, gdal_type, ["TILED=YES"])
        ds.SetGeoTransform([500000, 10, 0, 4500000, 0, -10])
        ds.SetProjection(UTM30.ExportToWkt())
        values = np.zeros((size, size), np.uint8)
        values[100:140, 20:80] = 1
        if name == "target":
            values = (np.add.outer(np.arange(size), np.arange(size)) % 4000 + 100).astype(np.uint16)
        for i in range(bands):
            ds.GetRasterBand(i + 1).WriteArray(values)
        ds = None
        paths.append(path)
    return paths[0], paths[1]


def test_peak_memory_does_not_grow_with_the_scene(tmp_path, plain_python_env):
    """The same run (one small cloud, two tiles fitted) on 1024 px and on 3072 px (9x the pixels): the peak grows
    by less than a third of what the larger scene holds more, even as uint16 (48 MiB): nothing keeps the scene.

    GDAL's block cache is capped (16 MB): it keeps the blocks it has read up to its own bound, by default 5 % of
    the RAM, and would otherwise grow with the scene up to that bound (180 MiB more at 3072 px, measured)."""
    peaks = {}
    for size in (1024, 3072):
        target, mask = ramp_scene(tmp_path, size)
        done = subprocess.run(
            [sys.executable, "-c", PEAK, target, mask, str(tmp_path / f"out_{size}.tif")], capture_output=True,
            text=True, timeout=300, env={**plain_python_env, "GDAL_CACHEMAX": "16", "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        fitted, peaks[size] = done.stdout.split()
        assert fitted == "2"
    more = 3 * (3072**2 - 1024**2) * 2 / 2**20  # MiB the larger scene holds more as uint16
    assert float(peaks[3072]) - float(peaks[1024]) < more / 3, peaks


@pytest.fixture
def large_cache():
    """GDAL's block cache at 1 GiB, as on a machine with 20 GiB of RAM (5 %), restored afterwards."""
    before = gdal.GetCacheMax()
    gdal.SetCacheMax(2**30)
    yield
    gdal.SetCacheMax(before)


def test_writing_a_large_output_keeps_gdals_block_cache_to_a_strip(tmp_path, large_cache):
    """A 2048 px, 4-band float32 output (64 MiB) written in 512 px windows: GDAL's block cache never holds more
    than two strips (32 MiB), where it would otherwise keep the whole raster until it is closed."""
    size, grid = 2048, Grid(UTM30.ExportToWkt(), (500000.0, 10.0, 0.0, 4500000.0, 0.0, -10.0), 2048, 2048)
    used = gdal.GetCacheUsed()
    with RasterWriter(str(tmp_path / "large.tif"), grid, 4) as writer:
        peak = 0
        for window in tile_windows(size, size, 512, 0):
            writer.write(window, np.random.default_rng(0).random((4, window.height, window.width)))
            peak = max(peak, gdal.GetCacheUsed() - used)
        writer.commit()
    assert peak <= 2 * 4 * 512 * size * 4, peak / 2**20


def test_the_blend_holds_no_tile_in_memory(tmp_path, large_cache):
    """64 fitted 256 px tiles of 4 bands blended into a 2048 px scene (80 MiB of float32 sums), then read back
    window by window: the cache holds no more than a few tiles' blocks, and the fits it keeps for the run's
    report have no pixels."""
    windows = tile_windows(2048, 2048, 256, 0)
    used, peak = gdal.GetCacheUsed(), 0
    with Blend(str(tmp_path), 2048, 2048, 4, False, windows, 0) as blend:
        for index, window in enumerate(windows):
            mean = np.full((4, window.height, window.width), float(index), np.float32)
            blend.add(FittedTile(index, mean, None, "cpu", 0, [], [], 0.0))
            peak = max(peak, gdal.GetCacheUsed() - used)
        assert all(fitted.mean is None for fitted in blend.fits)
        for window in tile_windows(2048, 2048, 512, 0):  # read back as the output is written
            blend.read(window)
            peak = max(peak, gdal.GetCacheUsed() - used)
        mean, _ = blend.read(windows[-1])
    np.testing.assert_array_equal(mean, len(windows) - 1)
    assert peak <= 4 * 5 * 256 * 256 * 4, peak / 2**20


def test_a_subsampled_read_keeps_gdals_block_cache_to_a_strip(tmp_path, large_cache, monkeypatch):
    """The whole grid read subsampled (scalings, previews) from a 2048 px, 4-band uint16 raster (32 MiB): GDAL's
    block cache holds no more than two rows of its blocks at a time (8 MiB), not the raster."""
    path = str(tmp_path / "large.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 2048, 2048, 4, gdal.GDT_UInt16, ["TILED=YES"])
    for i in range(4):
        ds.GetRasterBand(i + 1).WriteArray(np.full((2048, 2048), i + 1, np.uint16))
    ds = None
    used, peaks = gdal.GetCacheUsed(), []
    read = raster_io._read_bands

    def spied(*args, **kwargs):
        values = read(*args, **kwargs)
        peaks.append(gdal.GetCacheUsed() - used)
        return values

    monkeypatch.setattr(raster_io, "_read_bands", spied)
    values = raster_io.read_decimated(path)
    assert values.shape == (4, 1024, 1024) and (values[:, 0, 0] == [1, 2, 3, 4]).all()
    assert max(peaks) <= 2 * 256 * 2048 * 4 * 2, max(peaks) / 2**20


@pytest.fixture
def cloudy(tmp_path, scene, rasters):
    s = scene(size=64)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(64, 10, 54, 10, 54))
    return str(s["target"]), str(mask), str(s["guide"])


def test_cancel_while_fitting_stops_the_run_and_leaves_no_file(tmp_path, cloudy, fast):
    """Cancelled after the 5th step of the first of 4 tiles: not one step more, no output, no scratch file."""
    target, mask, guide = cloudy
    steps: list[int] = []
    callbacks = Callbacks(lambda step, total: steps.append(step), lambda: len(steps) >= 5)
    with pytest.raises(Cancelled):
        inpaint_raster(target, CloudMask(mask), [guide], str(tmp_path / "out" / "o.tif"), fast(tile_size=40, steps=20),
                       callbacks=callbacks)  # fmt: skip
    assert len(steps) == 5
    assert list((tmp_path / "out").iterdir()) == []


def test_cancel_while_writing_leaves_no_file(tmp_path, cloudy, fast, monkeypatch):
    """A cancel after the fit, once the first output window is written (windows of 16 px here): no output, no
    scratch file."""
    monkeypatch.setattr(inpainting, "WRITE_BLOCK", 16)
    target, mask, guide = cloudy
    fitted, asked = [], []

    def cancel() -> bool:  # asked before each step, then before each output window
        if fitted:
            asked.append(1)
        return len(asked) >= 2

    def progress(step: int, total: int) -> None:
        if step == total:
            fitted.append(step)

    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        inpaint_raster(target, CloudMask(mask), [guide], str(out / "o.tif"), fast(tile_size=64),
                       callbacks=Callbacks(progress, cancel))  # fmt: skip
    assert fitted and len(asked) == 2
    assert list(out.iterdir()) == []
