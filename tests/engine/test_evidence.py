"""The held-out evidence: two sets of held-out pixels, weights as deep as the real gap, the bound of a gain."""

from __future__ import annotations

import numpy as np
from mcpn.core.model.evidence import depth_weights, gain_lower_bound, resampling_units
from mcpn.core.trust.self_validation import holdout_mask
from scipy import ndimage


def squares(size: int, corners: list[tuple[int, int]], side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    for row, col in corners:
        mask[row : row + side, col : col + side] = True
    return mask


def test_even_a_single_patch_gives_several_resampling_units():
    hidden = squares(64, [(0, 0), (32, 32)], 24)
    units = resampling_units(hidden)
    assert (units > 0).sum() == hidden.sum() and (units[~hidden] == 0).all()
    assert units.max() == 2 * 9  # each 24 px square cut by the 8 px grid into 3 x 3 blocks
    for unit in range(1, units.max() + 1):  # a unit lies in one patch and one block
        rows, cols = np.nonzero(units == unit)
        assert rows.max() // 8 == rows.min() // 8 and cols.max() // 8 == cols.min() // 8


def test_the_estimate_and_the_steps_are_judged_on_separate_held_out_pixels():
    from mcpn.core.config import Settings
    from mcpn.core.pipeline.sample import Sample

    rng = np.random.default_rng(0)
    target, guide = rng.random((1, 96, 96)), rng.random((1, 96, 96))
    cloud = squares(96, [(30, 30)], 30)
    seen = []
    import mcpn.core.pipeline.sample as sample_module

    original = sample_module.inpainting_anchor

    def spy(target, known, guides, holdout, *rest):
        seen.append(holdout)
        return original(target, known, guides, holdout, *rest)

    sample_module.inpainting_anchor = spy
    try:
        sample = Sample.prepare(target, ~cloud, [guide], (96, 96), Settings())
    finally:
        sample_module.inpainting_anchor = original
    (choosing,) = seen
    assert choosing.any() and sample.holdout.any()
    assert not (choosing & sample.holdout).any()  # two sets
    assert sample.known[choosing].all()  # the estimate's held-out pixels are trained on afterwards


def test_depth_weights_make_shallow_held_out_patches_count_like_a_deep_gap():
    gap = squares(96, [(30, 30)], 40)  # a deep gap: distances up to 20 px
    held = holdout_mask(gap, 0.1, seed=0)
    seen = ~gap & ~held
    weights = depth_weights(held, seen, gap)
    assert (weights[~held] == 0).all() and np.isclose(weights[held].mean(), 1)
    depth = ndimage.distance_transform_edt(~seen)
    deep, shallow = held & (depth >= 3), held & (depth < 1.5)
    assert deep.any() and shallow.any()
    assert weights[deep].mean() > weights[shallow].mean()  # the gap is mostly deep: deep held-out pixels weigh more
    plain = depth_weights(held, seen, held)  # a gap as deep as the held-out patches: equal weights
    np.testing.assert_allclose(plain[held], 1.0)


def test_a_gain_counts_only_above_the_patches_spread():
    labels = resampling_units(squares(64, [(r, c) for r in (2, 22, 42) for c in (2, 22, 42)], 6))
    weight = (labels > 0).astype(float)
    everywhere = np.where(labels > 0, 0.01, 0.0)
    assert gain_lower_bound(everywhere, weight, labels) > 0
    mixed = np.where(labels % 2 == 1, 0.05, -0.04) * (labels > 0)  # better on average, worse in 4 of 9 patches
    assert mixed[labels > 0].mean() > 0 and gain_lower_bound(mixed, weight, labels) < 0
    assert gain_lower_bound(everywhere, weight, resampling_units(squares(64, [(2, 2)], 6))) == -np.inf
