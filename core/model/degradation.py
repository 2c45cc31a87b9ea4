"""How a low-resolution image is made from a high-resolution one, and the exact way back onto the input.

A degradation is separable and linear: ``low = Ry @ high @ Rx.T`` with one
matrix per axis, for any (non-integer) factor. ``area`` averages the high-resolution
pixels each low-resolution pixel covers, weighted by the covered area (as a
sensor integrates, and as ``gdal.Warp -r average`` resamples); ``bilinear`` is
the antialiased bilinear resampling of the paper. Either may follow a Gaussian
blur (``blur``, its width in low-resolution pixels): a sensor's point spread,
which makes its pixels blurrier than a plain average. :meth:`Degradation.project`
adds a smooth correction to an image so that its degradation equals the input.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..choices import DegradationKind

__all__ = ["BLUR_REACH", "Degradation", "axis_matrix", "lift_matrix"]

BLUR_REACH = 4.0  # the Gaussian blur is cut at this many standard deviations


def axis_matrix(
    kind: DegradationKind,
    high: int,
    low: int,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
    blur: float = 0.0,
) -> np.ndarray:
    """The ``(low, high)`` matrix taking one axis of ``high`` pixels to ``low`` ones, or its ``rows`` x ``cols`` block;
    ``blur``: the standard deviation (low-resolution pixels) of a Gaussian applied first, edges mirrored.

    A block is computed on its own (a scene's whole matrix would not fit in memory).
    """
    (r0, r1), (c0, c1) = rows or (0, low), cols or (0, high)
    sigma = blur * high / low
    if sigma > 0:
        reach = math.ceil(BLUR_REACH * sigma)
        span = (max(0, c0 - reach), min(high, c1 + reach))
        return axis_matrix(kind, high, low, (r0, r1), span) @ _gaussian_block(high, sigma, reach, span, (c0, c1))
    scale = high / low
    centres = (np.arange(r0, r1)[:, None] + 0.5) * scale  # low-resolution pixel centres in high-resolution pixels
    if kind is DegradationKind.AREA:
        starts = np.arange(c0, c1)[None]
        overlap = np.minimum(starts + 1, centres + scale / 2) - np.maximum(starts, centres - scale / 2)
        return np.clip(overlap, 0, None) / scale
    # antialiased bilinear (as torch's interpolate): a triangle of half-width ``scale``, normalised over the raster
    support = np.arange(max(0, math.floor(r0 * scale - scale)), min(high, math.ceil(r1 * scale + scale)))
    weights = np.clip(1 - np.abs(support[None] + 0.5 - centres) / scale, 0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    inside = (support >= c0) & (support < c1)
    block = np.zeros((r1 - r0, c1 - c0))
    block[:, support[inside] - c0] = weights[:, inside]
    return block


def _gaussian_block(size: int, sigma: float, reach: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """The ``rows`` x ``cols`` block of the ``(size, size)`` Gaussian blur matrix, edges mirrored (as SciPy's
    ``reflect``), taps within ``reach`` pixels, normalised."""
    taps = np.arange(-reach, reach + 1)
    weights = np.exp(-0.5 * (taps / sigma) ** 2)
    weights /= weights.sum()
    out = np.arange(*rows)[:, None]
    source = out + taps[None]
    source = np.where(source < 0, -source - 1, source)
    source = np.where(source >= size, 2 * size - source - 1, source)
    block = np.zeros((rows[1] - rows[0], cols[1] - cols[0]))
    inside = (source >= cols[0]) & (source < cols[1])
    row_of = np.broadcast_to(out - rows[0], source.shape)
    np.add.at(block, (row_of[inside], source[inside] - cols[0]), np.broadcast_to(weights, source.shape)[inside])
    return block


def lift_matrix(
    high: int, low: int, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None
) -> np.ndarray:
    """The ``(high, low)`` bilinear interpolation matrix (pixel centres aligned, edges replicated), or its block."""
    (r0, r1), (c0, c1) = rows or (0, high), cols or (0, low)
    position = np.clip((np.arange(r0, r1) + 0.5) * (low / high) - 0.5, 0, low - 1)  # in low-resolution pixels
    below = np.minimum(np.floor(position).astype(int), low - 2) if low > 1 else np.zeros(len(position), int)
    block = np.zeros((r1 - r0, low))
    block[np.arange(r1 - r0), below] = 1 - (position - below)
    if low > 1:
        block[np.arange(r1 - r0), below + 1] += position - below
    return block[:, c0:c1]


class Degradation:
    """A separable degradation from a ``(H, W)`` grid to a ``(h, w)`` grid, on the last two axes of tensors."""

    def __init__(
        self,
        kind: DegradationKind | str,
        high: tuple[int, int],
        low: tuple[int, int],
        part: tuple[tuple[slice, slice], tuple[slice, slice]] | None = None,
        blur: float = 0.0,
    ) -> None:
        """``part``: (low-resolution rows and columns, high-resolution rows and columns), the block of this
        degradation between those pixels (a window of a scene); the whole degradation when None. ``blur``: the
        sensor's Gaussian point spread (standard deviation, low-resolution pixels) before the resampling."""
        kind = DegradationKind.of(kind)
        lows, highs = part or ((slice(0, low[0]), slice(0, low[1])), (slice(0, high[0]), slice(0, high[1])))
        self.kind, self.blur = kind, blur
        self.high = tuple(axis.stop - axis.start for axis in highs)
        self.low = tuple(axis.stop - axis.start for axis in lows)
        spans = [((a.start, a.stop), (b.start, b.stop)) for a, b in zip(lows, highs)]
        self.matrices = [axis_matrix(kind, *sizes, *span, blur) for sizes, span in zip(zip(high, low), spans)]
        lifts = [lift_matrix(*sizes, span[1], span[0]) for sizes, span in zip(zip(high, low), spans)]
        # smooth right inverses (R @ P = I): a residual spread by bilinear interpolation, not as flat blocks
        self.inverses = [lift @ np.linalg.inv(m @ lift) for m, lift in zip(self.matrices, lifts)]
        self.to(torch.device("cpu"))

    def to(self, device: torch.device) -> Degradation:
        """Put the float32 tensors on ``device`` (the NumPy methods keep float64)."""
        self.rows, self.cols, self.rows_back, self.cols_back = (
            torch.from_numpy(m).float().to(device) for m in (*self.matrices, *self.inverses)
        )
        return self

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """The degraded image: ``(..., H, W)`` to ``(..., h, w)``."""
        return self.rows @ image.to(self.rows.dtype) @ self.cols.T

    def project(self, image: torch.Tensor, low: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """``image`` corrected so that it degrades to ``low``: the residual, interpolated bilinearly, is added.

        Only the ``known`` low-resolution pixels are matched. The correction is smooth (no steps at
        low-resolution pixel edges) and exact (the right inverse solves for it).
        """
        residual = (low - self(image)) * known
        return image + self.rows_back @ residual @ self.cols_back.T

    def numpy(self, image: np.ndarray) -> np.ndarray:
        """The degraded image of a ``(..., H, W)`` NumPy array (float64)."""
        rows, cols = self.matrices
        return rows @ image @ cols.T

    def project_numpy(self, image: np.ndarray, low: np.ndarray, known: np.ndarray) -> np.ndarray:
        """:meth:`project` on NumPy arrays (float64)."""
        rows_back, cols_back = self.inverses
        return image + rows_back @ np.where(known, low - self.numpy(image), 0.0) @ cols_back.T
