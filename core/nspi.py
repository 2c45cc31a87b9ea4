"""NSPI, the neighbourhood similar pixel interpolator (Chen, Zhu, Vogelmann, Gao and Jin 2011, *A simple and
effective method for filling gaps in Landsat ETM+ SLC-off images*, Remote Sensing of Environment 115).

The standard instant fill of Landsat-7 SLC-off gaps from an image of another date (the *guide*). For each gap
pixel, the nearest known pixels that look like it in the guide (its *similar pixels*) give two predictions:

- spatial: their target values, weighted;
- temporal: the gap pixel's guide value plus their weighted target-minus-guide change;

combined with weights that trust the spatial prediction where the similar pixels resemble the gap pixel closely
(small ``R1``) and the temporal one where little changed between the dates at the similar pixels (small ``R2``).

Choices beyond the paper, for speed and for guides that are not the target's bands:

- the similar pixels are the :data:`SIMILAR` nearest ones meeting the threshold, searched outwards from the gap
  pixel up to :data:`MAX_RADIUS`; every pixel up to :data:`DENSE_RADIUS` is tried, beyond it a lattice whose
  step grows with the distance (a few hundred offsets, vectorised over the gap pixels);
- the threshold on each guide band is ``2 sigma / m`` as in the paper, with ``sigma`` the guide's *local* standard
  deviation (a :data:`STD_RADIUS` window) and ``m`` = :data:`CLASSES`;
- the guide enters the temporal prediction mapped onto the target's bands by the global guide regression (for a
  guide of the same bands this is a radiometric normalisation; it also serves other bands, units or radar);
- spectral distances are taken on guide bands scaled by their standard deviation, ``R1`` and ``R2`` on target
  bands scaled by theirs;
- a gap pixel with no similar pixel (or no guide value) gets the global guide regression.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .classic import as_bands, regression
from .errors import InputError

__all__ = ["nspi"]

SIMILAR = 20  # similar pixels per gap pixel (the paper's minimum number)
CLASSES = 4  # m of the paper: a similar pixel is within 2 sigma / m of the gap pixel in every guide band
STD_RADIUS = 15  # px: the window of the local standard deviation behind the threshold
DENSE_RADIUS = 8  # px: every pixel this close is tried; beyond, a lattice of step distance / DENSE_RADIUS
MAX_RADIUS = 96  # px: the largest window searched
FLOOR = 1e-2  # in standard deviations: keeps identical pixels from taking all the weight
COMPACT_EVERY = 16  # offsets between removals of the gap pixels that found all their similar pixels


def nspi(
    target: np.ndarray,
    known: np.ndarray,
    guides: Sequence[np.ndarray],
    similar: int = SIMILAR,
    max_radius: int = MAX_RADIUS,
    at: np.ndarray | None = None,
) -> np.ndarray:
    """NSPI fill of the unknown pixels of ``target`` ``(B, H, W)`` from ``guides`` on the same grid.

    ``known`` ``(H, W)`` or ``(B, H, W)`` marks the pixels to keep (NaN target pixels count as unknown);
    similar pixels are taken among the pixels known in every band whose guide is valid. Known pixels are
    returned unchanged. With ``at`` ``(H, W)`` only those unknown pixels are predicted (each pixel's prediction
    does not depend on the others'); the rest get the guide regression NSPI starts from.
    """
    target = as_bands(target, "target")
    known = np.broadcast_to(known, target.shape) & np.isfinite(target)
    stacked = np.concatenate([as_bands(g, "guide") for g in guides])
    if stacked.shape[1:] != target.shape[1:]:
        raise InputError(f"the guides' grid {stacked.shape[1:]} differs from the target's {target.shape[1:]}")
    if known.all():
        return target.copy()
    usable = known.all(axis=0) & np.isfinite(stacked).all(axis=0)
    if not usable.any():
        raise InputError("no pixel is known in every band with a valid guide: nothing to fill from")
    mapped = regression(target, known, guides)  # the guide in the target's bands: fallback and temporal base
    out = np.where(known, target, mapped)
    gaps = ~known.all(axis=0) & np.isfinite(stacked).all(axis=0) & (True if at is None else at)
    if not gaps.any():
        return out
    guide = _scaled(stacked, usable)
    threshold = 2 * _local_std(guide) / CLASSES
    scale = np.array([b[m].std() if b[m].std() > 0 else 1.0 for b, m in zip(target, known)])
    scaled = target / scale[:, None, None], mapped / scale[:, None, None]
    predicted, found = _predict(*scaled, guide, threshold, usable, gaps, similar, max_radius)
    rows, cols = np.nonzero(gaps)
    rows, cols, predicted = rows[found], cols[found], predicted[found] * scale
    out[:, rows, cols] = np.where(known[:, rows, cols], out[:, rows, cols], predicted.T)
    return out


def _scaled(stacked: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Each guide band over its standard deviation on the usable pixels, NaN set to 0 (never a candidate)."""
    spread = np.array([b[usable].std() for b in stacked])
    scaled = stacked / np.where(spread > 0, spread, 1.0)[:, None, None]
    return np.where(np.isfinite(scaled), scaled, 0.0)


def _local_std(guide: np.ndarray) -> np.ndarray:
    size = 2 * STD_RADIUS + 1
    mean = np.stack([ndimage.uniform_filter(b, size, mode="reflect") for b in guide])
    square = np.stack([ndimage.uniform_filter(b * b, size, mode="reflect") for b in guide])
    return np.sqrt(np.maximum(square - mean**2, 0.0))


def _offsets(max_radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The search offsets (dy, dx) and their distances, nearest first: all up to DENSE_RADIUS, then a coarser
    lattice the further out."""
    span = np.arange(-max_radius, max_radius + 1)
    dy, dx = np.meshgrid(span, span, indexing="ij")
    distance = np.hypot(dy, dx)
    step = np.maximum(1, (distance // DENSE_RADIUS).astype(int))
    keep = (distance > 0) & (distance <= max_radius) & (dy % step == 0) & (dx % step == 0)
    order = np.argsort(distance[keep], kind="stable")
    return dy[keep][order], dx[keep][order], distance[keep][order]


def _predict(
    target: np.ndarray,
    mapped: np.ndarray,
    guide: np.ndarray,
    threshold: np.ndarray,
    usable: np.ndarray,
    gaps: np.ndarray,
    similar: int,
    max_radius: int,
) -> tuple[np.ndarray, np.ndarray]:
    """NSPI at the gap pixels (row-major order), in scaled units, and whether each found a similar pixel."""
    pad = max_radius
    width = gaps.shape[1] + 2 * pad

    def flat(image: np.ndarray) -> np.ndarray:  # (pixels of the padded grid, bands)
        padded = np.pad(np.where(np.isfinite(image), image, 0.0), ((0, 0), (pad, pad), (pad, pad)))
        return padded.reshape(len(image), -1).T.copy()

    candidate = np.pad(usable, pad).ravel()
    g, t, m = flat(guide), flat(target), flat(mapped)
    rows, cols = np.nonzero(gaps)
    pixel = (rows + pad) * width + cols + pad
    g0, limit = g[pixel], threshold[:, rows, cols].T
    count = np.zeros(len(pixel), int)
    index = np.zeros((len(pixel), similar), int)
    distance = np.ones((len(pixel), similar))
    active = np.arange(len(pixel))
    dys, dxs, distances = _offsets(max_radius)
    for step, (dy, dx, d) in enumerate(zip(dys, dxs, distances)):
        if step % COMPACT_EVERY == 0:
            active = active[count[active] < similar]
            if not len(active):
                break
        shifted = pixel[active] + dy * width + dx
        hit = candidate[shifted]
        hit[hit] = count[active[hit]] < similar
        which, shifted = active[hit], shifted[hit]
        close = (np.abs(g[shifted] - g0[which]) <= limit[which]).all(axis=1)
        which, shifted = which[close], shifted[close]
        index[which, count[which]] = shifted
        distance[which, count[which]] = d
        count[which] += 1
    valid = np.arange(similar) < count[:, None]
    spectral = np.sqrt(np.mean((g[index] - g0[:, None]) ** 2, axis=2))  # RMSD to the gap pixel in the guide
    weight = np.where(valid, 1 / ((spectral + FLOOR) * distance), 0.0)
    weight /= np.maximum(weight.sum(axis=1, keepdims=True), 1e-300)
    ts, ms, m0 = t[index], m[index], m[pixel]
    spatial = np.einsum("ns,nsb->nb", weight, ts)
    temporal = m0 + np.einsum("ns,nsb->nb", weight, ts - ms)
    r1 = np.einsum("ns,ns->n", weight, np.sqrt(np.mean((ms - m0[:, None]) ** 2, axis=2))) + FLOOR
    r2 = np.einsum("ns,ns->n", weight, np.sqrt(np.mean((ts - ms) ** 2, axis=2))) + FLOOR
    share = (1 / r1) / (1 / r1 + 1 / r2)  # the spatial prediction's weight
    return share[:, None] * spatial + (1 - share[:, None]) * temporal, count > 0
