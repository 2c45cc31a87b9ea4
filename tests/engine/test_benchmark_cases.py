"""The benchmark cases (benchmarks/cases.py: the cover asked for, deterministic, the shapes they promise, the
blur they were made with) and the GDAL pansharpening baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from cases import GAP_CASES, build_cases  # noqa: E402  (a module of this repository: an import error must fail)
from pansharpening import gdal_brovey  # noqa: E402


def test_gap_cases(shared_data):
    cases = {case.name: case for case in build_cases(shared_data, 128, list(GAP_CASES))}
    for cover in (10, 30, 50, 80):
        assert abs(cases[f"gap{cover}"].mask.mean() - cover / 100) < 0.001
    again = build_cases(shared_data, 128, ["gap30"])[0]
    np.testing.assert_array_equal(again.mask, cases["gap30"].mask)
    assert cases["border"].mask[:, 0].mean() > 0.2  # the largest cloud is cut by the left border
    ndvi = cases["ndvi_small"]
    assert ndvi.truth.shape == (1, 100, 100) and ndvi.guides[0].shape == (1, 100, 100)
    assert np.isfinite(ndvi.truth).all() and ndvi.truth.min() >= -1 and ndvi.truth.max() <= 1
    assert abs(ndvi.mask.mean() - 0.45) < 0.01 and ndimage.label(ndvi.mask)[1] == 1
    assert ndvi.mask[50:].mean() > 0.75  # most of the lower half
    for case in cases.values():
        np.testing.assert_array_equal(np.isnan(case.target[0]), case.mask)


def test_gdal_pansharpening_baseline_is_weighted_brovey():
    """Through GDAL itself: each band times the panchromatic band (the guides' mean) over the bands' mean."""
    low = np.stack([np.full((4, 4), 100.0), np.full((4, 4), 300.0)])
    guides = [np.stack([np.tile([150.0, 250.0], (16, 8)), np.tile([150.0, 250.0], (16, 8))])]
    sharpened = gdal_brovey(low, guides)
    assert sharpened.shape == (2, 16, 16)
    np.testing.assert_allclose(sharpened[:, :, :2], [[[75, 125]] * 16, [[225, 375]] * 16], rtol=1e-6)


def test_psf_cases_know_their_blur(shared_data):
    """The blur a ``_psf`` case was made with is the benchmark's MTF at Nyquist (0.3): σ of 0.494 input pixels."""
    plain, blurred = build_cases(shared_data, 64, ["sr_nir_x2", "sr_nir_x2_psf"])
    assert plain.sensor_blur == 0 and abs(blurred.sensor_blur - 0.494) < 0.001
