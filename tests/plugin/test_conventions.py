# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS's Processing conventions: the run report as an HTML output, the uncertainty layer styled by a layer
post-processor."""

from __future__ import annotations

import numpy as np
import pytest
from mcpn.algorithms import styles
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputHtml,
    QgsProcessingOutputLayerDefinition,
    QgsProject,
    QgsRasterLayer,
)

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"


# --- the run report ---------------------------------------------------------------------------
def test_the_run_report_is_an_html_output(mcpn_provider, sr_scene, sr_params):
    """REPORT is a .html file destination whose output is a QgsProcessingOutputHtml: the dialog lists it in the
    Results Viewer, qgis_process prints it among the results, models can use it."""
    import processing

    for alg_id in (INPAINT, SR):
        algorithm = QgsApplication.processingRegistry().algorithmById(alg_id)
        assert isinstance(algorithm.outputDefinition("REPORT"), QgsProcessingOutputHtml)
        assert algorithm.hasHtmlOutputs()
    report = sr_scene["tmp"] / "report.html"
    result = processing.run(SR, sr_params(sr_scene, REPORT=str(report)), feedback=QgsProcessingFeedback())
    assert result["REPORT"] == str(report) and report.read_text().startswith("<!DOCTYPE html>")
    result = processing.run(SR, sr_params(sr_scene, OUTPUT=str(sr_scene["tmp"] / "again.tif")))
    assert "REPORT" not in result  # no report asked for: no HTML result


# --- the uncertainty layer's style ------------------------------------------------------------
def test_the_uncertainty_layer_loads_in_pseudocolor_from_zero_to_a_high_percentile(
    mcpn_provider, s2_scene, inpaint_params
):
    """Run as the dialog runs it (layers loaded on completion, then post-processed); the output keeps QGIS's style."""
    import processing

    spread, out = s2_scene["tmp"] / "spread.tif", s2_scene["tmp"] / "out.tif"
    parameters = inpaint_params(s2_scene, ENSEMBLE=2, UNCERTAINTY=str(spread))
    project = QgsProject.instance()
    try:
        processing.runAndLoadResults(INPAINT, parameters, feedback=QgsProcessingFeedback())
        layers = {layer.source(): layer for layer in project.mapLayers().values()}
        renderer = layers[str(spread)].renderer()
        assert renderer.type() == "singlebandpseudocolor" and renderer.band() == 1
        assert renderer.classificationMin() == 0
        assert renderer.classificationMax() == pytest.approx(styles.high_value(str(spread)))
        assert renderer.shader().rasterShaderFunction().sourceColorRamp() is not None
        assert layers[str(out)].renderer().type() != "singlebandpseudocolor"
    finally:
        project.removeAllMapLayers()


def test_the_style_takes_the_percentile_of_the_nonzero_values(qgis_app, tmp_path):
    """Most pixels of an uncertainty layer are clear (0): the ramp's top comes from the filled pixels alone."""
    values = np.zeros((40, 40), dtype="float32")
    values[:10, :10] = np.arange(1, 101).reshape(10, 10)  # a 10 x 10 px cloud, spreads 1..100
    path = str(tmp_path / "spread.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(path, 40, 40, 1, gdal.GDT_Float32)
    dataset.SetGeoTransform((0, 10, 0, 0, 0, -10))
    dataset.GetRasterBand(1).WriteArray(values)
    dataset = None
    layer = QgsRasterLayer(path, "spread")
    styles.SpreadStyle().postProcessLayer(layer, QgsProcessingContext(), QgsProcessingFeedback())
    assert layer.renderer().type() == "singlebandpseudocolor"
    assert (layer.renderer().classificationMin(), layer.renderer().classificationMax()) == (0, pytest.approx(98.02))


def test_the_algorithm_asks_qgis_to_style_the_uncertainty_layer(mcpn_provider, s2_scene, inpaint_params):
    """The post-processor is attached when QGIS will load the layer (settings() alone: nothing is run)."""
    spread = str(s2_scene["tmp"] / "spread.tif")
    context = QgsProcessingContext()
    parameters = inpaint_params(s2_scene, UNCERTAINTY=QgsProcessingOutputLayerDefinition(spread, QgsProject.instance()))
    QgsApplication.processingRegistry().createAlgorithmById(INPAINT).settings(parameters, context)
    style = context.layerToLoadOnCompletionDetails(spread).postProcessor()
    assert isinstance(style, styles.SpreadStyle) and styles._KEPT[spread] is style  # kept until QGIS calls it
