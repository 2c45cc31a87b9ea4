"""The statistics of benchmarks/uncertainty.py on synthetic data with a known answer (no fitting)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import uncertainty  # noqa: E402  (a module of this repository: an import error must fail)


def synthetic(calibrated: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Truth, a mean whose error is Gaussian with std = spread (or unrelated to it), the spread, a mask."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, (2, 64, 64))
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:50, 5:60] = True
    spread = np.where(mask, rng.uniform(0.5, 10, (2, 64, 64)), 0.0)
    scale = spread if calibrated else 5.0
    mean = truth + rng.standard_normal(truth.shape) * scale * mask
    return truth, mean, spread, mask


def test_calibrated_spread_scores_as_calibrated():
    truth, mean, spread, mask = synthetic(calibrated=True)
    out = uncertainty.uncertainty_stats(truth, mean, spread, mask, ["a", "b"])
    pooled = out["pooled"]
    assert pooled["spearman"] > 0.4 and pooled["pearson"] > 0.4
    assert pooled["within_2sd"] == pytest.approx(0.954, abs=0.02)  # |N(0, 1)| <= 2
    assert pooled["k90"] == pytest.approx(1.645, abs=0.1)
    assert pooled["decile_ratio"] > 5
    assert set(out["per_band"]) == {"a", "b"} and out["blocks"]["count"] > 10


def test_unrelated_spread_scores_near_zero():
    truth, mean, spread, mask = synthetic(calibrated=False)
    pooled = uncertainty.uncertainty_stats(truth, mean, spread, mask)["pooled"]
    assert abs(pooled["spearman"]) < 0.05 and pooled["decile_ratio"] == pytest.approx(1, abs=0.15)


def test_constant_spread_has_no_correlation():
    truth, mean, _, mask = synthetic(calibrated=True)
    band = uncertainty.uncertainty_stats(truth, mean, np.ones_like(truth), mask)["per_band"]["band 1"]
    assert band["spearman"] is None and band["decile_ratio"] is None
