"""Unit tests of core/raster/io.py: reading, alignment, dtype conversion, atomic writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from mcpn.core.raster import io as raster_io
from mcpn.core.raster.tiling import Window
from osgeo import gdal, osr

UTM30 = osr.SpatialReference()
UTM30.ImportFromEPSG(32630)
GRID = raster_io.Grid(UTM30.ExportToWkt(), (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0), 8, 6)


def _write(path, data, gdal_type=gdal.GDT_UInt16, nodata=None, descriptions=None, grid=GRID) -> str:
    data = np.asarray(data, dtype=float)
    data = data[None] if data.ndim == 2 else data
    with raster_io.RasterWriter(str(path), grid, len(data), gdal_type, nodata, descriptions) as writer:
        writer.write(Window(0, 0, grid.height, grid.width), data)
        return writer.commit()


def _read(path) -> np.ndarray:
    grid = raster_io.grid_of(str(path))
    return raster_io.read_window(str(path), Window(0, 0, grid.height, grid.width))


def test_round_trip_keeps_type_nodata_descriptions(tmp_path, rasters):
    data = np.arange(2 * 6 * 8, dtype=float).reshape(2, 6, 8)
    data[0, 0, 0] = np.nan
    out = _write(tmp_path / "a.tif", data, gdal.GDT_UInt16, 65535, ["red", "nir"])
    info = rasters.info(out)
    assert info["dtype"] == gdal.GDT_UInt16 and info["nodata"] == 65535
    assert info["descriptions"] == ["red", "nir"]
    assert info["geotransform"] == GRID.geotransform and info["size"] == (8, 6)
    assert info["data"][0, 0, 0] == 65535
    back = _read(out)
    assert np.isnan(back[0, 0, 0])
    np.testing.assert_array_equal(back[:, 1:], data[:, 1:])
    bands, profile = raster_io.writer_profile(out)
    assert raster_io.grid_of(out).same_as(GRID) and bands == 2
    assert profile == {"gdal_type": gdal.GDT_UInt16, "nodata": [65535, 65535], "descriptions": ["red", "nir"]}


def test_integer_conversion_rounds_and_clips():
    data = np.array([[-3.0, 0.4, 0.6, 70000.0, np.nan]])
    np.testing.assert_array_equal(raster_io.to_dtype(data, gdal.GDT_UInt16, None), [[0, 0, 1, 65535, 0]])
    np.testing.assert_array_equal(raster_io.to_dtype(data, gdal.GDT_Byte, 255), [[0, 0, 1, 254, 255]])
    assert raster_io.to_dtype(data, gdal.GDT_Int16, -9999).dtype == np.int16
    f = raster_io.to_dtype(data, gdal.GDT_Float32, -1.0)
    assert f.dtype == np.float32 and f[0, 4] == -1.0 and f[0, 1] == pytest.approx(0.4)


def test_value_rounding_to_nodata_stays_valid():
    got = raster_io.to_dtype(np.array([[0.2, np.nan]]), gdal.GDT_UInt16, 0)
    np.testing.assert_array_equal(got, [[1, 0]])


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path, rasters):
    dest = tmp_path / "out.tif"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="interrupted"), raster_io.RasterWriter(str(dest), GRID, 3) as writer:
        writer.write(Window(0, 0, 3, 8), np.zeros((3, 3, 8)))
        raise RuntimeError("interrupted half way (an error, a cancel)")
    assert dest.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]
    _write(dest, np.ones((6, 8)))
    assert rasters.info(dest)["bands"] == 1
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]


def _read_aligned(path: str, grid: raster_io.Grid, folder, resampling: str = "bilinear") -> np.ndarray:
    """The whole of ``path`` on ``grid``, through the engine's lazy warp."""
    aligned = raster_io.aligned_path(path, grid, str(folder), resampling, what="guide")
    return raster_io.read_window(aligned, Window(0, 0, grid.height, grid.width))


def test_aligned_path_warps_and_marks_outside_as_nan(tmp_path):
    coarse = raster_io.Grid(GRID.crs_wkt, (500000.0, 20.0, 0.0, 4000000.0, 0.0, -20.0), 2, 2)
    src = _write(tmp_path / "coarse.tif", np.array([[[1.0, 2.0], [3.0, 4.0]]]), gdal.GDT_Float32, grid=coarse)
    assert raster_io.aligned_path(src, coarse, str(tmp_path)) == src  # already aligned: read as is
    near = _read_aligned(src, GRID, tmp_path, "near")
    assert near.shape == (1, 6, 8)
    assert near[0, 0, 0] == 1 and near[0, 3, 3] == 4
    assert np.isnan(near[0, 5, 7])  # outside the 40 m x 40 m coverage


def test_aligned_path_other_crs_and_no_overlap(tmp_path):
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    lon_lat = raster_io.Grid(wgs.ExportToWkt(), (-3.1, 0.001, 0.0, 36.2, 0.0, -0.001), 200, 200)
    path = _write(tmp_path / "wgs.tif", np.ones((1, 200, 200)), gdal.GDT_Byte, grid=lon_lat)
    far = raster_io.Grid(GRID.crs_wkt, (700000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0), 8, 6)
    with pytest.raises(raster_io.RasterError, match="does not overlap"):
        raster_io.aligned_path(path, far, str(tmp_path), what="guide")
    got = _read_aligned(path, GRID, tmp_path)  # (500 km E, 4000 km N) is about (3 W, 36.1 N)
    assert got.shape == (1, 6, 8) and np.all(got == 1)


def test_low_res_grid_keeps_an_aligned_raster_and_follows_a_shifted_extent(tmp_path, rasters, s2):
    low = rasters.crop(s2 / "2018-08-05" / "B11.tif", tmp_path / "b11.tif", 100, 100, 16)
    high = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "b04.tif", 200, 200, 32)
    assert raster_io.low_res_grid(str(low), raster_io.grid_of(str(high))).same_as(raster_io.grid_of(str(low)))
    # a guide extent shifted by one low-res pixel: the same 20 m pixels, one pixel further
    shifted = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "b04s.tif", 202, 202, 32)
    moved = raster_io.low_res_grid(str(low), raster_io.grid_of(str(shifted)))
    assert (moved.width, moved.height) == (16, 16)
    got = _read_aligned(str(low), moved, tmp_path, "average")
    np.testing.assert_array_equal(got[0, :15, :15], _read(low)[0, 1:, 1:])


def test_a_rotated_raster_is_refused(tmp_path):
    path = _write(tmp_path / "r.tif", np.ones((1, 6, 8)))
    ds = gdal.Open(path, gdal.GA_Update)
    ds.SetGeoTransform((500000.0, 10.0, 2.0, 4000000.0, 1.5, -10.0))  # rotation / skew terms
    ds = None
    with pytest.raises(raster_io.RasterError, match="has a rotated or skewed geotransform"):
        raster_io.grid_of(path)


def test_unreadable_raster(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    with pytest.raises(raster_io.RasterError):
        raster_io.grid_of(str(bad))


def test_low_res_grid_in_another_crs(tmp_path):
    """A low-resolution raster in lon/lat is read over a UTM extent at about its own pixel size."""
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    lon_lat = raster_io.Grid(wgs.ExportToWkt(), (-3.01, 0.0005, 0.0, 36.15, 0.0, -0.0005), 40, 40)
    path = _write(tmp_path / "wgs.tif", np.full((1, 40, 40), 7.0), gdal.GDT_Float32, grid=lon_lat)
    extent = raster_io.Grid(GRID.crs_wkt, (499500.0, 10.0, 0.0, 4000500.0, 0.0, -10.0), 40, 40)  # 400 m box
    grid = raster_io.low_res_grid(path, extent)
    assert grid.bounds == pytest.approx(extent.bounds)
    assert 6 <= grid.width <= 12 and 6 <= grid.height <= 12  # ~45-55 m pixels
    got = _read_aligned(path, grid, tmp_path, "average")
    finite = np.isfinite(got)
    assert finite.mean() > 0.5 and np.allclose(got[finite], 7.0)


@pytest.mark.parametrize("before", [False, True])
def test_the_engine_leaves_gdals_error_mode_as_it_found_it(tmp_path, before):
    """GDAL's exception setting is shared by QGIS and every plugin: the engine switches it on only while it runs,
    and its errors are RasterErrors either way."""
    (gdal.UseExceptions if before else gdal.DontUseExceptions)()
    try:
        path = _write(tmp_path / "r.tif", np.ones((1, 6, 8)))
        assert _read(path).shape == (1, 6, 8)
        assert bool(gdal.GetUseExceptions()) == before
        with pytest.raises(raster_io.RasterError, match="Cannot open raster"):
            raster_io.read_window(str(tmp_path / "missing.tif"), Window(0, 0, 1, 1))
        assert bool(gdal.GetUseExceptions()) == before
    finally:
        gdal.DontUseExceptions()


def test_polygons_extent_in_the_grids_crs(tmp_path):
    """A square drawn in UTM 30N and stored in WGS 84 (GeoJSON): its extent back in UTM, within a metre."""
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    for srs in (UTM30, wgs84):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    square = [(500100, 4000100), (500400, 4000100), (500400, 4000300), (500100, 4000300)]
    ring = [list(osr.CoordinateTransformation(UTM30, wgs84).TransformPoint(x, y)[:2]) for x, y in square]
    path = tmp_path / "square.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}}
    ]}))  # fmt: skip
    extent = raster_io.polygons_extent(str(path), UTM30.ExportToWkt())
    np.testing.assert_allclose(extent, (500100, 4000100, 500400, 4000300), atol=1.0)
