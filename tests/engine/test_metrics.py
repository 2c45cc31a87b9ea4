"""Tests of core.metrics (RMSE, spectral angle and region-restricted, percentile-scaled SSIM)."""

from __future__ import annotations

import numpy as np
import pytest
from mcpn.core.metrics import masked_ssim, rmse, spectral_angle


def _image(bands: int = 3, size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth, textured, reflectance-like test image (values ~0.02-0.3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for b in range(bands):
        base = 0.1 + 0.05 * np.sin(2 * np.pi * (x * (b + 1) + y * 2)) + 0.03 * np.cos(5 * np.pi * y)
        out.append(base + 0.01 * rng.standard_normal((size, size)))
    return np.clip(np.stack(out), 0.02, 0.3)


def test_identical_images() -> None:
    img = _image()
    region = np.zeros(img.shape[1:], bool)
    region[10:30, 20:40] = True
    assert rmse(img, img) == 0.0
    assert rmse(img, img, region) == 0.0
    assert masked_ssim(img, img) == pytest.approx(1.0, abs=1e-9)
    assert masked_ssim(img, img, region) == pytest.approx(1.0, abs=1e-9)


def test_rmse_hand_computed() -> None:
    truth = np.zeros((2, 2, 2))
    pred = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]])
    # whole image: squared errors 1 and 4 over 8 values -> sqrt(5/8)
    assert rmse(pred, truth) == pytest.approx(np.sqrt(5 / 8))
    # region = first row: values (1, 0) and (0, 2) -> sqrt(5/4)
    region = np.array([[True, True], [False, False]])
    assert rmse(pred, truth, region) == pytest.approx(np.sqrt(5 / 4))
    # region = second row: no error
    assert rmse(pred, truth, ~region) == 0.0
    # a 2-D image is treated as one band
    assert rmse(pred[0], truth[0]) == pytest.approx(0.5)


def test_spectral_angle_hand_computed() -> None:
    truth = np.ones((2, 1, 2))  # both pixels (1, 1)
    pred = np.array([[[1.0, 2.0]], [[0.0, 2.0]]])  # (1, 0): 45 degrees off; (2, 2): the same spectrum, brighter
    assert spectral_angle(pred, truth) == pytest.approx(22.5)
    assert spectral_angle(pred, truth, np.array([[True, False]])) == pytest.approx(45.0)
    assert spectral_angle(pred, truth, np.array([[False, True]])) == pytest.approx(0.0, abs=1e-4)
    assert np.isnan(spectral_angle(pred[:1], truth[:1]))  # one band has no spectrum


def test_ssim_region_sensitivity() -> None:
    truth = _image(size=96)
    region = np.zeros(truth.shape[1:], bool)
    region[10:30, 10:30] = True

    corrupted_inside = truth.copy()
    corrupted_inside[:, 10:30, 10:30] = truth[:, 10:30, 10:30].mean()
    assert masked_ssim(corrupted_inside, truth, region) < 0.9

    # pixels far (> window radius) from the region: the region's SSIM is unchanged
    corrupted_far = truth.copy()
    rng = np.random.default_rng(1)
    corrupted_far[:, 60:, 60:] += 0.1 * rng.standard_normal((3, 36, 36))
    assert masked_ssim(corrupted_far, truth, region) == pytest.approx(1.0, abs=1e-9)
    # ... while the whole-image SSIM does see them
    assert masked_ssim(corrupted_far, truth) < 0.99


def test_affine_unit_invariance() -> None:
    truth = _image(seed=2)
    pred = truth + 0.02 * np.random.default_rng(3).standard_normal(truth.shape)
    region = np.zeros(truth.shape[1:], bool)
    region[16:48, 8:40] = True
    a, b = 10000.0, 37.0  # e.g. reflectance -> reflectance x 10000 with an offset
    for reg in (None, region):
        s = masked_ssim(pred, truth, reg)
        assert 0.0 < s < 1.0
        assert masked_ssim(a * pred + b, a * truth + b, reg) == pytest.approx(s, rel=1e-9)
        assert rmse(a * pred + b, a * truth + b, reg) == pytest.approx(a * rmse(pred, truth, reg), rel=1e-9)


def test_invalid_inputs() -> None:
    img = _image()
    with pytest.raises(ValueError):
        rmse(img, img[:2])
    with pytest.raises(ValueError):
        masked_ssim(img, img, np.zeros(img.shape[1:], bool))
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        rmse(bad, img)
