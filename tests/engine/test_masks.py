"""Unit tests of core/raster/masks.py: mask values, ranges, thresholds, dilation."""

from __future__ import annotations

import numpy as np
import pytest
from mcpn.core.raster import masks
from mcpn.core.raster.io import read_window
from mcpn.core.raster.tiling import Window
from osgeo import gdal


def test_parse_values_lists_ranges_thresholds():
    assert masks.parse_mask_values("1") == [(1.0, 1.0)]
    assert masks.parse_mask_values(" 3, 8,9 ,10 ") == [(3, 3), (8, 8), (9, 9), (10, 10)]
    assert masks.parse_mask_values("8-10;3") == [(8, 10), (3, 3)]
    assert masks.parse_mask_values("-5") == [(-5, -5)]
    assert masks.parse_mask_values(">=40") == [(40, np.inf)]
    low, high = masks.parse_mask_values(">40")[0]
    assert low > 40 and high == np.inf


@pytest.mark.parametrize("text", ["", "  ", ",", "cloud", "3,x", ">=a"])
def test_parse_values_rejects_garbage(text):
    with pytest.raises(masks.MaskError):
        masks.parse_mask_values(text)


def test_scl_values_select_cloud_classes():
    scl = np.array([[0, 3, 4, 8], [9, 10, 11, 7]], dtype=float)
    got = masks.mask_from_values(scl, "3,8,9,10")
    assert got.dtype == bool
    np.testing.assert_array_equal(got, [[False, True, False, True], [True, True, False, False]])


def test_single_band_3d_and_nan_are_handled():
    data = np.array([[[1, 0], [np.nan, 1]]], dtype=float)
    np.testing.assert_array_equal(masks.mask_from_values(data, "1"), [[True, False], [False, True]])


def test_multiband_mask_is_or_of_bands():
    data = np.zeros((2, 2, 2))
    data[0, 0, 0] = 1
    data[1, 1, 1] = 1
    np.testing.assert_array_equal(masks.mask_from_values(data, "1"), [[True, False], [False, True]])


def test_threshold():
    prob = np.array([[0, 39.9], [40, 100]])
    np.testing.assert_array_equal(masks.mask_from_values(prob, ">=40"), [[False, False], [True, True]])
    np.testing.assert_array_equal(masks.mask_from_values(prob, ">40"), [[False, False], [False, True]])


def test_dilation_is_a_disk_and_respects_edges():
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    assert masks.dilate(mask, 0).sum() == 1
    one = masks.dilate(mask, 1)
    assert one.sum() == 5  # 4-neighbourhood
    two = masks.dilate(mask, 2)
    assert two.sum() == 13 and not two[2, 2] and two[2, 4]
    corner = np.zeros((5, 5), dtype=bool)
    corner[0, 0] = True
    assert masks.dilate(corner, 1).sum() == 3
    assert not masks.dilate(np.zeros((4, 4), bool), 3).any()
    with pytest.raises(masks.MaskError):
        masks.dilate(mask, -1)


def test_dilation_does_not_modify_input():
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 2] = True
    masks.dilate(mask, 2)
    assert mask.sum() == 1


def test_a_float_mask_raster_with_nodata(tmp_path):
    """A cloud probability raster (float32) with a nodata value: thresholds read it exactly, nodata is no cloud."""
    rng = np.random.default_rng(5)
    prob = rng.uniform(0.0, 1.0, (16, 16)).astype(np.float32)
    prob[3, :] = 0.5  # exactly the threshold: cloud for ">=0.5", clear for ">0.5"
    prob[4, :] = np.nextafter(np.float32(0.5), np.float32(0))  # just below: clear
    prob[0, 0] = -9999.0
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "prob.tif"), 16, 16, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0))
    ds.GetRasterBand(1).WriteArray(prob)
    ds.GetRasterBand(1).SetNoDataValue(-9999.0)
    ds = None
    data = read_window(str(tmp_path / "prob.tif"), Window(0, 0, 16, 16))
    assert np.isnan(data[0, 0, 0])
    expected = prob >= 0.5
    expected[0, 0] = False  # nodata is not cloud
    np.testing.assert_array_equal(masks.mask_from_values(data, ">=0.5"), expected)
    np.testing.assert_array_equal(masks.mask_from_values(data, ">0.5"), prob > 0.5)
    np.testing.assert_array_equal(masks.mask_from_values(np.float32([[0.0, 1.0]]), "1"), [[False, True]])
