# SPDX-License-Identifier: GPL-2.0-or-later
"""The algorithms through the qgis_process command line (--json), as in scripts and CI."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from osgeo import gdal


def parse_json(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


def test_listed(qgis_process):
    done = qgis_process("--json", "list", timeout=120)
    assert done.returncode == 0, done.stderr
    providers = parse_json(done.stdout)["providers"]
    algorithms = providers["mcpn"]["algorithms"]
    assert set(algorithms) == {"mcpn:guidedcloudinpainting", "mcpn:guidedsuperresolution", "mcpn:sentinel2product"}
    assert algorithms["mcpn:guidedcloudinpainting"]["group"] == "Raster restoration"


def test_inpainting_json_run(s2_scene, rasters, qgis_process):
    """Exactly the masked pixels are filled, and the output keeps the target's grid, CRS, type, nodata and names."""
    cloud = rasters.block(48, 10, 26, 14, 34)
    target = rasters.poisoned(s2_scene["target"], s2_scene["tmp"] / "poisoned.tif", cloud)
    out = s2_scene["tmp"] / "cli.tif"
    done = qgis_process(
        "run",
        "mcpn:guidedcloudinpainting",
        "--json",
        "--",
        f"INPUT={target}",
        f"MASK={s2_scene['mask']}",
        "MASK_VALUES=1",
        f"GUIDES={s2_scene['guide']}",
        "STEPS=3",
        "DEVICE=1",
        f"OUTPUT={out}",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = parse_json(done.stdout)
    assert result["results"]["OUTPUT"] == str(out)
    assert result["algorithm_details"]["id"] == "mcpn:guidedcloudinpainting"
    got, truth = rasters.info(out), rasters.info(target)
    for key in ("size", "bands", "geotransform", "crs", "dtype", "nodata", "descriptions"):
        assert got[key] == truth[key], key
    clean, guide = (rasters.info(s2_scene[k])["data"] for k in ("target", "guide"))
    rasters.assert_filled(got["data"], truth["data"], clean, cloud, [guide])


def test_super_resolution_json_run(sr_scene, rasters, qgis_process):
    """The output takes the first guide's grid and the low-resolution input's type."""
    out = sr_scene["tmp"] / "sr.tif"
    done = qgis_process(
        "run",
        "mcpn:guidedsuperresolution",
        "--json",
        "--",
        f"INPUT={sr_scene['low']}",
        *(f"GUIDES={guide}" for guide in sr_scene["guides"]),
        "STEPS=3",
        "DEVICE=1",
        f"OUTPUT={out}",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert parse_json(done.stdout)["results"]["OUTPUT"] == str(out)
    got, guide, low = rasters.info(out), rasters.info(sr_scene["guides"][0]), rasters.info(sr_scene["low"])
    for key in ("size", "geotransform", "crs"):
        assert got[key] == guide[key], key
    assert got["dtype"] == low["dtype"] and got["bands"] == 1 and (got["data"] > 0).all()


def test_error_is_reported(s2_scene, qgis_process):
    done = qgis_process(
        "run",
        "mcpn:guidedcloudinpainting",
        "--",
        f"INPUT={s2_scene['target']}",
        f"MASK={s2_scene['mask']}",
        "MASK_VALUES=not-a-number",
        f"GUIDES={s2_scene['guide']}",
        f"OUTPUT={s2_scene['tmp'] / 'never.tif'}",
        timeout=120,
    )
    assert done.returncode != 0
    assert "Cannot read the cloud mask value" in done.stdout + done.stderr
    assert not (s2_scene["tmp"] / "never.tif").exists()


def bad_inputs(s2_scene, sr_scene, rasters, s2) -> dict:
    """Held-out input mistakes the engine (not the parameter checks) finds: (algorithm, arguments, message)."""
    tmp = s2_scene["tmp"]
    far = rasters.crop(s2 / "2018-07-21" / "B04.tif", tmp / "far_guide.tif", 40, 40, 48)
    everything = rasters.mask(s2_scene["target"], tmp / "everything.tif", np.ones((48, 48), bool))
    complex_target = tmp / "complex.tif"
    gdal.Translate(str(complex_target), str(s2_scene["target"]), outputType=gdal.GDT_CFloat32)
    inpaint = ["mcpn:guidedcloudinpainting", "--", "STEPS=3", "DEVICE=1"]
    return {
        "guide off the target": (
            [*inpaint, f"INPUT={s2_scene['target']}", f"MASK={s2_scene['mask']}", f"GUIDES={far}"],
            "does not overlap",
        ),
        "mask covering everything": (
            [*inpaint, f"INPUT={s2_scene['target']}", f"MASK={everything}", f"GUIDES={s2_scene['guide']}"],
            "no pixel of the target is known",
        ),
        "complex data type": (
            [*inpaint, f"INPUT={complex_target}", f"MASK={s2_scene['mask']}", f"GUIDES={s2_scene['guide']}"],
            "data type CFloat32, which is not supported",
        ),
        "super-resolution input finer than its guide": (
            [
                "mcpn:guidedsuperresolution",
                "--",
                "STEPS=3",
                "DEVICE=1",
                f"INPUT={sr_scene['guides'][0]}",
                f"GUIDES={sr_scene['low']}",
            ],
            "must be coarser than the first guide",
        ),
    }


def test_input_mistakes_end_in_the_message_alone(s2_scene, sr_scene, rasters, s2, qgis_process):
    """As QGIS's own algorithms: the engine's message, no traceback (nor a critical log of one), no output."""
    for case, (arguments, expected) in bad_inputs(s2_scene, sr_scene, rasters, s2).items():
        out = s2_scene["tmp"] / f"never_{case.replace(' ', '_')}.tif"
        done = qgis_process("run", *arguments, f"OUTPUT={out}", timeout=300)
        text = done.stdout + done.stderr
        assert done.returncode != 0, case
        assert expected in text, (case, text[-2000:])
        assert "Traceback" not in text and 'File "' not in text, (case, text[-3000:])
        noise = ("QStandardPaths", "DeprecationWarning", "setapi")
        stderr = done.stderr.splitlines()
        # a warning's source line, indented below it (QGIS 3.44's own codecs.open() on Python 3.14)
        warned = {i + 1 for i, line in enumerate(stderr) if "DeprecationWarning" in line}
        lines = [
            line
            for i, line in enumerate(stderr)
            if line.strip() and not any(n in line for n in noise) and not (i in warned and line.startswith(" "))
        ]
        assert lines and all(expected in line for line in lines), (case, lines)  # QGIS repeats it, nothing else
        assert not out.exists(), case


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
        "run",
        "mcpn:guidedcloudinpainting",
        "--",
        *(f"{k}={v}" for k, v in args.items()),
        "STEPS=2",
        "DEVICE=1",
        timeout=120,
    )
    text = done.stdout + done.stderr
    assert done.returncode != 0 and expected in text and "Traceback" not in text, text[-2000:]
    assert target.read_bytes() == before
    assert not (tmp / "cli.tif").exists() and not (tmp / "cli.jpg").exists()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
