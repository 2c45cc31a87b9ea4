"""From parameter values to the engine's call, without running it (as QGIS tests its GDAL algorithms' command lines).

The option numbers are those of version 0.6.0: saved models and qgis_process calls that use them keep working.
"""

from __future__ import annotations

import pytest
from mcpn.core.choices import DegradationKind, Device, Method, Precision, Start, Stopping
from mcpn.core.config import Settings
from mcpn.core.raster.masks import CloudMask
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"

# the 0.6.0 option numbers, as qgis_process and saved models give them
METHODS_060 = {0: Method.EMERGENT, 1: Method.DIRECT, 2: Method.STACKED}
INPAINTING_STOPPING_060 = {0: Stopping.FIXED, 1: Stopping.KNOWN_RMSE, 2: Stopping.PATCH_CONSISTENCY,
                           3: Stopping.VALIDATED}  # fmt: skip
SR_STOPPING_060 = {0: Stopping.FIXED, 1: Stopping.KNOWN_RMSE, 2: Stopping.VALIDATED}
DEVICES_060 = {0: Device.AUTO, 1: Device.CPU, 2: Device.CUDA, 3: Device.MPS}
PRECISIONS_060 = {0: Precision.FP32, 1: Precision.BF16}
STARTS_060 = {0: Start.ESTIMATE, 1: Start.NOISE}
DEGRADATIONS_060 = {0: DegradationKind.AREA, 1: DegradationKind.BILINEAR}


def settings_of(alg_id: str, parameters: dict) -> tuple[Settings, dict]:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    return algorithm.settings(parameters, QgsProcessingContext())


def test_inpainting_parameters_map_to_the_engine_call(mcpn_provider, s2_scene, tmp_path):
    parameters = {
        "INPUT": str(s2_scene["target"]),
        "MASK": str(s2_scene["mask"]),
        "MASK_VALUES": "3,8-10",
        "MASK_DILATION": 2,
        "GUIDES": [str(s2_scene["guide"])],
        "RADAR_GUIDES": [str(s2_scene["target"])],
        "METHOD": 0,
        "STOPPING": 1,
        "STEPS": 123,
        "DEVICE": 1,
        "SEED": 7,
        "LEARNING_RATE": 0.002,
        "CORE_CHANNELS": 16,
        "ANCHOR": 1,
        "PRECISION": 1,
        "OUTPUT_AVERAGE": 0.5,
        "TILE_SIZE": 128,
        "DASK_SCHEDULER": " local:2 ",
        "TIME_LIMIT": 12.5,
        "SCOPE": 1,
        "REFINE_STEPS": 50,
        "ENSEMBLE": 4,
        "SELF_VALIDATION": True,
        "OUTPUT": str(tmp_path / "out.tif"),
        "UNCERTAINTY": str(tmp_path / "spread.tif"),
    }
    settings, inputs = settings_of(INPAINT, parameters)
    assert settings == Settings(
        method="emergent", stopping="known_rmse", steps=123, device="cpu", seed=7, learning_rate=0.002,
        core_channels=16, anchor="none", precision="bf16", output_average=0.5, tile_size=128, scheduler="local:2",
        ensemble=4, self_validation=True, time_limit=12.5, scope="scene", refine_steps=50,
    )  # fmt: skip
    assert inputs == {
        "target": str(s2_scene["target"]),
        "mask": CloudMask(raster=str(s2_scene["mask"]), values="3,8-10", polygons=None, dilation=2),
        "guides": [str(s2_scene["guide"])],
        "radar_guides": [str(s2_scene["target"])],
        "output": str(tmp_path / "out.tif"),
        "uncertainty": str(tmp_path / "spread.tif"),
    }
    assert not (tmp_path / "out.tif").exists()  # nothing was run or written


def test_defaults_and_no_uncertainty_means_one_fit(mcpn_provider, s2_scene, tmp_path):
    parameters = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])],
                  "OUTPUT": str(tmp_path / "out.tif"), "ENSEMBLE": 5}  # fmt: skip
    settings, inputs = settings_of(INPAINT, parameters)
    assert settings == Settings(ensemble=1)  # the dialog's defaults are the engine's
    assert inputs["uncertainty"] is None and inputs["radar_guides"] == []


def test_super_resolution_parameters_map_to_the_engine_call(mcpn_provider, sr_scene):
    out = str(sr_scene["tmp"] / "out.tif")
    guides = [str(g) for g in sr_scene["guides"]]
    parameters = {"INPUT": str(sr_scene["low"]), "GUIDES": guides, "OUTPUT": out, "STOPPING": 2, "DEGRADATION": 1}
    settings, inputs = settings_of(SR, parameters)
    assert settings == Settings(stopping="validated", degradation="bilinear")  # the sensor blur: estimated
    assert inputs == {"low_res": str(sr_scene["low"]), "guides": guides, "output": out}
    assert settings_of(SR, {**parameters, "SENSOR_BLUR": 0.45})[0].sensor_blur == 0.45
    assert settings_of(SR, {**parameters, "SENSOR_BLUR": 0})[0].sensor_blur == 0
    with pytest.raises(QgsProcessingException, match="at least one high-resolution guide"):
        settings_of(SR, {**parameters, "GUIDES": []})


@pytest.mark.parametrize(
    "alg_id, name, numbers",
    [
        (INPAINT, "METHOD", METHODS_060),
        (INPAINT, "STOPPING", INPAINTING_STOPPING_060),
        (SR, "STOPPING", SR_STOPPING_060),
        (INPAINT, "DEVICE", DEVICES_060),
        (SR, "PRECISION", PRECISIONS_060),
        (SR, "ANCHOR", STARTS_060),
        (SR, "DEGRADATION", DEGRADATIONS_060),
    ],
)
def test_the_060_option_numbers_select_the_same_choice(mcpn_provider, s2_scene, sr_scene, alg_id, name, numbers):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    assert len(algorithm.parameterDefinition(name).options()) == len(numbers)
    field = {"METHOD": "method", "STOPPING": "stopping", "DEVICE": "device", "PRECISION": "precision",
             "ANCHOR": "anchor", "DEGRADATION": "degradation"}[name]  # fmt: skip
    if alg_id == INPAINT:
        base = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])]}
    else:
        base = {"INPUT": str(sr_scene["low"]), "GUIDES": [str(g) for g in sr_scene["guides"]]}
    for number, member in numbers.items():
        settings, _ = settings_of(alg_id, {**base, name: number, "OUTPUT": str(sr_scene["tmp"] / "o.tif")})
        assert getattr(settings, field) is member


@pytest.mark.parametrize("minutes", [-1, 10**6])
def test_a_negative_or_absurd_time_limit_is_refused_before_the_run(mcpn_provider, s2_scene, minutes):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(INPAINT)
    parameters = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]),
                  "GUIDES": [str(s2_scene["guide"])], "OUTPUT": str(s2_scene["tmp"] / "out.tif"),
                  "TIME_LIMIT": minutes}  # fmt: skip
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())
    assert not ok and "TIME_LIMIT" in message
