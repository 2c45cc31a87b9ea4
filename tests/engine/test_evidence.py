"""The held-out evidence: two sets of patches, weights as deep as the real gap, the lower bound of a gain."""

from __future__ import annotations

import numpy as np
from mcpn.core.model.evidence import depth_weights, gain_lower_bound, patch_labels, split_patches
from mcpn.core.trust.self_validation import holdout_mask
from scipy import ndimage


def squares(size: int, corners: list[tuple[int, int]], side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    for row, col in corners:
        mask[row : row + side, col : col + side] = True
    return mask


def test_the_patches_split_into_two_disjoint_sets_of_about_equal_area():
    hidden = squares(64, [(2, 2), (2, 20), (20, 2), (20, 20), (40, 40)], 6)
    first, second = split_patches(hidden)
    assert not (first & second).any() and ((first | second) == hidden).all()
    assert abs(int(first.sum()) - int(second.sum())) <= 36  # one patch at most between them
    for part in (first, second):  # whole patches in each
        labels = patch_labels(part)
        assert all(((labels == k) == (patch_labels(hidden) == patch_labels(hidden)[labels == k][0])).all()
                   for k in range(1, labels.max() + 1))  # fmt: skip
    alone, rest = split_patches(squares(64, [(2, 2)], 6))
    assert not alone.any() and rest.sum() == 36  # nothing to split: every pixel scores the steps


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
    labels = patch_labels(squares(64, [(r, c) for r in (2, 22, 42) for c in (2, 22, 42)], 10))
    weight = (labels > 0).astype(float)
    everywhere = np.where(labels > 0, 0.01, 0.0)
    assert gain_lower_bound(everywhere, weight, labels) > 0
    mixed = np.where(labels % 2 == 1, 0.05, -0.04) * (labels > 0)  # better on average, worse in 4 of 9 patches
    assert mixed[labels > 0].mean() > 0 and gain_lower_bound(mixed, weight, labels) < 0
    assert gain_lower_bound(everywhere, weight, patch_labels(squares(64, [(2, 2)], 10))) == -np.inf
