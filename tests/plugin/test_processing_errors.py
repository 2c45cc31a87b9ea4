# SPDX-License-Identifier: GPL-2.0-or-later
"""What goes wrong through processing.run ends in one readable QgsProcessingException and no output: input the
engine refuses, a missing pair of parameters, missing packages, a broken engine, an unexpected failure."""

from __future__ import annotations

import numpy as np
import pytest
from mcpn.core.pipeline import inpainting
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsProcessingFeedback

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"
FAST = {"STEPS": 3, "DEVICE": 1, "SEED": 0}


def run(alg, params, feedback=None):
    import processing

    return processing.run(alg, params, feedback=feedback or QgsProcessingFeedback())


@pytest.mark.parametrize("case", ["all_cloud", "no_overlap", "mask_no_overlap", "bad_values"])
def test_inpainting_bad_inputs_raise_readable_errors(mcpn_provider, s2_scene, case, rasters):
    tmp = s2_scene["tmp"]
    params = {
        "INPUT": str(s2_scene["target"]),
        "MASK": str(s2_scene["mask"]),
        "GUIDES": [str(s2_scene["guide"])],
        "OUTPUT": str(tmp / "out.tif"),
        **FAST,
    }
    if case == "all_cloud":
        params["MASK"] = str(rasters.mask(s2_scene["target"], tmp / "all.tif", np.ones((48, 48), bool)))
        expected = "no pixel of the target is known"
    elif case == "no_overlap":
        far = tmp / "far.tif"
        gdal.Translate(str(far), str(s2_scene["guide"]), outputBounds=[100000, 4100000, 100480, 4099520])
        params["GUIDES"] = [str(far)]
        expected = "The guide 'far.tif' does not overlap the input raster"
    elif case == "mask_no_overlap":
        far = tmp / "far.tif"
        gdal.Translate(str(far), str(s2_scene["mask"]), outputBounds=[100000, 4100000, 100480, 4099520])
        params["MASK"] = str(far)
        expected = "The cloud mask 'far.tif' does not overlap the input raster"
    else:
        params["MASK_VALUES"] = "clouds"
        expected = "Cannot read the cloud mask value"
    with pytest.raises(QgsProcessingException, match=expected):
        run(INPAINT, params)
    assert not (tmp / "out.tif").exists()


def test_missing_dependencies_message(mcpn_provider, s2_scene, monkeypatch):
    from mcpn.algorithms import dependencies

    monkeypatch.setattr(dependencies, "missing_packages", lambda: ["torch"])
    params = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])]}
    with pytest.raises(QgsProcessingException, match="pip install torch"):
        run(INPAINT, {**params, **FAST, "OUTPUT": str(s2_scene["tmp"] / "x.tif")})


def test_broken_engine_import_message(mcpn_provider, s2_scene, monkeypatch):
    import sys

    import mcpn.core

    monkeypatch.delattr(mcpn.core.pipeline, "inpainting", raising=False)
    monkeypatch.setitem(sys.modules, "mcpn.core.pipeline.inpainting", None)  # any import of it now fails
    params = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])]}
    with pytest.raises(QgsProcessingException, match="engine cannot be loaded"):
        run(INPAINT, {**params, **FAST, "OUTPUT": str(s2_scene["tmp"] / "x.tif")})
    assert not (s2_scene["tmp"] / "x.tif").exists()


def test_super_resolution_rejects_coarse_guides(mcpn_provider, sr_scene):
    params = {"INPUT": str(sr_scene["guides"][0]), "GUIDES": [str(sr_scene["low"])]}
    with pytest.raises(QgsProcessingException, match="coarser"):
        run(SR, {**params, **FAST, "OUTPUT": str(sr_scene["tmp"] / "x.tif")})


def test_inpainting_needs_a_mask_raster_or_polygons(mcpn_provider, s2_scene):
    params = {"INPUT": str(s2_scene["target"]), "GUIDES": [str(s2_scene["guide"])]}
    with pytest.raises(QgsProcessingException, match="cloud mask raster, cloud polygons or both"):
        run(INPAINT, {**params, **FAST, "OUTPUT": str(s2_scene["tmp"] / "x.tif")})


@pytest.mark.parametrize(
    "error, expected",
    [(RuntimeError("cuDNN error (simulated)"), "The computation failed: RuntimeError: cuDNN error (simulated)"),
     (MemoryError(), "Out of memory: use a smaller raster")],
)  # fmt: skip
def test_an_unexpected_engine_failure_is_a_processing_error(mcpn_provider, s2_scene, monkeypatch, error, expected):
    """The handler is what is tested: the engine is made to fail as torch or numpy can."""

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(inpainting, "inpaint_raster", failing)
    params = {"INPUT": str(s2_scene["target"]), "MASK": str(s2_scene["mask"]), "GUIDES": [str(s2_scene["guide"])]}
    with pytest.raises(QgsProcessingException) as caught:
        run(INPAINT, {**params, **FAST, "OUTPUT": str(s2_scene["tmp"] / "out.tif")})
    assert expected in str(caught.value) and "Traceback" not in str(caught.value)
    assert not (s2_scene["tmp"] / "out.tif").exists()
