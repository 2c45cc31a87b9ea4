# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS's Processing conventions: the run report as an HTML output."""

from __future__ import annotations

from qgis.core import (
    QgsApplication,
    QgsProcessingFeedback,
    QgsProcessingOutputHtml,
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
