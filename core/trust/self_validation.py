"""Self-validation: hide clear pixels under synthetic clouds, fill them, and score the fill against the truth.

Under a real cloud there is no ground truth. Here clear pixels of the target
are hidden under *synthetic* clouds shaped like the real ones (the real mask's
connected cloud shapes, rotated by multiples of 90°, maybe mirrored, and moved
onto clear ground), the image is filled with the user's settings, with GDAL
Fill nodata and (when given) with the instant estimate the fit starts from,
and the fills are scored on the hidden pixels (SSIM and RMSE of
:mod:`core.metrics`): an estimate, on the user's own scene, of how good the
real fill is and of what MCPN adds over interpolation and over the best instant
tool (its measured error: ``benchmarks/results/calibration.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve

from ..classic import as_bands, fill_nodata
from ..errors import InputError
from ..metrics import rmse, ssim_map

__all__ = ["Fill", "Validation", "holdout_mask", "synthetic_mask", "validate"]

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]
Seed = Union[int, np.random.Generator]

# At most this share of the clear pixels is hidden, so the fit keeps enough to learn from.
MAX_HIDDEN_SHARE = 0.5
MIN_CLEAR_PIXELS = 64
# Synthetic clouds keep this many pixels away from real clouds, nodata and each other.
MARGIN = 1
# A shape may overshoot the target cover by this factor.
OVERSHOOT = 1.5
RANDOM_TRIALS = 20
SCALES = (1, 2, 4)
_ORIENTATIONS = [(turns, mirror) for turns in range(4) for mirror in (False, True)]
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


@dataclass
class Validation:
    """Scores of MCPN, of GDAL Fill nodata and of the instant estimate the fit starts from (None when not scored)
    on the pixels hidden under synthetic clouds (target units)."""

    hidden: np.ndarray  # (H, W) bool: the synthetic clouds
    mcpn_ssim: float
    mcpn_rmse: float
    gdal_ssim: float
    gdal_rmse: float
    mcpn_band_ssim: list[float]
    mcpn_band_rmse: list[float]
    gdal_band_ssim: list[float]
    gdal_band_rmse: list[float]
    notes: list[str] = field(default_factory=list)
    instant_ssim: float | None = None
    instant_rmse: float | None = None
    instant_band_ssim: list[float] | None = None
    instant_band_rmse: list[float] | None = None

    @property
    def hidden_pixels(self) -> int:
        return int(self.hidden.sum())


def synthetic_mask(real_mask: np.ndarray, invalid: np.ndarray | None = None, seed: Seed = 0) -> np.ndarray:
    """Synthetic clouds ``(H, W)`` bool shaped like ``real_mask``'s, on clear pixels only.

    ``invalid`` marks nodata pixels. The synthetic clouds cover about as many
    pixels as the real ones (at most ``MAX_HIDDEN_SHARE`` of the clear pixels)
    and never touch real clouds, nodata or each other (``MARGIN`` px). Shapes
    that fit nowhere are scaled down (1/2, 1/4); if even those do not fit,
    random discs are used. The same ``seed`` gives the same mask. Raises
    :class:`InputError` when there are too few clear pixels or no real cloud.
    """
    return _like_real(real_mask, invalid, seed)[0]


def holdout_mask(missing: np.ndarray, share: float, seed: Seed = 0) -> np.ndarray | None:
    """Known pixels to hold out of a fit to score its steps: ``share`` of them, shaped like the ``missing`` areas.

    Random discs where nothing is missing (super-resolution); None when there
    are too few known pixels to spare.
    """
    missing = np.asarray(missing, dtype=bool)
    clear = int((~missing).sum())
    if clear < 2 * MIN_CLEAR_PIXELS or share <= 0:
        return None
    try:
        return _synthetic(missing, np.zeros_like(missing), int(share * clear), _rng(seed))[0]
    except InputError:  # no patch fits between the missing areas (e.g. only thin strips are clear)
        return None


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _like_real(real: np.ndarray, invalid: np.ndarray | None, seed: Seed) -> tuple[np.ndarray, str]:
    """:func:`synthetic_mask` and a sentence saying how it was made."""
    real = np.asarray(real, dtype=bool)
    invalid = np.zeros_like(real) if invalid is None else np.asarray(invalid, dtype=bool)
    if real.ndim != 2 or invalid.shape != real.shape:
        raise InputError(f"the cloud mask {real.shape} and the nodata mask {invalid.shape} must be (H, W) alike")
    clear = int((~real & ~invalid).sum())
    if clear < MIN_CLEAR_PIXELS:
        raise InputError(f"self-validation needs at least {MIN_CLEAR_PIXELS} clear pixels; the target has {clear}")
    if not real.any():
        raise InputError("the cloud mask marks no pixel: there is nothing to validate")
    return _synthetic(real, invalid, min(int(real.sum()), int(MAX_HIDDEN_SHARE * clear)), _rng(seed))


def validate(
    target: np.ndarray, mask: np.ndarray, fill: Fill, *, seed: Seed = 0, instant: Fill | None = None
) -> Validation:
    """Hide clear pixels under synthetic clouds, fill them with ``fill``, GDAL Fill nodata and ``instant`` (the
    instant estimate ``fill`` starts from, called as ``fill`` is; optional), and score each.

    ``fill(target, mask)`` gets the target with the hidden pixels set to NaN
    and the real mask plus the synthetic clouds, and returns the filled
    ``(B, H, W)`` image (e.g. a closure over :func:`core.pipeline.api.inpaint` with the
    user's settings and guides). Scores use only the hidden pixels: RMSE over
    them, and SSIM maps averaged over them. Both SSIM images are the same
    reference except at the hidden pixels: the target where it is known, GDAL
    Fill nodata of the real gaps elsewhere. It costs one more fit, which may
    cover more tiles than the real one where synthetic clouds fall in clear tiles.
    """
    truth = as_bands(target, "target")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != truth.shape[1:]:
        raise InputError(f"the mask is {mask.shape[::-1]} pixels but the target is {truth.shape[:0:-1]}")
    hidden, note = _like_real(mask, ~np.isfinite(truth).all(axis=0), seed)
    masked = np.where(hidden, np.nan, truth)
    reference = fill_nodata(truth, mask)
    outputs = {"mcpn": as_bands(fill(masked, mask | hidden), "fill"), "gdal": fill_nodata(masked, mask | hidden)}
    if instant is not None:
        outputs["instant"] = as_bands(instant(masked, mask | hidden), "instant estimate")
    scores: dict[str, float | list[float]] = {}
    for name, output in outputs.items():
        if output.shape != truth.shape:
            raise InputError(f"the {name} fill returned shape {output.shape}, expected {truth.shape}")
        pred = np.where(hidden, output, reference)
        maps = ssim_map(pred, reference)[:, hidden]
        scores[f"{name}_ssim"] = float(maps.mean())
        scores[f"{name}_rmse"] = rmse(pred, reference, hidden)
        scores[f"{name}_band_ssim"] = [float(m) for m in maps.mean(axis=1)]
        scores[f"{name}_band_rmse"] = [rmse(p, r, hidden) for p, r in zip(pred, reference)]
    return Validation(hidden=hidden, notes=[note], **scores)


def _synthetic(real: np.ndarray, invalid: np.ndarray, target: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A synthetic mask of about ``target`` clear pixels and a sentence saying how it was made."""
    clear = int((~real & ~invalid).sum())
    placer = _Placer(real | invalid, target, min(int(OVERSHOOT * target), int(MAX_HIDDEN_SHARE * clear)), rng)
    labels, _ = ndimage.label(real, structure=_EIGHT_NEIGHBOURS)
    shapes = [labels[box] == index + 1 for index, box in enumerate(ndimage.find_objects(labels))]
    shapes.sort(key=lambda shape: -int(shape.sum()))
    for scale in SCALES:
        if placer.place_all([shape[::scale, ::scale] for shape in shapes]):
            how = "shaped like the real clouds" + (f", scaled to 1/{scale} to fit" if scale > 1 else "")
            return placer.placed, f"synthetic clouds {how}: {placer.count} of {real.size} pixels hidden"
    radius = max(0, int(np.sqrt((target - placer.count) / (4 * np.pi))))
    while placer.count < target:
        if not placer.place(_disc(radius)):
            if radius == 0:
                break
            radius //= 2
    if placer.count == 0:
        raise InputError("no synthetic cloud fits between the real clouds and nodata: self-validation is impossible")
    return placer.placed, (
        f"synthetic clouds partly random discs (the real cloud shapes did not fit in the clear area): "
        f"{placer.count} of {real.size} pixels hidden"
    )


class _Placer:
    """Places shapes at random free positions until ``target`` pixels are covered (never more than ``limit``)."""

    def __init__(self, taken: np.ndarray, target: int, limit: int, rng: np.random.Generator) -> None:
        self.taken = np.pad(taken, MARGIN)  # real clouds, nodata and placed shapes; padded by the margin
        self.placed = np.zeros_like(taken)
        self.count = 0
        self.target = target
        self.limit = limit
        self.rng = rng

    def place_all(self, shapes: list[np.ndarray]) -> bool:
        """Place copies of ``shapes`` (in turn, repeatedly) until the target is met; False if they stop fitting."""
        while True:
            progress = False
            for shape in shapes:
                if self.count >= self.target:
                    return True
                progress |= self.place(shape)
            if not progress:
                return self.count >= self.target

    def place(self, shape: np.ndarray) -> bool:
        """Place a random orientation of ``shape`` at a random free position; False if none fits."""
        area = int(shape.sum())
        if area == 0 or self.count + area > self.limit:
            return False
        found = self._random_position(shape) or self._any_position(shape)
        if found is None:
            return False
        row, col, oriented = found
        height, width = oriented.shape
        self.placed[row : row + height, col : col + width] |= oriented
        self.count += area
        self.taken[row + MARGIN : row + MARGIN + height, col + MARGIN : col + MARGIN + width] |= oriented
        return True

    def _random_position(self, shape: np.ndarray) -> tuple[int, int, np.ndarray] | None:
        """Cheap guesses: a few random orientations and positions."""
        rows, cols = self.placed.shape
        for _ in range(RANDOM_TRIALS):
            oriented = _orient(shape, *_ORIENTATIONS[self.rng.integers(len(_ORIENTATIONS))])
            height, width = oriented.shape
            if height > rows or width > cols:
                continue
            row, col = int(self.rng.integers(rows - height + 1)), int(self.rng.integers(cols - width + 1))
            if not (
                self.taken[row : row + height + 2 * MARGIN, col : col + width + 2 * MARGIN] & _grow(oriented)
            ).any():
                return row, col, oriented
        return None

    def _any_position(self, shape: np.ndarray) -> tuple[int, int, np.ndarray] | None:
        """Exhaustive search: every free position of every orientation (by FFT correlation), one drawn at random."""
        rows, cols = self.placed.shape
        tried: list[np.ndarray] = []
        for index in self.rng.permutation(len(_ORIENTATIONS)):
            oriented = _orient(shape, *_ORIENTATIONS[index])
            if oriented.shape[0] > rows or oriented.shape[1] > cols or any(np.array_equal(oriented, t) for t in tried):
                continue
            tried.append(oriented)
            grown = _grow(oriented).astype(np.float64)
            overlap = fftconvolve(self.taken.astype(np.float64), grown[::-1, ::-1], mode="valid")
            free = np.argwhere(overlap < 0.5)
            if len(free):
                row, col = free[self.rng.integers(len(free))]
                return int(row), int(col), oriented
        return None


def _orient(shape: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    rotated = np.rot90(shape, turns)
    return rotated[:, ::-1] if mirror else rotated


def _grow(shape: np.ndarray) -> np.ndarray:
    """The shape padded and dilated by ``MARGIN`` px (8-connected)."""
    return ndimage.binary_dilation(np.pad(shape, MARGIN), structure=_EIGHT_NEIGHBOURS, iterations=MARGIN)


def _disc(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return y * y + x * x <= radius * radius
