"""Damaged input rasters (issue #28): a file cut off or corrupted is named in a RasterError wherever it is read,
and reading writes nothing beside the inputs."""

from __future__ import annotations

import os

import pytest
from mcpn.core.raster.checks import open_raster, without_aux_files
from mcpn.core.raster.io import Grid, RasterError, aligned_path, grid_of, read_decimated, read_window
from mcpn.core.raster.masks import MaskLayer
from mcpn.core.raster.tiling import Window
from osgeo import gdal

DAMAGED = ("looks incomplete or damaged (GDAL: ", "TIFFReadEncodedTile() failed); download or export it again.")


@pytest.fixture
def cut(tmp_path, s2, rasters):
    """A 48 px crop of B04 cut at 60 %: its header and first tiles read, its last tiles are missing."""
    crop = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "crop.tif", 420, 380, 48)
    return rasters.truncated(crop, tmp_path / "cut.tif")


def assert_damaged(error: pytest.ExceptionInfo, path) -> None:
    message = str(error.value)
    assert message.startswith(f"The raster '{path}' {DAMAGED[0]}") and message.endswith(DAMAGED[1]), message


def test_a_window_past_the_cut_names_the_file(cut):
    assert read_window(str(cut), Window(0, 0, 16, 16)).shape == (1, 16, 16)  # the first tile is there
    with pytest.raises(RasterError) as error:
        read_window(str(cut), Window(16, 0, 32, 48))
    assert_damaged(error, cut)
    with pytest.raises(RasterError) as error:
        read_decimated(str(cut))
    assert_damaged(error, cut)


def test_a_warped_raster_names_its_source_not_the_vrt(cut, tmp_path):
    """Guides and masks on another grid are read through a VRT in the scratch folder: the message names the file."""
    grid = grid_of(str(cut))
    shifted = Grid(grid.crs_wkt, (grid.geotransform[0] + 5.0, *grid.geotransform[1:]), 40, 40)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    vrt = aligned_path(str(cut), shifted, str(scratch), what="guide")
    assert vrt.endswith(".vrt")
    with pytest.raises(RasterError) as error:
        read_decimated(vrt)
    assert_damaged(error, cut)
    mask = MaskLayer(vrt, ((1.0, 1.0),), None, 0, 40, 40)
    with pytest.raises(RasterError) as error:
        mask.read(Window(0, 0, 40, 40))
    assert_damaged(error, cut)


def test_a_header_cut_off_is_named_when_opening(tmp_path, s2, rasters):
    crop = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "crop.tif", 420, 380, 48)
    cut = rasters.truncated(crop, tmp_path / "cut.tif", readable_header=False)
    with pytest.raises(RasterError) as error:
        grid_of(str(cut))
    assert str(error.value).startswith(f"The raster '{cut}' looks incomplete or damaged (GDAL: "), error.value
    assert open_raster(str(cut))[1].startswith("it looks incomplete or damaged: download or export it again; GDAL: ")
    text = tmp_path / "notes.csv"
    text.write_text("x,y\n1,2\n")
    assert "incomplete" not in open_raster(str(text))[1]  # not a raster at all: not called damaged


def test_statistics_are_not_saved_beside_a_raster_opened_without_aux_files(tmp_path, s2, rasters, pam_on):
    """What a QGIS raster layer does as it loads (statistics for its style) saves nothing inside the block."""
    crop = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "crop.tif", 420, 380, 48)
    with without_aux_files():
        ds = gdal.Open(str(crop))
        ds.GetRasterBand(1).ComputeStatistics(False)
    ds.GetRasterBand(1).ComputeStatistics(False)  # nor later on the same dataset
    ds = None
    assert os.listdir(tmp_path) == ["crop.tif"]
    assert gdal.GetThreadLocalConfigOption("GDAL_PAM_ENABLED", None) is None  # restored
    ds = gdal.Open(str(crop))  # outside the block GDAL saves them, as before
    ds.GetRasterBand(1).ComputeStatistics(False)
    ds = None
    assert sorted(os.listdir(tmp_path)) == ["crop.tif", "crop.tif.aux.xml"]


def test_the_engine_reads_write_nothing_beside_the_inputs(tmp_path, s2, rasters, pam_on):
    crop = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "crop.tif", 420, 380, 48)
    read_decimated(str(crop))
    read_window(str(crop), Window(0, 0, 16, 16))
    grid_of(str(crop))
    assert os.listdir(tmp_path) == ["crop.tif"]


def test_gdal_fill_nodata_works_where_the_current_folder_cannot_be_written(tmp_path, monkeypatch):
    """GDAL's FillNodata writes work files into the current folder unless told otherwise (QGIS's own program
    folder on Windows is read-only); the engine keeps them in memory. A removed current folder refuses every new
    file, also to root."""
    import numpy as np
    from mcpn.core.classic import fill_nodata

    folder = tmp_path / "gone"
    folder.mkdir()
    monkeypatch.chdir(folder)
    folder.rmdir()
    image = np.random.default_rng(0).random((1, 300, 300))
    missing = np.zeros((300, 300), bool)
    missing[50:250, 50:250] = True
    assert np.isfinite(fill_nodata(image, missing)).all()
