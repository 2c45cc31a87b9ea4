"""The anchor of an inpainting: the best instant fill of each band, chosen on held-out pixels, correctable.

Candidates are the interpolations and guide regressions of :mod:`core.classic`
and NSPI (:mod:`core.nspi`); one is chosen per band by its structural
similarity on held-out clear pixels, then computed again from all known pixels
and, where it reproduces them (an interpolation), cross-fitted there
(:func:`cross_fitted`), so that the network sees its real errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress

import numpy as np
from scipy import ndimage

from .classic import Anchor, as_bands, biharmonic, fill_nodata, local_regression, regression, spread_residual
from .errors import InputError
from .metrics import ssim_map
from .nspi import nspi

__all__ = ["cross_fitted", "inpainting_anchor", "inpainting_estimates", "scene_choice"]

SSIM_WINDOW = 11  # the smallest image side structural similarity is computed on (its Gaussian window)
CROSS_FOLDS = 4  # folds of known pixels an interpolation is recomputed without (cross_fitted)


def inpainting_anchor(
    target: np.ndarray,
    known: np.ndarray,
    guides: Sequence[np.ndarray],
    holdout: np.ndarray | None,
    names: Sequence[str] | None = None,
    cross_fit: bool = True,
) -> Anchor:
    """The best instant fill of each band, judged on the ``holdout`` pixels (known, but not used to fit), or the
    estimate of each band ``names`` gives (chosen elsewhere, e.g. over a scene: :func:`scene_choice`); without
    ``cross_fit``, for a network that is only applied, not fitted, as computed from all known pixels.

    Candidates (:func:`inpainting_estimates`) are judged by their structural
    similarity to the held-out pixels; the chosen one is then computed again
    from all known pixels. The estimate is returned as it is, also on the known
    pixels (a regression does not reproduce them): what it gets wrong there is
    what the network learns to correct.
    """
    target = as_bands(target, "target")
    known = np.broadcast_to(known, target.shape) & np.isfinite(target)
    fallback = "moving-window guide regression" if guides else "interpolation"
    errors = None
    if names is None and (holdout is None or not holdout.any()):
        names = [fallback] * len(target)
    elif names is None:
        estimates = inpainting_estimates(target, known & ~holdout, guides)
        errors = {name: _dissimilarity(image, target, holdout, known | holdout) for name, image in estimates.items()}
        names = [min(errors, key=lambda n: errors[n][band]) for band in range(len(target))]
    final = inpainting_estimates(target, known, guides, set(names))
    if len(final) < len(set(names)):  # a given estimate that cannot be made here (NSPI without similar pixels)
        final |= inpainting_estimates(target, known, guides, {fallback})
        names = [name if name in final else fallback for name in names]
    image = np.stack([final[name][band] for band, name in enumerate(names)])
    if cross_fit:
        image = cross_fitted(image, target, known, guides, names)
    return Anchor(image, list(names), errors)


def scene_choice(anchors: Sequence[Anchor]) -> list[str] | None:
    """The estimate of each band with the least held-out error over the ``anchors`` of several tiles (the mean of
    their errors, among the candidates judged on every tile), or None when no anchor was judged."""
    judged = [a.errors for a in anchors if a.errors is not None]
    if not judged:
        return None
    candidates = set.intersection(*(set(errors) for errors in judged))
    mean = {name: np.mean([errors[name] for errors in judged], axis=0) for name in sorted(candidates)}
    bands = len(next(iter(mean.values())))
    return [min(mean, key=lambda n: mean[n][band]) for band in range(bands)]


def cross_fitted(
    image: np.ndarray, target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], names: Sequence[str]
) -> np.ndarray:
    """The estimate ``image`` with, in bands where it reproduces the known pixels (an interpolation), those pixels
    recomputed with them hidden, fold by fold.

    An estimate equal to the target on every known pixel leaves the network nothing to learn: its loss is zero
    from the start and its output layer gets no gradient. Recomputed with blocks of known pixels hidden (the
    blocks as deep as the real gaps, in :data:`CROSS_FOLDS` folds), the estimate shows its real errors there, and
    the network learns to correct them; in the gaps the estimate is the one computed from all known pixels.
    """
    exact = [bool(np.allclose(image[b][known[b]], target[b][known[b]])) for b in range(len(image))]
    if not any(exact):
        return image
    out = image.copy()
    for fold in _folds(known.all(axis=0), ~known.any(axis=0)):
        hidden = known & fold
        if not hidden.any() or not (known & ~fold).any(axis=(1, 2)).all():
            continue
        wanted = {name for name, keep in zip(names, exact) if keep}
        refit = inpainting_estimates(target, known & ~fold, guides, wanted, at=hidden.any(axis=0))
        for band, name in enumerate(names):
            if exact[band]:
                out[band][hidden[band]] = refit[name][band][hidden[band]]
    return out


def _folds(clear: np.ndarray, missing: np.ndarray) -> list[np.ndarray]:
    """:data:`CROSS_FOLDS` masks of square blocks covering the image, each block in one fold (a fixed pattern).

    The block side is twice the median distance of the missing pixels to clear ground (4 to 32 px), so that a
    hidden block's interpolation is about as far from known pixels as the gaps' is.
    """
    depth = ndimage.distance_transform_edt(missing)[missing] if missing.any() else np.array([2.0])
    side = int(np.clip(2 * np.median(depth), 4, 32))
    rows, cols = np.indices(clear.shape) // side
    fold_of = (rows % 2) * 2 + (cols + rows // 2) % 2  # neighbouring blocks in other folds
    return [fold_of == k for k in range(CROSS_FOLDS)]


def inpainting_estimates(
    target: np.ndarray,
    known: np.ndarray,
    guides: Sequence[np.ndarray],
    names: set[str] | None = None,
    at: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The instant fills of the unknown pixels, by name (all, or those in ``names``); ``at`` ``(H, W)``: the only
    unknown pixels whose values are wanted, where that saves work (NSPI predicts pixel by pixel).

    GDAL Fill nodata (``interpolation``), biharmonic (``smooth interpolation``),
    and with guides the global and the moving-window guide regression, the
    latter also with its residual carried into the gaps (:func:`core.classic.spread_residual`),
    and NSPI (:func:`core.nspi.nspi`).
    """
    wanted = names or {
        "interpolation",
        "smooth interpolation",
        *(
            (
                "guide regression",
                "moving-window guide regression",
                "moving-window guide regression + residual",
                "neighbourhood similar pixels (NSPI)",
            )
            if guides
            else ()
        ),
    }
    estimates = {}
    if "interpolation" in wanted:
        estimates["interpolation"] = fill_nodata(target, ~known)
    if "smooth interpolation" in wanted:
        estimates["smooth interpolation"] = biharmonic(target, ~known)
    if "guide regression" in wanted:
        estimates["guide regression"] = regression(target, known, guides)
    if wanted & {"moving-window guide regression", "moving-window guide regression + residual"}:
        local = local_regression(target, known, guides)
        estimates["moving-window guide regression"] = local
        estimates["moving-window guide regression + residual"] = local + spread_residual(target - local, known)
    if "neighbourhood similar pixels (NSPI)" in wanted:
        with suppress(InputError):  # no pixel known in every band with a valid guide: not a candidate here
            estimates["neighbourhood similar pixels (NSPI)"] = nspi(target, known, guides, at=at)
    return estimates


def _dissimilarity(estimate: np.ndarray, target: np.ndarray, holdout: np.ndarray, known: np.ndarray) -> np.ndarray:
    """1 - the structural similarity of each band over the held-out pixels (``known`` pixels as they are)."""
    holdout = np.broadcast_to(holdout, target.shape)
    reference = np.where(known, target, estimate)
    predicted = np.where(holdout, estimate, reference)
    if min(target.shape[1:]) < SSIM_WINDOW:  # too small for a structural similarity: the squared error ranks them
        return np.array(
            [np.mean((p[h] - r[h]) ** 2) if h.any() else np.inf for p, r, h in zip(predicted, reference, holdout)]
        )
    maps = ssim_map(predicted, reference)
    return np.array([1 - m[h].mean() if h.any() else np.inf for m, h in zip(maps, holdout)])
