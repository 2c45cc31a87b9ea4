"""Damaged input rasters (issue #28): a file cut off or corrupted is named in a RasterError wherever it is read."""

from __future__ import annotations

import pytest
from mcpn.core.raster.checks import open_raster
from mcpn.core.raster.io import Grid, RasterError, aligned_path, grid_of, read_decimated, read_window
from mcpn.core.raster.masks import MaskLayer
from mcpn.core.raster.tiling import Window

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
