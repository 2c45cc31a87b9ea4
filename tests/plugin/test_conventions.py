# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS's Processing conventions: the run report as an HTML output, the uncertainty layer styled by a layer
post-processor, and the provider's settings in Processing's options (read by the algorithms and qgis_process)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from mcpn.algorithms import provider_settings, styles
from mcpn.core.choices import Device
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
from qgis_env import PROFILE, QGIS_PROCESS, qgis_environment  # scripts/, put on sys.path by tests/conftest.py

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"


class Log(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):  # noqa: N802  (QGIS signature)
        self.lines.append(info)


@pytest.fixture
def provider_setting(mcpn_provider):
    """``provider_setting(name, value)``: a provider setting changed for the test (in memory, not in the profile);
    a selection's ``value`` is its option number."""
    from processing.core.ProcessingConfig import ProcessingConfig

    saved = {}

    def change(name, value):
        setting = ProcessingConfig.settings[name]
        saved.setdefault(name, setting.value)
        setting.setValue(setting.options[value] if setting.options else value)

    yield change
    for name, value in saved.items():
        ProcessingConfig.settings[name].setValue(value)


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
    """As the dialog runs it: the layers the run asks QGIS to load, then post-processed; the output keeps QGIS's
    style. (Done here as Processing does it, without its GUI loader, which needs a full QGIS interface.)"""
    import processing

    spread, out = s2_scene["tmp"] / "spread.tif", s2_scene["tmp"] / "out.tif"
    project, context, feedback = QgsProject.instance(), QgsProcessingContext(), QgsProcessingFeedback()
    load = {
        name: QgsProcessingOutputLayerDefinition(str(path), project)
        for name, path in (("OUTPUT", out), ("UNCERTAINTY", spread))
    }  # fmt: skip  (outputs to load into the project)
    parameters = inpaint_params(s2_scene, ENSEMBLE=2, **load)
    context.setProject(project)
    try:
        processing.run(INPAINT, parameters, context=context, feedback=feedback)
        layers = {}
        for path, details in context.layersToLoadOnCompletion().items():
            layer = QgsRasterLayer(path, details.name)
            project.addMapLayer(layer)
            if details.postProcessor():
                details.postProcessor().postProcessLayer(layer, context, feedback)
            layers[path] = layer
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


# --- the provider's settings ------------------------------------------------------------------
def test_the_provider_adds_its_settings_to_processings_options_and_removes_them(mcpn_provider):
    from processing.core.ProcessingConfig import ProcessingConfig

    names = {provider_settings.DEVICE, provider_settings.THREADS, provider_settings.TIME_LIMIT}
    assert {setting.name for setting in ProcessingConfig.getSettings()["MCPN"]} == names
    assert ProcessingConfig.getSetting(provider_settings.DEVICE) == Device.AUTO.number
    assert int(ProcessingConfig.getSetting(provider_settings.THREADS)) == 0
    mcpn_provider.unload()
    try:
        assert not names & set(ProcessingConfig.settings)
    finally:
        mcpn_provider.load()
    assert names <= set(ProcessingConfig.settings)


def test_auto_means_the_providers_default_device_and_a_chosen_device_overrides_it(
    mcpn_provider, provider_setting, s2_scene, inpaint_params
):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(INPAINT)

    def settings(**changes):
        return algorithm.settings(inpaint_params(s2_scene, **changes), QgsProcessingContext())[0]

    assert (settings(DEVICE=0).device, settings(DEVICE=0).threads) == (Device.AUTO, None)  # the defaults
    provider_setting(provider_settings.DEVICE, Device.MPS.number)
    provider_setting(provider_settings.THREADS, 3)
    assert settings(DEVICE=0).device is Device.MPS and settings(DEVICE=0).threads == 3
    assert settings(DEVICE=1).device is Device.CPU  # the parameter's own choice wins


def test_a_time_limit_of_0_means_the_providers_default_time_limit(mcpn_provider, provider_setting, s2_scene,
                                                                  inpaint_params):  # fmt: skip
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(INPAINT)

    def settings(**changes):
        return algorithm.settings(inpaint_params(s2_scene, **changes), QgsProcessingContext())[0]

    assert settings(TIME_LIMIT=0).time_limit == 0  # none by default
    provider_setting(provider_settings.TIME_LIMIT, "45")  # saved values come back from the profile as text
    assert settings(TIME_LIMIT=0).time_limit == 45 and settings(TIME_LIMIT=5).time_limit == 5


def test_the_thread_setting_is_the_thread_count_a_run_reports(mcpn_provider, provider_setting, sr_scene, sr_params):
    import processing

    provider_setting(provider_settings.THREADS, 1)
    log = Log()
    processing.run(SR, sr_params(sr_scene), feedback=log)
    assert any("; CPU threads: 1 for " in line for line in log.lines), log.lines


def test_qgis_process_reads_the_settings_of_its_profile(sr_scene, tmp_path):
    """qgis_process has no dialog: the provider's settings come from the profile's QGIS3.ini."""
    profile = tmp_path / "profile"
    shutil.copytree(PROFILE, profile, symlinks=True)
    ini = profile / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.write_text(ini.read_text() + f"\n[Processing]\nConfiguration\\{provider_settings.THREADS}=1\n")
    command = [QGIS_PROCESS, "run", SR, "--", f"INPUT={sr_scene['low']}", f"OUTPUT={tmp_path / 'out.tif'}"]
    command += [f"GUIDES={guide}" for guide in sr_scene["guides"]] + ["STEPS=2", "DEVICE=1"]
    env = {**qgis_environment(), "QGIS_CUSTOM_CONFIG_PATH": str(profile)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "; CPU threads: 1 for " in done.stdout, done.stdout[-2000:]
