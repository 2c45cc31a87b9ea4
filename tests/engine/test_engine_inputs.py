"""The engine's input validation under odd and random inputs: it runs or raises InputError, nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcpn.core.errors import InputError
from mcpn.core.pipeline.api import inpaint, super_resolve


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (70, 3), (33, 47)])
def test_tiny_thin_and_odd_rasters_are_filled(shape):
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 1, (2, *shape))
    mask = np.zeros(shape, bool)
    mask.flat[:: max(1, mask.size // 3)] = True
    if mask.all():
        target = np.concatenate([target, target], axis=-1)
        mask = np.concatenate([mask, ~mask], axis=-1)
    result = inpaint(target, mask, [rng.uniform(0, 1, target.shape)], method="stacked", steps=1)
    assert result.image.shape == target.shape and np.isfinite(result.image).all()
    assert np.array_equal(result.image[:, ~mask], target[:, ~mask])


def test_infinite_values_count_as_missing():
    target = np.ones((1, 40, 40))
    target[0, 5, 5] = np.inf
    mask = np.zeros((40, 40), bool)
    result = inpaint(target, mask, [np.ones((1, 40, 40))], method="stacked", steps=1)
    assert result.filled[5, 5] and result.filled.sum() == 1 and np.isfinite(result.image).all()


def test_many_bands_and_constant_bands():
    rng = np.random.default_rng(1)
    target = rng.uniform(0, 1, (40, 16, 16))
    target[3] = 7.0
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    result = inpaint(target, mask, [target[:2]], method="stacked", steps=1)
    assert result.image.shape == target.shape and np.isfinite(result.image).all()


DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64, np.complex64, np.bool_]


@st.composite
def engine_inputs(draw):
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    bands = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    target = (rng.uniform(0, 200, (bands, height, width))).astype(dtype)
    if np.issubdtype(target.dtype, np.floating):
        nan_fraction = draw(st.sampled_from([0.0, 0.1, 1.0]))
        target[rng.random(target.shape) < nan_fraction] = np.nan
    mask = rng.random((height, width)) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    if draw(st.booleans()):
        mask = mask[:, : max(1, width - 1)]  # sometimes the wrong shape
    guide_shape = (draw(st.integers(1, 2)), height, width if draw(st.booleans()) else width + 1)
    guide = rng.uniform(-5, 5, guide_shape)
    guide[rng.random(guide.shape) < draw(st.sampled_from([0.0, 0.5, 1.0]))] = np.nan
    return target, mask, guide


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine_inputs())
def test_random_inputs_run_or_raise_input_error(data):
    """Well-formed inputs run; the others, and only they, are refused with an InputError."""
    target, mask, guide = data
    try:
        result = inpaint(target, mask, [guide], method="stacked", steps=1)
    except InputError:
        assert _ill_formed(target, mask, guide)
        return
    assert not _ill_formed(target, mask, guide)
    assert result.image.shape == np.asarray(target).reshape(-1, *mask.shape).shape
    assert np.isfinite(result.image).all()


def _ill_formed(target: np.ndarray, mask: np.ndarray, guide: np.ndarray) -> bool:
    """Complex data, mismatched shapes, or (with pixels to fill) a band of the target or the guide with no value."""
    if np.iscomplexobj(target) or mask.shape != target.shape[1:] or guide.shape[1:] != target.shape[1:]:
        return True
    known = np.isfinite(target.astype(float)) & ~mask
    if known.all():
        return False  # nothing to fill: the target comes back as it is
    return not known.any(axis=(1, 2)).all() or not np.isfinite(guide).any(axis=(1, 2)).all()


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 40), st.integers(1, 40))
def test_super_resolution_any_grid_sizes_run_or_raise_input_error(h, w, big_h, big_w):
    rng = np.random.default_rng(0)
    try:
        low, guide = rng.uniform(size=(1, h, w)), rng.uniform(size=(2, big_h, big_w))
        result = super_resolve(low, [guide], method="stacked", steps=1)
    except InputError:
        assert big_h < h or big_w < w or (big_h, big_w) == (h, w)
        return
    assert result.image.shape == (1, big_h, big_w)
