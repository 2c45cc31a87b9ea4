# SPDX-License-Identifier: GPL-2.0-or-later
"""Damaged inputs and the inputs' folder (issue #28), through qgis_process and processing.run.

A raster cut off half way (an interrupted download) ends in one message naming the file, not a traceback,
and leaves no output; a run adds nothing beside its inputs (GDAL's .aux.xml files included).
"""

from __future__ import annotations

import os

import pytest

INPAINT = "mcpn:guidedcloudinpainting"
INPUTS = {"INPUT": "target", "MASK": "mask", "GUIDES": "guide"}  # parameter -> s2_scene file


def arguments(scene: dict, **changes) -> list[str]:
    """qgis_process arguments of a two-step inpainting of ``scene`` into out.tif beside its inputs."""
    values = {key: scene[name] for key, name in INPUTS.items()}
    values.update({"OUTPUT": scene["tmp"] / "out.tif", "STEPS": 2, "DEVICE": 1, **changes})
    return ["run", INPAINT, "--", *(f"{key}={value}" for key, value in values.items())]


def refused(qgis_process, scene: dict, damaged, *fragments: str) -> None:
    """qgis_process fails with the fragments (the damaged file named), no traceback, nothing written."""
    before = sorted(os.listdir(scene["tmp"]))
    content = damaged.read_bytes()
    done = qgis_process(*arguments(scene), timeout=300)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text[-2000:]
    for fragment in (str(damaged), *fragments):
        assert fragment in text, text[-2000:]
    assert "Traceback" not in text and "RuntimeError" not in text and "computation failed" not in text, text[-3000:]
    assert sorted(os.listdir(scene["tmp"])) == before  # no output, no scratch file, no .aux.xml
    assert damaged.read_bytes() == content


@pytest.mark.parametrize("parameter", INPUTS)
def test_input_cut_half_way_is_named(s2_scene, rasters, qgis_process, parameter):
    """The file opens (its header is whole) and fails as its missing tiles are read."""
    name = INPUTS[parameter]
    path = s2_scene[name]
    os.replace(rasters.truncated(path, s2_scene["tmp"] / "cut.tif"), path)
    refused(qgis_process, s2_scene, path, "looks incomplete or damaged (GDAL: ", "download or export it again")


def test_input_cut_before_its_header_ends_is_named(s2_scene, rasters, qgis_process):
    path = s2_scene["target"]
    os.replace(rasters.truncated(path, s2_scene["tmp"] / "cut.tif", readable_header=False), path)
    refused(qgis_process, s2_scene, path, "(Target raster, INPUT)", "looks incomplete or damaged", "export it again")


def test_a_run_adds_nothing_beside_its_inputs(s2_scene, qgis_process):
    """Only the output appears, also when qgis_process runs in the inputs' folder (GDAL's work files go to the
    current folder). GDAL's PAM is off here, as in every qgis_process test: qgis_process (3.22) loads the input
    layers itself before the plugin runs, so with PAM on QGIS leaves their .aux.xml (as for gdal:translate);
    the next test checks the layers the plugin loads."""
    folder = s2_scene["tmp"]
    before = sorted(os.listdir(folder))
    output = folder / "filled" / "out.tif"
    done = qgis_process(*arguments(s2_scene, OUTPUT=output), timeout=300, cwd=folder)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(os.listdir(folder)) == sorted([*before, "filled"])
    assert os.listdir(output.parent) == ["out.tif"]


def test_loading_the_inputs_saves_no_statistics_beside_them(mcpn_provider, s2_scene, inpaint_params, pam_on):
    """As from the dialog: the layers QGIS makes of the input files compute statistics for their style, which
    GDAL would save into <file>.aux.xml."""
    import processing

    folder = s2_scene["tmp"]
    before = sorted(os.listdir(folder))
    output = folder / "filled" / "out.tif"
    processing.run(INPAINT, inpaint_params(s2_scene, OUTPUT=str(output)))
    assert output.exists()
    assert sorted(os.listdir(folder)) == sorted([*before, "filled"])
