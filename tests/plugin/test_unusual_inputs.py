# SPDX-License-Identifier: GPL-2.0-or-later
"""Unusual inputs that must run through processing.run: many bands, floating-point masks, a guide covering part
of the target, rasters without a CRS. Each inpainting run fills exactly the masked pixels, plausibly."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingFeedback, QgsRasterLayer

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"
CLOUD = (10, 26, 14, 34)  # the s2_scene block mask: rows 10-25, columns 14-33


def run(alg, params, feedback=None):
    import processing

    return processing.run(alg, params, feedback=feedback or QgsProcessingFeedback())


def float_mask(template, dst, values):
    tpl = gdal.Open(str(template))
    ds = gdal.GetDriverByName("GTiff").Create(str(dst), tpl.RasterXSize, tpl.RasterYSize, 1, gdal.GDT_Float32)
    ds.SetProjection(tpl.GetProjection())
    ds.SetGeoTransform(tpl.GetGeoTransform())
    ds.GetRasterBand(1).WriteArray(values.astype(np.float32))
    ds = None
    return dst


def on_grid(path, template) -> np.ndarray:
    """A guide's values on the template's grid, NaN outside its coverage (as the engine warps it)."""
    tpl = gdal.Open(str(template))
    x0, dx, _, y0, _, dy = tpl.GetGeoTransform()
    width, height = tpl.RasterXSize, tpl.RasterYSize
    bounds = (x0, y0 + height * dy, x0 + width * dx, y0)
    options = {"width": width, "height": height, "outputBounds": bounds, "dstNodata": np.nan}
    warped = gdal.Warp("", str(path), format="MEM", outputType=gdal.GDT_Float32, resampleAlg="bilinear", **options)
    return warped.ReadAsArray()


@pytest.fixture
def run_and_check_filled(rasters, inpaint_params):
    """``run_and_check_filled(scene, expected, **parameters)``: inpaint a copy of the target (INPUT) holding POISON
    under ``expected``: the pixels that change must be exactly ``expected`` (masked pixels are filled, the others
    copied), each to a plausible value (``Rasters.assert_filled``). Returns the output."""

    def check(scene, expected, **changes):
        clean = changes.pop("INPUT", scene["target"])
        target = rasters.poisoned(clean, scene["tmp"] / "poisoned.tif", expected)
        out = scene["tmp"] / "filled.tif"
        run(INPAINT, inpaint_params(scene, INPUT=str(target), OUTPUT=str(out), **changes))
        data = (rasters.info(path)["data"] for path in (out, target, clean))
        guides = [on_grid(path, clean) for path in changes.get("GUIDES", [scene["guide"]])]
        rasters.assert_filled(*data, expected, guides)
        return out

    return check


# --- 3. many bands -------------------------------------------------------------------------------


def test_200_band_target_keeps_bands_and_names(mcpn_provider, s2_scene, rasters, inpaint_params):
    tmp = s2_scene["tmp"]
    src = gdal.Open(str(s2_scene["target"]))
    rgb = src.ReadAsArray()
    target = tmp / "bands200.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(target), 48, 48, 200, gdal.GDT_UInt16)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    names = [f"band {i + 1:03d}" for i in range(200)]
    for i, name in enumerate(names):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(rgb[i % 3] + i)
        band.SetDescription(name)
    ds = None
    out = tmp / "out200.tif"
    run(INPAINT, inpaint_params(s2_scene, INPUT=str(target), OUTPUT=str(out)))
    got, truth = rasters.info(out), rasters.info(target)
    assert got["bands"] == 200 and got["descriptions"] == names and got["dtype"] == gdal.GDT_UInt16
    assert QgsRasterLayer(str(out), "out").bandCount() == 200
    clear = ~rasters.block(48, *CLOUD)
    np.testing.assert_array_equal(got["data"][:, clear], truth["data"][:, clear])


# --- 4. floating-point masks ---------------------------------------------------------------------


def probability(size=48):
    """Cloud probability 0..1 (float32) with values on both sides of 0.5 and 0.5 itself."""
    rng = np.random.default_rng(5)
    prob = rng.uniform(0.0, 0.45, (size, size))
    prob[8:20, 6:30] = rng.uniform(0.55, 1.0, (12, 24))
    prob[30:34, 30:40] = 0.5  # exactly the threshold: cloud
    prob[36, 30:40] = np.nextafter(np.float32(0.5), np.float32(0))  # just below: clear
    return prob.astype(np.float32)


def test_float_probability_mask_with_threshold(mcpn_provider, s2_scene, run_and_check_filled):
    prob = probability()
    mask = float_mask(s2_scene["target"], s2_scene["tmp"] / "prob.tif", prob)
    run_and_check_filled(s2_scene, prob >= 0.5, MASK=str(mask), MASK_VALUES=">=0.5")


def test_float_mask_with_value_one(mcpn_provider, s2_scene, rasters, run_and_check_filled):
    cloud = rasters.block(48, *CLOUD)
    mask = float_mask(s2_scene["target"], s2_scene["tmp"] / "float01.tif", cloud.astype(np.float32))
    run_and_check_filled(s2_scene, cloud, MASK=str(mask), MASK_VALUES="1")


def test_guide_covering_part_of_the_target_runs(mcpn_provider, s2_scene, rasters, run_and_check_filled):
    """Outside its coverage the guide is invalid (NaN, left out of its loss); the run still fills the cloud."""
    half = s2_scene["tmp"] / "guide_left_half.tif"
    gdal.Translate(str(half), str(s2_scene["guide"]), srcWin=[0, 0, 24, 48])  # the cloud spans columns 14-33
    out = run_and_check_filled(s2_scene, rasters.block(48, *CLOUD), GUIDES=[str(half)])
    assert rasters.info(out)["geotransform"] == pytest.approx(rasters.info(s2_scene["target"])["geotransform"])


def test_second_guide_covering_part_runs_in_super_resolution(mcpn_provider, sr_scene, rasters, sr_params):
    part = sr_scene["tmp"] / "b04_part.tif"
    gdal.Translate(str(part), str(sr_scene["guides"][1]), srcWin=[10, 10, 30, 20])
    out = sr_scene["tmp"] / "out_part.tif"
    run(SR, sr_params(sr_scene, GUIDES=[str(sr_scene["guides"][0]), str(part)], OUTPUT=str(out)))
    got = rasters.info(out)
    assert got["size"] == (48, 48) and np.isfinite(got["data"]).all()


def test_rasters_all_without_crs_run(mcpn_provider, s2_scene, sr_scene, rasters, run_and_check_filled, sr_params):
    tmp = s2_scene["tmp"]
    bare = {k: rasters.copy_with(s2_scene[k], tmp / f"{k}_nocrs.tif", crs="") for k in ("target", "mask", "guide")}
    params = {"INPUT": str(bare["target"]), "MASK": str(bare["mask"]), "GUIDES": [str(bare["guide"])]}
    got = rasters.info(run_and_check_filled(s2_scene, rasters.block(48, *CLOUD), **params))
    assert got["crs"] == "" and got["geotransform"] == pytest.approx(rasters.info(s2_scene["target"])["geotransform"])

    low = rasters.copy_with(sr_scene["low"], tmp / "low_nocrs.tif", crs="")
    guide = rasters.copy_with(sr_scene["guides"][0], tmp / "b08_nocrs.tif", crs="")
    out = tmp / "sr_nocrs.tif"
    run(SR, sr_params(sr_scene, INPUT=str(low), GUIDES=[str(guide)], OUTPUT=str(out)))
    got = rasters.info(out)
    assert got["crs"] == "" and got["size"] == (48, 48)
