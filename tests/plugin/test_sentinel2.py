# SPDX-License-Identifier: GPL-2.0-or-later
"""The Sentinel-2 cloud-free product (mcpn:sentinel2product) through processing.run and qgis_process, on small real
products built from ../shared/data (tests/conftest.py: s2_products)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mcpn.core.raster.sentinel2 import BANDS
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsProcessingFeedback

ALG = "mcpn:sentinel2product"
FAST = {"STEPS": 20, "DEVICE": 1, "SEED": 0}


def clear_pixels_are_the_reflectance(path, scene) -> None:
    """Ten named bands on the 10 m grid; the clear 10 m pixels are the clear date's reflectance (offset removed)."""
    ds = gdal.Open(str(path))
    size, cloud = scene["size"], scene["target"].cloud
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (size, size, 10)
    assert ds.GetGeoTransform()[1] == 10 and ds.GetRasterBand(1).GetNoDataValue() == 0
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(10)] == list(BANDS)
    for index, band in enumerate(["B02", "B03", "B04", "B08"]):
        truth = gdal.Open(str(scene["truth"] / f"{band}.tif")).ReadAsArray(420, 378, size, size)
        values = ds.GetRasterBand(index + 1).ReadAsArray()
        np.testing.assert_array_equal(values[~cloud], truth[~cloud])
        assert (values[cloud] < 20000).all()  # filled, not the poisoned cloud


def test_processing_run(mcpn_provider, s2_products):
    import processing

    scene = s2_products()
    out = scene["tmp"] / "product.tif"
    params = {"INPUT": scene["target"].safe, "GUIDES": [scene["guide"].metadata], "OUTPUT": str(out), **FAST}
    result = processing.run(ALG, params, feedback=QgsProcessingFeedback())
    assert result["OUTPUT"] == str(out)
    clear_pixels_are_the_reflectance(out, scene)


def test_qgis_process_zip(s2_products, qgis_process):
    """The zip as downloaded, with a filled-pixels mask, from the command line."""
    scene = s2_products()
    tmp = scene["tmp"]
    safe = scene["target"].safe
    archive = shutil.make_archive(safe[: -len(".SAFE")], "zip", tmp, safe.split("/")[-1])
    out, filled = tmp / "cli.tif", tmp / "filled.tif"
    done = qgis_process(
        "run", ALG, "--json", "--", f"INPUT={archive}", f"GUIDES={scene['guide'].safe}", "STEPS=20", "DEVICE=1",
        f"OUTPUT={out}", f"FILLED={filled}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["results"]["OUTPUT"] == str(out) and result["results"]["FILLED"] == str(filled)
    clear_pixels_are_the_reflectance(out, scene)
    np.testing.assert_array_equal(gdal.Open(str(filled)).ReadAsArray(), scene["target"].cloud)


@pytest.mark.parametrize("case", ["level1c_without_mask", "not_sentinel2", "no_guide"])
def test_errors_are_messages_and_leave_no_output(mcpn_provider, s2_products, case):
    import processing

    scene = s2_products(level="1C" if case == "level1c_without_mask" else "2A")
    out = scene["tmp"] / "out.tif"
    params = {"INPUT": scene["target"].safe, "GUIDES": [scene["guide"].safe], "OUTPUT": str(out), **FAST}
    expected = {
        "level1c_without_mask": "has no scene classification layer",
        "not_sentinel2": "is not a Sentinel-2 product",
        "no_guide": "Select at least one guide product",
    }[case]
    if case == "not_sentinel2":
        params["INPUT"] = str(scene["truth"] / "B02.tif")
    if case == "no_guide":
        params["GUIDES"] = []
    with pytest.raises(QgsProcessingException, match=expected):
        processing.run(ALG, params, feedback=QgsProcessingFeedback())
    assert not out.exists()


def test_parameters_map_to_the_engine_call(mcpn_provider, s2_products):
    """Defaults: the engine's settings with one network for the scene, the SCL cloud classes, the ten bands; an
    extent in another CRS becomes the area in the product's CRS; the bands chosen, in their order."""
    from mcpn.core.config import Settings
    from qgis.core import QgsApplication, QgsProcessingContext

    scene = s2_products()
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    params = {"INPUT": scene["target"].safe, "GUIDES": [scene["guide"].safe], "OUTPUT": str(scene["tmp"] / "o.tif")}
    settings, inputs = algorithm.settings(params, QgsProcessingContext())
    assert settings == Settings(scope="scene")
    assert inputs["cloud_classes"] == "3,8,9,10" and inputs["mask"] is None and inputs["area"] is None
    assert inputs["area_polygons"] is None
    assert inputs["bands"] == list(BANDS) and inputs["guides"] == [scene["guide"].safe]
    gt = gdal.Open(str(scene["truth"] / "B02.tif")).GetGeoTransform()
    x, y = gt[0] + 4300, gt[3] - 3900  # in the product's UTM 30N
    extent = f"{x},{x + 200},{y},{y + 100} [EPSG:32630]"
    _, inputs = algorithm.settings({**params, "EXTENT": extent, "BANDS": [8, 0]}, QgsProcessingContext())
    assert inputs["area"] == pytest.approx((x, y, x + 200, y + 100))
    assert inputs["bands"] == ["B11", "B02"]


def test_level1c_with_a_mask_layer(mcpn_provider, s2_products, rasters):
    """Level-1C (no scene classification, RADIO_ADD_OFFSET): the clouds come from the mask layer."""
    import processing

    scene = s2_products(level="1C")
    template = next(Path(scene["target"].safe).rglob("*_B02.jp2"))
    mask = rasters.mask(template, scene["tmp"] / "mask.tif", scene["target"].cloud)
    out = scene["tmp"] / "l1c.tif"
    params = {"INPUT": scene["target"].metadata, "GUIDES": [scene["guide"].safe], "MASK": str(mask), "OUTPUT": str(out)}
    processing.run(ALG, {**params, **FAST}, feedback=QgsProcessingFeedback())
    clear_pixels_are_the_reflectance(out, scene)


def test_area_of_interest_polygons_clip_the_output(mcpn_provider, s2_products):
    """A triangle given in WGS 84 (GeoJSON): the output covers its extent in whole 20 m pixels and is nodata
    outside the triangle, in every band and in the filled-pixels mask; inside it, the product."""
    import processing
    from osgeo import osr

    scene = s2_products()
    gt = gdal.Open(str(scene["truth"] / "B02.tif")).GetGeoTransform()
    x0, y0 = gt[0] + 420 * 10 + 60, gt[3] - 378 * 10 - 60  # 60 m into the product: a 20 m pixel corner
    utm, wgs84 = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32630)
    wgs84.ImportFromEPSG(4326)
    for srs in (utm, wgs84):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    corners = [(x0, y0), (x0 + 360, y0), (x0, y0 - 360)]
    ring = [list(osr.CoordinateTransformation(utm, wgs84).TransformPoint(x, y)[:2]) for x, y in corners]
    geometry = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    area = scene["tmp"] / "area.geojson"
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                                                            "geometry": geometry}]}))  # fmt: skip
    out, filled = scene["tmp"] / "clipped.tif", scene["tmp"] / "filled.tif"
    params = {"INPUT": scene["target"].safe, "GUIDES": [scene["guide"].safe], "AREA_POLYGONS": str(area),
              "OUTPUT": str(out), "FILLED": str(filled), **FAST}  # fmt: skip
    processing.run(ALG, params, feedback=QgsProcessingFeedback())
    ds = gdal.Open(str(out))
    left, size, _, top, _, _ = ds.GetGeoTransform()
    assert size == 10 and abs(left - x0) <= 20 and abs(top - y0) <= 20
    assert 36 <= ds.RasterXSize <= 40 and 36 <= ds.RasterYSize <= 40
    rows, cols = np.mgrid[: ds.RasterYSize, : ds.RasterXSize]
    east, south = left + 10 * (cols + 0.5) - x0, y0 - (top - 10 * (rows + 0.5))  # pixel centres from the corner
    inside = (east > 10) & (south > 10) & (east + south < 350)
    outside = (east < -10) | (south < -10) | (east + south > 370)
    values, mask = ds.ReadAsArray(), gdal.Open(str(filled)).ReadAsArray()
    assert (values[:, outside] == 0).all() and (mask[outside] == 0).all()
    assert (values[:, inside] > 0).all() and outside.sum() > 100 and mask[inside].any()
