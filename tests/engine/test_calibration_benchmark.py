"""The statistics of benchmarks/calibration.py on synthetic data with a known answer, and its ensemble's members."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import calibration  # noqa: E402  (a module of this repository: an import error must fail)
from cases import Case  # noqa: E402


def synthetic(calibrated: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth, three ensemble members whose spread is a known map, and a mask.

    The members' mean errs by a Gaussian of std = the spread (calibrated) or of a constant std (unrelated).
    """
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, (2, 64, 64))
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:50, 5:60] = True
    spread = rng.uniform(0.5, 10, truth.shape)
    mean = truth + rng.standard_normal(truth.shape) * (spread if calibrated else 5.0) * mask
    offsets = np.sqrt(1.5) * np.array([-1.0, 0.0, 1.0])  # population std of the three members = spread
    return truth, mean + offsets[:, None, None, None] * spread, mask


def test_calibrated_spread_scores_as_calibrated():
    truth, members, mask = synthetic(calibrated=True)
    out, spread, error = calibration.uncertainty_stats(truth, members, mask)
    assert spread.shape == error.shape == (2 * mask.sum(),)
    assert out["spearman"] > 0.4 and out["spearman_blocks"] is not None
    assert out["within_1"] == pytest.approx(0.683, abs=0.02)  # |N(0, 1)| <= 1
    assert out["within_2"] == pytest.approx(0.954, abs=0.02)  # |N(0, 1)| <= 2
    assert out["zero_spread"] == 0 and out["coverage"]["1"] == out["within_1"]


def test_unrelated_spread_scores_near_zero():
    truth, members, mask = synthetic(calibrated=False)
    out, _, _ = calibration.uncertainty_stats(truth, members, mask)
    assert abs(out["spearman"]) < 0.05


def test_members_that_agree_have_zero_spread_and_no_correlation():
    truth, members, mask = synthetic(calibrated=True)
    same = np.repeat(members[:1], 3, axis=0)
    out, _, _ = calibration.uncertainty_stats(truth, same, mask)
    assert out["zero_spread"] == 1 and out["spearman"] is None and out["spearman_nonzero"] is None
    assert out["spearman_blocks"] is None  # not a ranking of rounding noise
    assert out["within_1"] == pytest.approx(np.mean(same[0][:, mask] == truth[:, mask]))


def test_estimate_stats_measure_bias_and_correlation():
    real = np.array([0.5, 0.6, 0.7, 0.8])
    out = calibration.estimate_stats(real - 0.05, real)
    assert out["bias_mean"] == pytest.approx(-0.05) and out["bias_std"] == pytest.approx(0, abs=1e-12)
    assert out["pearson"] == pytest.approx(1) and out["spearman"] == pytest.approx(1)
    assert out["share_below_real"] == 1 and out["n"] == 4


def test_self_validation_stats_leave_failed_validations_out():
    scored = {"case": "a", "real_ssim": 0.8, "estimate_ssim": 0.7, "real_rmse": 10.0, "estimate_rmse": 12.0}
    scored.update(real_gdal_ssim=0.5, estimate_gdal_ssim=0.5)
    records = [scored, dict(scored, real_ssim=0.6, estimate_ssim=0.5), {"case": "b", "validation_error": "x"}]
    out = calibration.self_validation_stats(records)
    assert out["scored"] == 2 and out["failed"] == 1
    assert out["ssim"]["bias_mean"] == pytest.approx(-0.1) and out["rmse"]["relative_bias_mean"] == pytest.approx(0.2)
    assert out["ssim_bias_per_case"] == {"a": pytest.approx(-0.1)} and out["ssim"]["abs_error_max"] == pytest.approx(
        0.1
    )
    assert calibration.self_validation_stats(records[2:]) == {"scored": 0, "failed": 1}


def test_within_case_correlation_ignores_the_difference_between_cases():
    """Estimates that follow the seeds of each case but are off by a per-case constant: within-case Pearson 1."""
    records = []
    for case, offset, level in (("a", 0.1, 0.9), ("b", -0.2, 0.5)):
        for noise in (-0.02, 0.0, 0.03):
            real = level + noise
            records.append({"case": case, "real_ssim": real, "estimate_ssim": real + offset, "real_rmse": 1.0})
    for r in records:
        r.update(estimate_rmse=1.0, real_gdal_ssim=0.3, estimate_gdal_ssim=0.3)
    out = calibration.self_validation_stats(records)["ssim"]
    assert out["pearson_within_case"] == pytest.approx(1) and out["bias_mean"] == pytest.approx(-0.05)


def test_ensemble_member_zero_is_the_api_fill():
    """The benchmark's ensemble is the engine's: member 0 is what ``api.inpaint`` gives with the same settings."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:48, 0:48] / 48.0
    truth = np.stack([np.sin(3 * x) + y, np.cos(2 * y) * x]) + 0.01 * rng.standard_normal((2, 48, 48))
    mask = np.zeros((48, 48), dtype=bool)
    mask[15:30, 20:35] = True
    guide = truth * 0.8 + 0.1
    case = Case("toy", "inpaint", "", np.where(mask, np.nan, truth), truth, [guide], mask, (), ["a", "b"])
    settings = calibration.Settings(steps=3, check_every=1, seed=4, device="cpu")
    record, filled = calibration.real_fill(case, settings)
    member, step = calibration.ensemble_member(case, settings, 0)
    np.testing.assert_array_equal(member, filled)
    assert step == record["chosen_step"]
    other, _ = calibration.ensemble_member(case, settings, 1)
    np.testing.assert_array_equal(other[:, ~mask], truth[:, ~mask])
