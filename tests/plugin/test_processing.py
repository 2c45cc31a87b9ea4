# SPDX-License-Identifier: GPL-2.0-or-later
"""The algorithms through processing.run on crops of ../shared/data, with the real engine (tiny configs)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from mcpn.algorithms import compat
from mcpn.core.pipeline import inpainting
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.raster import masks
from osgeo import gdal
from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterLayer,
)

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"
FAST = {"STEPS": 3, "DEVICE": 1, "SEED": 0}


def run(alg, params, feedback=None, context=None):
    import processing

    return processing.run(alg, params, feedback=feedback or QgsProcessingFeedback(), context=context)


def tif_files(folder):
    """Files in a folder, without the .aux.xml statistics side files GDAL/QGIS may add."""
    return sorted(name for name in os.listdir(folder) if not name.endswith(".aux.xml"))


@pytest.fixture
def assert_same_grid(rasters):
    """``assert_same_grid(out, ref, bands, dtype)``: the output has the reference's grid and CRS (EPSG:32630), its
    band count and data type (or those given), and QGIS reads it; the output's ``rasters.info``."""

    def check(out, ref, bands=None, dtype=None):
        return _same_grid(rasters.info(out), rasters.info(ref), out, bands, dtype)

    return check


def _same_grid(got, want, out, bands, dtype):
    assert got["size"] == want["size"]
    assert got["geotransform"] == pytest.approx(want["geotransform"])
    layer = QgsRasterLayer(str(out), "out")
    assert layer.isValid()
    assert layer.crs().authid() == "EPSG:32630"
    assert layer.bandCount() == (bands or want["bands"])
    assert got["dtype"] == (dtype or want["dtype"])
    return got


def test_inpainting_keeps_grid_type_and_clear_pixels(mcpn_provider, s2_scene, rasters, assert_same_grid):
    mask = rasters.block(s2_scene["size"], 10, 26, 14, 34)
    target = rasters.poisoned(s2_scene["target"], s2_scene["tmp"] / "poisoned.tif", mask)
    out = s2_scene["tmp"] / "filled.tif"
    params = {"INPUT": str(target), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])]}
    feedback = QgsProcessingFeedback()
    progress = []
    feedback.progressChanged.connect(progress.append)
    result = run(INPAINT, {**params, **FAST, "OUTPUT": str(out)}, feedback)
    assert result["OUTPUT"] == str(out) and out.is_file()
    assert progress == sorted(progress) and progress[-1] == 100  # the fit to 99 %, the written output 100 %
    got = assert_same_grid(out, s2_scene["target"])
    assert got["dtype"] == gdal.GDT_UInt16
    assert got["descriptions"] == ["B04", "B03", "B02"]
    # clouds filled, with plausible values; clear pixels copied
    clean, guide = (rasters.info(s2_scene[k])["data"] for k in ("target", "guide"))
    rasters.assert_filled(got["data"], rasters.info(target)["data"], clean, mask, [guide])
    assert tif_files(s2_scene["tmp"]) == ["filled.tif", "guide.tif", "mask.tif", "poisoned.tif", "target.tif"]


def test_inpainting_other_options_and_nodata(mcpn_provider, s2_scene, rasters, assert_same_grid):
    """Stacked method, known-RMSE stopping, bf16, SCL-like mask values, dilation, a target nodata value."""
    tmp = s2_scene["tmp"]
    scl = np.full((48, 48), 4, dtype=np.uint8)
    scl[5:12, 5:12] = 9
    scl[30:40, 20:30] = 3
    scl[2, 40] = 8  # a one-pixel cloud: grown by the dilation
    grown = masks.dilate(np.isin(scl, [3, 8, 9]), 1)
    holes = np.zeros_like(grown)
    holes[44, 2:6] = True  # nodata pixels outside the clouds: filled too
    gdal.Translate(str(tmp / "target_nd.tif"), str(s2_scene["target"]), noData=0)
    target = rasters.poisoned(tmp / "target_nd.tif", tmp / "poisoned.tif", grown)
    ds = gdal.Open(str(target), gdal.GA_Update)
    for i in range(3):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(np.where(holes, 0, band.ReadAsArray()))
    ds = None
    mask = rasters.mask(target, tmp / "scl.tif", scl > 0)
    ds = gdal.Open(str(mask), gdal.GA_Update)
    ds.GetRasterBand(1).WriteArray(scl)
    ds = None
    out = tmp / "stacked.tif"
    params = {
        "INPUT": str(target),
        "MASK": str(mask),
        "MASK_VALUES": "3, 8-10",
        "GUIDES": [str(s2_scene["guide"]), str(s2_scene["guide"])],
        "METHOD": 2,
        "STOPPING": 1,
        "MASK_DILATION": 1,
        "PRECISION": 1,
        "OUTPUT_AVERAGE": 0.5,
        "OUTPUT": str(out),
        **FAST,
    }
    feedback = QgsProcessingFeedback()
    run(INPAINT, params, feedback)
    assert "precision: bf16, output averaging: 0.5." in feedback.textLog()
    got = assert_same_grid(out, target)
    assert got["nodata"] == 0
    # exactly the grown clouds and the nodata holes change; the clouds to plausible values, the holes not to nodata
    clean = rasters.info(s2_scene["target"])["data"]
    guide = rasters.info(s2_scene["guide"])["data"]
    rasters.assert_filled(got["data"], rasters.info(target)["data"], clean, grown | holes, [guide, guide], scored=grown)
    assert (got["data"][:, holes] != 0).all()


def test_inpainting_direct_with_patch_consistency(mcpn_provider, s2_scene, monkeypatch, assert_same_grid):
    """Offline (no download, an empty torch cache): the fixed filter bank stands in for Inception, and says so."""
    monkeypatch.setenv("MCPN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(s2_scene["tmp"] / "torch"))
    out = s2_scene["tmp"] / "direct.tif"
    params = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])]}
    feedback = QgsProcessingFeedback()
    messages = []
    feedback.pushInfo = messages.append  # type: ignore[method-assign]
    run(INPAINT, {**params, **FAST, "METHOD": 1, "STOPPING": 2, "OUTPUT": str(out)}, feedback)
    assert_same_grid(out, s2_scene["target"])
    assert any(m.startswith("Device: cpu") for m in messages), messages
    assert any(m.startswith("Chosen step(s):") for m in messages), messages
    assert any("fixed filter bank" in m for m in messages), messages


def test_inpainting_without_cloud_copies_input(mcpn_provider, s2_scene, rasters):
    clear = rasters.mask(s2_scene["target"], s2_scene["tmp"] / "clear.tif", np.zeros((48, 48), bool))
    out = s2_scene["tmp"] / "copy.tif"
    feedback = QgsProcessingFeedback()
    messages = []
    feedback.pushInfo = messages.append  # type: ignore[method-assign]
    params = {"INPUT": str(s2_scene["target"]), "MASK": str(clear), "GUIDES": [str(s2_scene["guide"])]}
    run(INPAINT, {**params, **FAST, "OUTPUT": str(out)}, feedback)
    np.testing.assert_array_equal(rasters.info(out)["data"], rasters.info(s2_scene["target"])["data"])
    assert any("target is copied" in m for m in messages), messages


def test_super_resolution_takes_first_guide_grid(mcpn_provider, sr_scene, assert_same_grid):
    """The first guide's grid; the input's type, band name and nodata, which stays where the input has none."""
    low = gdal.Open(str(sr_scene["low"]), gdal.GA_Update)
    band = low.GetRasterBand(1)
    values = band.ReadAsArray()
    values[:, :4] = 0  # a swath edge: 4 columns of 20 m pixels without data
    band.WriteArray(values)
    band.SetNoDataValue(0)
    band.SetDescription("B8A")
    low = None
    out = sr_scene["tmp"] / "b8a_10m.tif"
    guides = [str(g) for g in sr_scene["guides"]]
    run(SR, {"INPUT": str(sr_scene["low"]), "GUIDES": guides, "STOPPING": 1, "OUTPUT": str(out), **FAST})
    got = assert_same_grid(out, sr_scene["guides"][0], bands=1, dtype=gdal.GDT_UInt16)
    assert got["data"].shape == (48, 48) and got["descriptions"] == ["B8A"] and got["nodata"] == 0
    assert (got["data"][:, :8] == 0).all() and (got["data"][:, 8:] > 0).all()


def test_output_layer_name(mcpn_provider, s2_scene):
    """As the dialog runs it (the output a layer definition for the project): the run itself asks QGIS to load its
    output, under a meaningful name, and the layer Processing then adds to the map is the filled raster."""
    out = s2_scene["tmp"] / "named.tif"
    project, context = QgsProject.instance(), QgsProcessingContext()
    context.setProject(project)
    params = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])]}
    run(INPAINT, {**params, **FAST, "OUTPUT": QgsProcessingOutputLayerDefinition(str(out), project)}, context=context)
    assert list(context.layersToLoadOnCompletion()) == [str(out)]
    details = context.layerToLoadOnCompletionDetails(str(out))
    try:  # what Processing does on completion (processing.gui.Postprocessing.handleAlgorithmResults)
        layer = QgsProcessingUtils.mapLayerFromString(str(out), context)
        details.setOutputLayerName(layer)
        details.project.addMapLayer(context.temporaryLayerStore().takeMapLayer(layer))
        (added,) = project.mapLayersByName("Guided cloud inpainting – target")
        assert added.isValid() and added.source() == str(out) and added.bandCount() == 3
    finally:
        project.removeAllMapLayers()


def test_model_super_resolution_then_inpainting(mcpn_provider, sr_scene, rasters, assert_same_grid):
    """A Processing model chaining both algorithms runs end to end."""
    tmp = sr_scene["tmp"]
    mask = rasters.mask(sr_scene["guides"][0], tmp / "mask.tif", rasters.block(48, 8, 20, 8, 24))
    model = QgsProcessingModelAlgorithm("sr_then_inpaint", "tests")
    for definition in (
        QgsProcessingParameterRasterLayer("low", "low"),
        QgsProcessingParameterMultipleLayers("guides", "guides", compat.SOURCE_RASTER),
        QgsProcessingParameterRasterLayer("mask", "mask"),
    ):
        model.addModelParameter(definition, QgsProcessingModelParameter(definition.name()))

    def static(child, name, value):
        child.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])

    def from_input(child, name, input_name):
        child.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromModelParameter(input_name)])

    sr = QgsProcessingModelChildAlgorithm(SR)
    sr.setChildId("sr")
    from_input(sr, "INPUT", "low")
    from_input(sr, "GUIDES", "guides")
    inpaint = QgsProcessingModelChildAlgorithm(INPAINT)
    inpaint.setChildId("inpaint")
    inpaint.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromChildOutput("sr", "OUTPUT")])
    from_input(inpaint, "MASK", "mask")
    from_input(inpaint, "GUIDES", "guides")
    static(inpaint, "MASK_VALUES", "1")
    for child in (sr, inpaint):  # as a model saved by 0.5.0: no ANCHOR nor DEGRADATION (optional, defaults used)
        for name, value in {
            "METHOD": 1,
            "STOPPING": 0,
            **FAST,
            "LEARNING_RATE": 0,
            "CORE_CHANNELS": 8,
            "PRECISION": 0,
            "OUTPUT_AVERAGE": 0.99,
        }.items():
            static(child, name, value)
        static(child, "TILE_SIZE", 256)
    static(inpaint, "MASK_DILATION", 0)
    static(inpaint, "ENSEMBLE", 3)
    static(inpaint, "SELF_VALIDATION", False)
    output = QgsProcessingModelOutput("result", "result")
    output.setChildId("inpaint")
    output.setChildOutputName("OUTPUT")
    inpaint.setModelOutputs({"result": output})
    model.addChildAlgorithm(sr)
    model.addChildAlgorithm(inpaint)
    model.updateDestinationParameters()
    ok, message = model.validate() if hasattr(model, "validate") else (True, "")
    assert ok, message

    out = tmp / "model_result.tif"
    # the model's output parameter: "inpaint:result" on QGIS 3.22, "result" (the output's own name) on 3.40
    (result_name,) = [definition.name() for definition in model.destinationParameterDefinitions()]
    params = {
        "low": str(sr_scene["low"]),
        "guides": [str(g) for g in sr_scene["guides"]],
        "mask": str(mask),
        result_name: str(out),
    }
    import processing

    result = processing.run(model, params, feedback=QgsProcessingFeedback())
    assert result[result_name] == str(out)
    assert_same_grid(out, sr_scene["guides"][0], bands=1, dtype=gdal.GDT_UInt16)


def test_inpainting_warps_mask_and_guides_on_other_grids(mcpn_provider, s2_scene, rasters, assert_same_grid):
    """A 20 m mask (nearest) and a 20 m guide (bilinear) are put on the 10 m target grid."""
    tmp = s2_scene["tmp"]
    coarse = np.zeros((24, 24), dtype=bool)
    coarse[4:10, 6:14] = True
    mask20 = tmp / "mask20.tif"
    gdal.Translate(str(mask20), str(s2_scene["mask"]), width=24, height=24)  # same extent, 20 m
    ds = gdal.Open(str(mask20), gdal.GA_Update)
    ds.GetRasterBand(1).WriteArray(coarse.astype(np.uint8))
    ds = None
    guide20 = tmp / "guide20.tif"
    gdal.Translate(str(guide20), str(s2_scene["guide"]), width=24, height=24, resampleAlg="average")
    out = tmp / "warped.tif"
    params = {"INPUT": str(s2_scene["target"]), "MASK": str(mask20), "GUIDES": [str(guide20)], "OUTPUT": str(out)}
    run(INPAINT, {**params, **FAST})
    got = assert_same_grid(out, s2_scene["target"])
    fine = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
    truth = rasters.info(s2_scene["target"])["data"]
    np.testing.assert_array_equal(got["data"][:, ~fine], truth[:, ~fine])
    assert not np.array_equal(got["data"][:, fine], truth[:, fine])


def test_polygon_mask_uncertainty_self_validation_and_report(mcpn_provider, s2_scene, rasters):
    """Clouds drawn as a polygon in EPSG:4326 (a memory layer), an uncertainty layer and an HTML report."""
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsFeature,
        QgsGeometry,
        QgsProject,
        QgsRectangle,
        QgsVectorLayer,
    )

    tmp = s2_scene["tmp"]
    x0, _, _, y0, _, _ = rasters.info(s2_scene["target"])["geotransform"]
    square = QgsGeometry.fromRect(QgsRectangle(x0 + 100, y0 - 300, x0 + 250, y0 - 150))  # rows 15-30, cols 10-25
    utm, wgs84 = QgsCoordinateReferenceSystem("EPSG:32630"), QgsCoordinateReferenceSystem("EPSG:4326")
    square.transform(QgsCoordinateTransform(utm, wgs84, QgsProject.instance()))
    clouds = QgsVectorLayer("Polygon?crs=EPSG:4326", "clouds", "memory")
    feature = QgsFeature()
    feature.setGeometry(square)
    clouds.dataProvider().addFeatures([feature])
    out, spread, report = tmp / "filled.tif", tmp / "spread.tif", tmp / "report.html"
    params = {"INPUT": str(s2_scene["target"]), "MASK_POLYGONS": clouds, "GUIDES": [str(s2_scene["guide"])]}
    result = run(
        INPAINT,
        {**params, **FAST, "STOPPING": 0, "ENSEMBLE": 2, "SELF_VALIDATION": True, "OUTPUT": str(out),
         "UNCERTAINTY": str(spread), "REPORT": str(report)},
    )  # fmt: skip
    assert result == {"OUTPUT": str(out), "UNCERTAINTY": str(spread), "REPORT": str(report)}
    cloud = rasters.block(48, 15, 30, 10, 25)
    values = rasters.info(spread)["data"]
    assert (values[:, ~cloud] == 0).all()
    assert (values[:, cloud] > 0).mean() > 0.9  # the polygon's pixels, up to its edges
    np.testing.assert_array_equal(
        rasters.info(out)["data"][:, ~cloud], rasters.info(s2_scene["target"])["data"][:, ~cloud]
    )
    page = report.read_text()
    assert "Self-validation" in page and "GDAL Fill nodata" in page and "data:image/png;base64" in page
    assert "<td>Mask values meaning cloud</td><td>1</td>" in page and "<td>&#x27;" not in page  # no Python quotes


def test_radar_guides_are_converted_to_db_and_the_other_guides_are_not(
    mcpn_provider, tmp_path, monkeypatch, rasters, shared_data
):
    """The real S1/S2 patch: the same radar file as a plain guide and as a radar guide; only the latter goes to dB."""
    folder = shared_data / "s1_sar_guide"
    mask = rasters.crop(folder / "cloud_mask.tif", tmp_path / "mask.tif", 104, 104, 48)
    cloud = rasters.info(mask)["data"] == 1
    rgb = rasters.crop(folder / "s2_2019_mean_rgb.tif", tmp_path / "rgb.tif", 104, 104, 48)
    target = rasters.poisoned(rgb, tmp_path / "target.tif", cloud)
    sar = rasters.crop(folder / "s1_2020_sar.tif", tmp_path / "sar.tif", 104, 104, 48)
    calls = []

    def spy(target, mask, guides, output, settings, **kwargs):
        calls.append((list(guides), list(kwargs["radar_guides"])))
        return inpaint_raster(target, mask, guides, output, settings, **kwargs)

    monkeypatch.setattr(inpainting, "inpaint_raster", spy)
    params = {"INPUT": str(target), "MASK": str(mask), **FAST}
    run(INPAINT, {**params, "RADAR_GUIDES": [str(sar)], "OUTPUT": str(tmp_path / "radar.tif")})
    run(INPAINT, {**params, "GUIDES": [str(sar)], "RADAR_GUIDES": [str(sar)], "OUTPUT": str(tmp_path / "both.tif")})
    assert calls == [([], [str(sar)]), ([str(sar)], [str(sar)])]
    backscatter = rasters.info(sar)["data"]
    for name, guides in (("radar.tif", [backscatter]), ("both.tif", [backscatter, backscatter])):
        data = (rasters.info(p)["data"] for p in (tmp_path / name, target, rgb))
        rasters.assert_filled(*data, cloud, guides, radar=[len(guides) - 1])
    with pytest.raises(QgsProcessingException, match="Select at least one guide raster"):
        run(INPAINT, {**params, "OUTPUT": str(tmp_path / "none.tif")})
    assert not (tmp_path / "none.tif").exists()


@pytest.mark.parametrize(
    "gdal_type, nodata, scale",
    [(gdal.GDT_Byte, 255, 0.05), (gdal.GDT_Int16, -9999, 1.0), (gdal.GDT_Float32, -3.4e38, 1e-4)],
    ids=["Byte", "Int16", "Float32"],
)
def test_other_data_types_keep_type_nodata_and_clear_pixels(mcpn_provider, s2_scene, gdal_type, nodata, scale, rasters):
    target = s2_scene["tmp"] / "typed.tif"
    gdal.Translate(
        str(target), str(s2_scene["target"]), outputType=gdal_type, noData=nodata, scaleParams=[[0, 1, 0, scale]]
    )
    out = s2_scene["tmp"] / "out.tif"
    run(INPAINT, {"INPUT": str(target), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])],
                  **FAST, "OUTPUT": str(out)})  # fmt: skip
    got, truth = rasters.info(out), rasters.info(target)
    assert (got["dtype"], got["nodata"], got["descriptions"]) == (gdal_type, truth["nodata"], ["B04", "B03", "B02"])
    cloud = rasters.block(s2_scene["size"], 10, 26, 14, 34)
    np.testing.assert_array_equal(got["data"][:, ~cloud], truth["data"][:, ~cloud])
    assert np.isfinite(got["data"][:, cloud]).all() and (got["data"][:, cloud] != got["nodata"]).all()
