# SPDX-License-Identifier: GPL-2.0-or-later
"""Bad input through the real algorithms (issue #5): every case ends in a message naming the problem.

processing.run runs checkParameterValues first, so refusals read "Unable to execute algorithm\\n<message>";
alg.run() (no check) is refused by prepareAlgorithm before processAlgorithm; qgis_process prints the
message after "An error was encountered while checking parameter values". Nothing is written in any case.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsRasterLayer

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"
FAST = {"STEPS": 2, "DEVICE": 1, "SEED": 0}
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


def inpaint_params(scene, **changes):
    params = {
        "INPUT": str(scene["target"]),
        "MASK": str(scene["mask"]),
        "GUIDES": [str(scene["guide"])],
        "OUTPUT": str(scene["tmp"] / "out.tif"),
        **FAST,
    }
    params.update(changes)
    return params


def given(parameter, path):
    """The parameter value giving one file (GUIDES takes a list)."""
    return {parameter: [str(path)] if parameter == "GUIDES" else str(path)}


def sr_params(scene, **changes):
    params = {
        "INPUT": str(scene["low"]),
        "GUIDES": [str(g) for g in scene["guides"]],
        "OUTPUT": str(scene["tmp"] / "out.tif"),
        **FAST,
    }
    params.update(changes)
    return params


def copy_with(src, dst, geotransform=None, crs=None):
    """A copy of a raster with another geotransform and/or CRS ("" removes it)."""
    gdal.Translate(str(dst), str(src))
    ds = gdal.Open(str(dst), gdal.GA_Update)
    if geotransform is not None:
        ds.SetGeoTransform(geotransform)
    if crs is not None:
        ds.SetProjection(crs)
    ds = None
    return dst


def rotated(src, dst):
    gt = list(gdal.Open(str(src)).GetGeoTransform())
    gt[2], gt[4] = 2.0, 1.5  # rotation / skew terms
    return copy_with(src, dst, geotransform=gt)


def float_mask(template, dst, values):
    tpl = gdal.Open(str(template))
    ds = gdal.GetDriverByName("GTiff").Create(str(dst), tpl.RasterXSize, tpl.RasterYSize, 1, gdal.GDT_Float32)
    ds.SetProjection(tpl.GetProjection())
    ds.SetGeoTransform(tpl.GetGeoTransform())
    ds.GetRasterBand(1).WriteArray(values.astype(np.float32))
    ds = None
    return dst


@pytest.fixture
def run_and_check_filled(rasters):
    """``run_and_check_filled(scene, expected, **parameters)``: inpaint a copy of the target (INPUT) holding POISON
    under ``expected``: the pixels that change must be exactly ``expected`` (masked pixels are filled, the others
    copied), each to a plausible value (``Rasters.assert_filled``). Returns the output."""

    def check(scene, expected, **changes):
        clean = changes.pop("INPUT", scene["target"])
        target = rasters.poisoned(clean, scene["tmp"] / "poisoned.tif", expected)
        out = scene["tmp"] / "filled.tif"
        run(INPAINT, inpaint_params(scene, INPUT=str(target), OUTPUT=str(out), **changes))
        data = (rasters.info(path)["data"] for path in (out, target, clean))
        rasters.assert_filled(*data, expected)
        return out

    return check


# --- 1. rotated / skewed geotransform -----------------------------------------------------------


@pytest.mark.parametrize("parameter", INPUTS)
def test_rotated_raster_is_refused_by_name(mcpn_provider, s2_scene, parameter):
    key, label = INPUTS[parameter]
    rot = rotated(s2_scene[key], s2_scene["tmp"] / "rotated.tif")
    refused(
        INPAINT,
        inpaint_params(s2_scene, **given(parameter, rot)),
        f"'rotated.tif' ({label}) has a rotated or skewed geotransform (rotation terms 2 and 1.5)",
        "warp it to a north-up grid first",
    )


def test_rotated_guide_is_refused_in_super_resolution(mcpn_provider, sr_scene):
    rot = rotated(sr_scene["guides"][0], sr_scene["tmp"] / "rotated.tif")
    refused(SR, sr_params(sr_scene, GUIDES=[str(rot)]), "'rotated.tif' (High-resolution guide rasters, GUIDES)")


# --- 2. output path ------------------------------------------------------------------------------


def test_output_under_a_file_is_refused(mcpn_provider, s2_scene):
    a_file = s2_scene["tmp"] / "notes.txt"
    a_file.write_text("not a folder\n")
    out = a_file / "out.tif"
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT=str(out)), f"'{a_file}' is a file, not a folder")
    assert a_file.read_text() == "not a folder\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_output_in_unwritable_folder_is_refused(mcpn_provider, s2_scene):
    """/proc refuses new files even to root (chmod would not stop root)."""
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT="/proc/mcpn-test/out.tif"), "is not writable")
    assert not os.path.exists("/proc/mcpn-test")


def test_output_that_is_a_folder_is_refused(mcpn_provider, s2_scene):
    folder = s2_scene["tmp"] / "folder.tif"
    folder.mkdir()
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT=str(folder)), "is a folder")


@pytest.mark.parametrize("parameter", INPUTS)
def test_output_equal_to_an_input_is_refused_and_input_untouched(mcpn_provider, s2_scene, parameter):
    key, label = INPUTS[parameter]
    path = s2_scene[key]
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    refused(INPAINT, inpaint_params(s2_scene, OUTPUT=str(path)), f"is an input file ({label})", "another output")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert sorted(os.listdir(s2_scene["tmp"])) == ["guide.tif", "mask.tif", "target.tif"]


def test_output_equal_to_input_through_a_link_or_relative_path(mcpn_provider, sr_scene, monkeypatch):
    tmp = sr_scene["tmp"]
    before = sr_scene["low"].read_bytes()
    link = tmp / "link.tif"
    link.symlink_to(sr_scene["low"])
    refused(SR, sr_params(sr_scene, OUTPUT=str(link)), "is an input file (Low-resolution raster, INPUT)")
    monkeypatch.chdir(tmp)
    refused(SR, sr_params(sr_scene, OUTPUT="./b08_10m.tif"), "is an input file (High-resolution guide rasters")
    assert sr_scene["low"].read_bytes() == before


def test_output_equal_to_input_given_as_layer_object(mcpn_provider, s2_scene):
    """As from the dialog: the target is a loaded layer, the output its file."""
    layer = QgsRasterLayer(str(s2_scene["target"]), "cloudy")
    before = s2_scene["target"].read_bytes()
    params = inpaint_params(s2_scene, INPUT=layer, OUTPUT=str(s2_scene["target"]))
    refused(INPAINT, params, "is an input file (Target raster, INPUT)")
    assert s2_scene["target"].read_bytes() == before


def test_output_equal_to_input_refused_by_alg_run_without_check(mcpn_provider, s2_scene):
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


def test_uncertainty_equal_to_an_input_or_to_the_output_is_refused(mcpn_provider, s2_scene):
    """Every output file is checked, not only OUTPUT: the uncertainty layer once replaced the target."""
    target = s2_scene["target"]
    before = target.read_bytes()
    refused(INPAINT, inpaint_params(s2_scene, UNCERTAINTY=str(target)), f"The uncertainty '{target}' is an input file")
    assert target.read_bytes() == before
    out = str(s2_scene["tmp"] / "out.tif")
    refused(INPAINT, inpaint_params(s2_scene, UNCERTAINTY=out), "is also given for another output")
    refused(INPAINT, inpaint_params(s2_scene, UNCERTAINTY=str(s2_scene["tmp"] / "spread.img")), "must be a GeoTIFF")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_run_report_path_is_checked_before_the_fit(mcpn_provider, sr_scene):
    """The report is written after the fit: a bad path must be refused before it, not after hours of fitting."""
    refused(SR, sr_params(sr_scene, REPORT="/proc/mcpn-test/report.html"), "run report", "is not writable")
    refused(SR, sr_params(sr_scene, REPORT=str(sr_scene["tmp"] / "report.txt")), "must be a file name ending in .html")
    assert not os.path.exists(sr_scene["tmp"] / "report.txt")


def test_run_report_without_matplotlib_is_refused_before_the_fit(mcpn_provider, sr_scene, monkeypatch):
    from mcpn.mcpn_plugin import dependencies

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
def test_output_format_other_than_geotiff_is_refused(mcpn_provider, s2_scene, name):
    refused(
        INPAINT,
        inpaint_params(s2_scene, OUTPUT=str(s2_scene["tmp"] / name)),
        f"The output '{name}' must be a GeoTIFF file name ending in .tif or .tiff",
    )


def test_output_tiff_extension_any_case_is_written(mcpn_provider, sr_scene):
    out = sr_scene["tmp"] / "new" / "folder" / "out.TIFF"
    run(SR, sr_params(sr_scene, OUTPUT=str(out)))
    ds = gdal.Open(str(out))
    assert ds.GetDriver().ShortName == "GTiff" and (ds.RasterXSize, ds.RasterYSize) == (48, 48)


# --- 3. many bands -------------------------------------------------------------------------------


def test_200_band_target_keeps_bands_and_names(mcpn_provider, s2_scene, rasters):
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


# --- 5. not a raster, missing file ---------------------------------------------------------------


@pytest.mark.parametrize("parameter", INPUTS)
@pytest.mark.parametrize("name", ["notes.txt", "table.csv"])
def test_non_raster_file_is_refused(mcpn_provider, s2_scene, parameter, name):
    path = s2_scene["tmp"] / name
    path.write_text("x,y\n1,2\n")
    refused(
        INPAINT,
        inpaint_params(s2_scene, **given(parameter, path)),
        f"The file '{path}' ({INPUTS[parameter][1]}) is not a raster that GDAL can read",
        "not recognized as a supported file format",
    )


@pytest.mark.parametrize("parameter", [*INPUTS, "SR INPUT"])
def test_missing_file_is_refused(mcpn_provider, s2_scene, sr_scene, parameter):
    missing = s2_scene["tmp"] / "no_such_file.tif"
    if parameter == "SR INPUT":
        alg, params, label = SR, sr_params(sr_scene, INPUT=str(missing)), "Low-resolution raster, INPUT"
    else:
        alg, params, label = INPAINT, inpaint_params(s2_scene, **given(parameter, missing)), INPUTS[parameter][1]
    refused(alg, params, f"The file '{missing}' ({label}) does not exist.")


def test_non_raster_guide_among_valid_ones_is_named(mcpn_provider, sr_scene):
    notes = sr_scene["tmp"] / "notes.txt"
    notes.write_text("hello\n")
    guides = [str(g) for g in sr_scene["guides"]] + [str(notes)]
    refused(SR, sr_params(sr_scene, GUIDES=guides), f"The file '{notes}' (High-resolution guide rasters, GUIDES)")


# --- 6. partial guide, rasters without CRS -------------------------------------------------------


def test_guide_covering_part_of_the_target_runs(mcpn_provider, s2_scene, rasters, run_and_check_filled):
    """Outside its coverage the guide is invalid (NaN, left out of its loss); the run still fills the cloud."""
    half = s2_scene["tmp"] / "guide_left_half.tif"
    gdal.Translate(str(half), str(s2_scene["guide"]), srcWin=[0, 0, 24, 48])  # the cloud spans columns 14-33
    out = run_and_check_filled(s2_scene, rasters.block(48, *CLOUD), GUIDES=[str(half)])
    assert rasters.info(out)["geotransform"] == pytest.approx(rasters.info(s2_scene["target"])["geotransform"])


def test_second_guide_covering_part_runs_in_super_resolution(mcpn_provider, sr_scene, rasters):
    part = sr_scene["tmp"] / "b04_part.tif"
    gdal.Translate(str(part), str(sr_scene["guides"][1]), srcWin=[10, 10, 30, 20])
    out = sr_scene["tmp"] / "out_part.tif"
    run(SR, sr_params(sr_scene, GUIDES=[str(sr_scene["guides"][0]), str(part)], OUTPUT=str(out)))
    got = rasters.info(out)
    assert got["size"] == (48, 48) and np.isfinite(got["data"]).all()


def test_rasters_all_without_crs_run(mcpn_provider, s2_scene, sr_scene, rasters, run_and_check_filled):
    tmp = s2_scene["tmp"]
    bare = {k: copy_with(s2_scene[k], tmp / f"{k}_nocrs.tif", crs="") for k in ("target", "mask", "guide")}
    params = {"INPUT": str(bare["target"]), "MASK": str(bare["mask"]), "GUIDES": [str(bare["guide"])]}
    got = rasters.info(run_and_check_filled(s2_scene, rasters.block(48, *CLOUD), **params))
    assert got["crs"] == "" and got["geotransform"] == pytest.approx(rasters.info(s2_scene["target"])["geotransform"])

    low = copy_with(sr_scene["low"], tmp / "low_nocrs.tif", crs="")
    guide = copy_with(sr_scene["guides"][0], tmp / "b08_nocrs.tif", crs="")
    out = tmp / "sr_nocrs.tif"
    run(SR, sr_params(sr_scene, INPUT=str(low), GUIDES=[str(guide)], OUTPUT=str(out)))
    got = rasters.info(out)
    assert got["crs"] == "" and got["size"] == (48, 48)


@pytest.mark.parametrize("without", [*INPUTS, "SR INPUT"])
def test_crs_on_some_inputs_only_is_refused(mcpn_provider, s2_scene, sr_scene, without):
    """One raster without CRS among rasters with one: refused (aligning them would be a guess)."""
    tmp = s2_scene["tmp"]
    if without == "SR INPUT":
        bare = copy_with(sr_scene["low"], tmp / "bare.tif", crs="")
        alg, params, label = SR, sr_params(sr_scene, INPUT=str(bare)), "Low-resolution raster, INPUT"
    else:
        key, label = INPUTS[without]
        bare = copy_with(s2_scene[key], tmp / "bare.tif", crs="")
        alg, params = INPAINT, inpaint_params(s2_scene, **given(without, bare))
    refused(alg, params, f"'bare.tif' ({label}) has no CRS but", "has one (EPSG:32630)", "Assign Projection")


# --- the same refusals through qgis_process -------------------------------------------------------


@pytest.mark.parametrize("case", ["output_is_input", "text_file", "jpeg_output"])
def test_qgis_process_refuses_before_writing(s2_scene, case, qgis_process):
    tmp = s2_scene["tmp"]
    target = tmp / "target_copy.tif"
    shutil.copy(s2_scene["target"], target)
    before = target.read_bytes()
    args = {"INPUT": target, "MASK": s2_scene["mask"], "GUIDES": s2_scene["guide"], "OUTPUT": tmp / "cli.tif"}
    if case == "output_is_input":
        args["OUTPUT"] = target
        expected = f"The output '{target}' is an input file (Target raster, INPUT)"
    elif case == "text_file":
        args["GUIDES"] = tmp / "notes.txt"
        args["GUIDES"].write_text("hello\n")
        expected = "(Guide rasters, GUIDES) is not a raster that GDAL can read"
    else:
        args["OUTPUT"] = tmp / "cli.jpg"
        expected = "The output 'cli.jpg' must be a GeoTIFF file name"
    done = qgis_process(
        "run", INPAINT, "--", *(f"{k}={v}" for k, v in args.items()), "STEPS=2", "DEVICE=1", timeout=120
    )
    text = done.stdout + done.stderr
    assert done.returncode != 0 and expected in text and "Traceback" not in text, text[-2000:]
    assert target.read_bytes() == before
    assert not (tmp / "cli.tif").exists() and not (tmp / "cli.jpg").exists()
