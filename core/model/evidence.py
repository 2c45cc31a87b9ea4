"""The held-out evidence a fit chooses by: weights that make held-out pixels as deep as the real gap, and the
bootstrap lower bound of a gain.

Held-out patches are placed on clear ground between the gaps, so they are
shallower than the real gaps (a small budget shrinks large cloud shapes). Their
pixels are weighted so that their distance to the pixels the fit sees follows
the real gap's distance to clear ground (:func:`depth_weights`). Two separate
sets of patches are held out (:class:`core.pipeline.sample.Sample`): one chooses
the starting estimate, the other scores the steps, so that the estimate's score
on the second is not flattered by having been chosen on it. A step replaces the
estimate only when its gain is above the held-out scores' own spread: the lower
bound over resamples of blocks of the patches (:func:`gain_lower_bound`), not a
constant margin.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["DEPTH_BINS", "depth_weights", "gain_lower_bound", "resampling_units"]

BLOCK = 8  # px: resampling units are held-out patches cut by a grid this wide (about the SSIM window's reach)
DEPTH_BINS = (0.0, 1.5, 3.0, 6.0, 12.0, 24.0, 48.0, np.inf)  # px: distance classes to clear ground
MAX_WEIGHT = 10.0  # a held-out pixel counts for at most this many (few deep held-out pixels stay noisy)
RESAMPLES = 400
LOWER_QUANTILE = 0.05  # a gain counts when 95 % of the resamples still show it
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def resampling_units(holdout: np.ndarray) -> np.ndarray:
    """``(H, W)`` labels 1..U of the held-out pixels' resampling units, 0 elsewhere: each held-out patch
    (8-connected) cut by a grid of :data:`BLOCK` px, so that even a single patch gives several units."""
    patches = ndimage.label(holdout, structure=_EIGHT_NEIGHBOURS)[0]
    rows, cols = np.indices(holdout.shape) // BLOCK
    key = (patches * (rows.max() + 1) + rows) * (cols.max() + 1) + cols
    units = np.zeros(holdout.shape, dtype=np.int64)
    if holdout.any():
        units[holdout] = np.unique(key[holdout], return_inverse=True)[1] + 1
    return units


def depth_weights(holdout: np.ndarray, seen: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Weights of the ``holdout`` pixels (0 elsewhere) that make their distance to the ``seen`` pixels follow the
    ``missing`` pixels' distance to clear ground (:data:`DEPTH_BINS`), at most :data:`MAX_WEIGHT`, mean 1."""
    weights = np.zeros(holdout.shape)
    if not holdout.any():
        return weights
    held_depth = ndimage.distance_transform_edt(~seen)[holdout]
    gap_depth = ndimage.distance_transform_edt(missing)[missing] if missing.any() else held_depth
    held = np.histogram(held_depth, DEPTH_BINS)[0] / held_depth.size
    gap = np.histogram(gap_depth, DEPTH_BINS)[0] / gap_depth.size
    ratio = np.minimum(np.divide(gap, held, out=np.zeros_like(gap), where=held > 0), MAX_WEIGHT)
    pixel = ratio[np.clip(np.digitize(held_depth, DEPTH_BINS) - 1, 0, len(ratio) - 1)]
    if not pixel.any():  # the held-out pixels are all shallower than any gap pixel: plain weights
        pixel = np.ones_like(pixel)
    weights[holdout] = pixel / pixel.mean()
    return weights


def gain_lower_bound(gain: np.ndarray, weight: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """The :data:`LOWER_QUANTILE` of the weighted mean of the per-pixel ``gain`` over resamples of the units.

    Neighbouring pixels are not independent, so whole units (``labels``, :func:`resampling_units`) are drawn
    (with replacement, as many as there are); with one unit there is no spread to measure and the bound is
    minus infinity (the gain never counts).
    """
    inside = (labels > 0) & (weight > 0)
    count = int(labels.max()) if inside.any() else 0
    if count < 2:
        return -np.inf
    sums = np.bincount(labels[inside], weights=(gain * weight)[inside], minlength=count + 1)[1:]
    totals = np.bincount(labels[inside], weights=weight[inside], minlength=count + 1)[1:]
    draws = np.random.default_rng(seed).integers(0, count, size=(RESAMPLES, count))
    means = sums[draws].sum(axis=1) / np.maximum(totals[draws].sum(axis=1), 1e-12)
    return float(np.quantile(means, LOWER_QUANTILE))
