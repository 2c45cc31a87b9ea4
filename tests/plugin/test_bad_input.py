# SPDX-License-Identifier: GPL-2.0-or-later
"""Bad input through the real algorithms (issue #5): every case ends in a message naming the problem.

processing.run runs checkParameterValues first, so refusals read "Unable to execute algorithm\\n<message>";
alg.run() (no check) is refused by prepareAlgorithm before processAlgorithm; qgis_process prints the
message after "An error was encountered while checking parameter values". Nothing is written in any case.
"""

from __future__ import annotations

import os

import pytest
from osgeo import gdal
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsRasterLayer

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"
CLOUD = (10, 26, 14, 34)  # the s2_scene block mask: rows 10-25, columns 14-33
# inpainting raster parameter -> (s2_scene file, how messages name it)
INPUTS = {
    "INPUT": ("target", "Target raster, INPUT"),
    "MASK": ("mask", "Cloud mask raster, MASK"),
    "GUIDES": ("guide", "Guide rasters, GUIDES"),
}


class Messages(QgsProcessingFeedback):
    """Feedback that keeps the info and error messages (prepareAlgorithm reports its refusal as an error)."""

    def __init__(self):
        super().__init__()
        self.infos, self.errors = [], []

    def pushInfo(self, info):
        self.infos.append(info)

    def reportError(self, error, fatalError=False):  # noqa: N803  (QGIS signature)
        self.errors.append(error)


def run(alg, params, feedback=None):
    import processing

    return processing.run(alg, params, feedback=feedback or QgsProcessingFeedback())


def refused(alg, params, *fragments):
    """Run, expect a QgsProcessingException naming the problem (every fragment), no traceback, no output."""
    output = str(params["OUTPUT"])
    existed = os.path.lexists(output)
    with pytest.raises(QgsProcessingException) as caught:
        run(alg, params)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message, message
    assert os.path.lexists(output) == existed, output
    return message


def given(parameter, path):
    """The parameter value giving one file (GUIDES takes a list)."""
    return {parameter: [str(path)] if parameter == "GUIDES" else str(path)}


def rotated(rasters, src, dst):
    gt = list(gdal.Open(str(src)).GetGeoTransform())
    gt[2], gt[4] = 2.0, 1.5  # rotation / skew terms
    return rasters.copy_with(src, dst, geotransform=gt)


# --- 1. rotated / skewed geotransform -----------------------------------------------------------


@pytest.mark.parametrize("parameter", INPUTS)
def test_rotated_raster_is_refused_by_name(mcpn_provider, s2_scene, rasters, parameter, inpaint_params):
    key, label = INPUTS[parameter]
    rot = rotated(rasters, s2_scene[key], s2_scene["tmp"] / "rotated.tif")
    refused(
        INPAINT,
        inpaint_params(s2_scene, **given(parameter, rot)),
        f"'rotated.tif' ({label}) has a rotated or skewed geotransform (rotation terms 2 and 1.5)",
        "warp it to a north-up grid first",
    )


def test_rotated_guide_is_refused_in_super_resolution(mcpn_provider, sr_scene, rasters, sr_params):
    rot = rotated(rasters, sr_scene["guides"][0], sr_scene["tmp"] / "rotated.tif")
    refused(SR, sr_params(sr_scene, GUIDES=[str(rot)]), "'rotated.tif' (High-resolution guide rasters, GUIDES)")


# --- 2. output path ------------------------------------------------------------------------------


def test_output_under_a_file_is_refused(mcpn_provider, s2_scene, inpaint_params):
    a_file = s2_scene["tmp"] / "notes.txt"
    a_file.write_text("not a folder\n")
    out = a_file / "out.tif"
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT=str(out)), f"'{a_file}' is a file, not a folder")
    assert a_file.read_text() == "not a folder\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_output_in_unwritable_folder_is_refused(mcpn_provider, s2_scene, inpaint_params):
    """/proc refuses new files even to root (chmod would not stop root)."""
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT="/proc/mcpn-test/out.tif"), "is not writable")
    assert not os.path.exists("/proc/mcpn-test")


def test_output_that_is_a_folder_is_refused(mcpn_provider, s2_scene, inpaint_params):
    folder = s2_scene["tmp"] / "folder.tif"
    folder.mkdir()
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT=str(folder)), "is a folder")


@pytest.mark.parametrize("parameter", INPUTS)
def test_output_equal_to_an_input_is_refused_and_input_untouched(mcpn_provider, s2_scene, parameter, inpaint_params):
    key, label = INPUTS[parameter]
    path = s2_scene[key]
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT=str(path)), f"is an input file ({label})", "another output")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert sorted(os.listdir(s2_scene["tmp"])) == ["guide.tif", "mask.tif", "target.tif"]


def test_output_equal_to_input_through_a_link_or_relative_path(mcpn_provider, sr_scene, monkeypatch, sr_params):
    tmp = sr_scene["tmp"]
    before = sr_scene["low"].read_bytes()
    link = tmp / "link.tif"
    link.symlink_to(sr_scene["low"])
    refused(SR, sr_params(sr_scene, OUTPUT=str(link)), "is an input file (Low-resolution raster, INPUT)")
    monkeypatch.chdir(tmp)
    refused(SR, sr_params(sr_scene, OUTPUT="./b08_10m.tif"), "is an input file (High-resolution guide rasters")
    assert sr_scene["low"].read_bytes() == before


def test_output_equal_to_input_given_as_layer_object(mcpn_provider, s2_scene, inpaint_params):
    """As from the dialog: the target is a loaded layer, the output its file."""
    layer = QgsRasterLayer(str(s2_scene["target"]), "cloudy")
    before = s2_scene["target"].read_bytes()
    params = inpaint_params(s2_scene, INPUT=layer, OUTPUT=str(s2_scene["target"]))
    refused(INPAINT, params, "is an input file (Target raster, INPUT)")
    assert s2_scene["target"].read_bytes() == before


def test_output_equal_to_input_refused_by_alg_run_without_check(mcpn_provider, s2_scene, inpaint_params):
    """alg.run() skips checkParameterValues: prepareAlgorithm refuses before processAlgorithm runs."""
    target = s2_scene["target"]
    before = target.read_bytes()
    alg = mcpn_provider.algorithm("guidedcloudinpainting").create()
    feedback = Messages()
    _, ok = alg.run(inpaint_params(s2_scene, OUTPUT=str(target)), QgsProcessingContext(), feedback)
    assert not ok
    assert any("is an input file (Target raster, INPUT)" in m for m in feedback.errors), feedback.errors
    assert not any(m.startswith("Target:") for m in feedback.infos)  # processAlgorithm did not start
    assert target.read_bytes() == before


def test_uncertainty_equal_to_an_input_or_to_the_output_is_refused(mcpn_provider, s2_scene, inpaint_params):
    """Every output file is checked, not only OUTPUT: the uncertainty layer once replaced the target."""
    target = s2_scene["target"]
    before = target.read_bytes()
    refused(INPAINT, inpaint_params(s2_scene, UNCERTAINTY=str(target)), f"The uncertainty '{target}' is an input file")
    assert target.read_bytes() == before
    out = str(s2_scene["tmp"] / "out.tif")
    refused(INPAINT, inpaint_params(s2_scene, UNCERTAINTY=out), "is also given for another output")
    refused(INPAINT, inpaint_params(s2_scene, UNCERTAINTY=str(s2_scene["tmp"] / "spread.img")), "must be a GeoTIFF")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_run_report_path_is_checked_before_the_fit(mcpn_provider, sr_scene, sr_params):
    """The report is written after the fit: a bad path must be refused before it, not after hours of fitting."""
    refused(SR, sr_params(sr_scene, REPORT="/proc/mcpn-test/report.html"), "run report", "is not writable")
    refused(SR, sr_params(sr_scene, REPORT=str(sr_scene["tmp"] / "report.txt")), "must be a file name ending in .html")
    assert not os.path.exists(sr_scene["tmp"] / "report.txt")


def test_run_report_without_matplotlib_is_refused_before_the_fit(mcpn_provider, sr_scene, monkeypatch, sr_params):
    from mcpn.algorithms import dependencies

    found = dependencies.missing_packages

    def missing(required=dependencies.REQUIRED):
        return ["matplotlib"] if required is dependencies.REPORT_REQUIRED else found(required)

    monkeypatch.setattr(dependencies, "missing_packages", missing)
    report = sr_scene["tmp"] / "report.html"
    refused(SR, sr_params(sr_scene, REPORT=str(report)), "The run report needs", "pip install matplotlib")
    assert not report.exists()
    run(SR, sr_params(sr_scene))  # without a report, the run does not need it
    assert (sr_scene["tmp"] / "out.tif").exists()


@pytest.mark.parametrize("name", ["out.jpg", "out.xyz", "out.vrt", "out"])
def test_output_format_other_than_geotiff_is_refused(mcpn_provider, s2_scene, name, inpaint_params):
    refused(
        INPAINT,
        inpaint_params(s2_scene, OUTPUT=str(s2_scene["tmp"] / name)),
        f"The output '{name}' must be a GeoTIFF file name ending in .tif or .tiff",
    )


def test_output_tiff_extension_any_case_is_written(mcpn_provider, sr_scene, sr_params):
    out = sr_scene["tmp"] / "new" / "folder" / "out.TIFF"
    run(SR, sr_params(sr_scene, OUTPUT=str(out)))
    ds = gdal.Open(str(out))
    assert ds.GetDriver().ShortName == "GTiff" and (ds.RasterXSize, ds.RasterYSize) == (48, 48)


# --- 5. not a raster, missing file ---------------------------------------------------------------


@pytest.mark.parametrize("parameter", INPUTS)
@pytest.mark.parametrize("name", ["notes.txt", "table.csv"])
def test_non_raster_file_is_refused(mcpn_provider, s2_scene, parameter, name, inpaint_params):
    path = s2_scene["tmp"] / name
    path.write_text("x,y\n1,2\n")
    refused(
        INPAINT,
        inpaint_params(s2_scene, **given(parameter, path)),
        f"The file '{path}' ({INPUTS[parameter][1]}) is not a raster that GDAL can read",
        "not recognized as",  # GDAL's reason: "... as a supported file format" (3.6), "... as being in a ..." (3.10)
    )


@pytest.mark.parametrize("parameter", [*INPUTS, "SR INPUT"])
def test_missing_file_is_refused(mcpn_provider, s2_scene, sr_scene, parameter, inpaint_params, sr_params):
    missing = s2_scene["tmp"] / "no_such_file.tif"
    if parameter == "SR INPUT":
        alg, params, label = SR, sr_params(sr_scene, INPUT=str(missing)), "Low-resolution raster, INPUT"
    else:
        alg, params, label = INPAINT, inpaint_params(s2_scene, **given(parameter, missing)), INPUTS[parameter][1]
    refused(alg, params, f"The file '{missing}' ({label}) does not exist.")


def test_non_raster_guide_among_valid_ones_is_named(mcpn_provider, sr_scene, sr_params):
    notes = sr_scene["tmp"] / "notes.txt"
    notes.write_text("hello\n")
    guides = [str(g) for g in sr_scene["guides"]] + [str(notes)]
    refused(SR, sr_params(sr_scene, GUIDES=guides), f"The file '{notes}' (High-resolution guide rasters, GUIDES)")


# --- 6. rasters with a CRS and without ---------------------------------------------------------


@pytest.mark.parametrize("without", [*INPUTS, "SR INPUT"])
def test_crs_on_some_inputs_only_is_refused(
    mcpn_provider, s2_scene, sr_scene, rasters, without, inpaint_params, sr_params
):
    """One raster without CRS among rasters with one: refused (aligning them would be a guess)."""
    tmp = s2_scene["tmp"]
    if without == "SR INPUT":
        bare = rasters.copy_with(sr_scene["low"], tmp / "bare.tif", crs="")
        alg, params, label = SR, sr_params(sr_scene, INPUT=str(bare)), "Low-resolution raster, INPUT"
    else:
        key, label = INPUTS[without]
        bare = rasters.copy_with(s2_scene[key], tmp / "bare.tif", crs="")
        alg, params = INPAINT, inpaint_params(s2_scene, **given(without, bare))
    refused(alg, params, f"'bare.tif' ({label}) has no CRS but", "has one (EPSG:32630)", "Assign Projection")
