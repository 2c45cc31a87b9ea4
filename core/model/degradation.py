"""How a low-resolution image is made from a high-resolution one, and the exact way back onto the input.

A degradation is separable and linear: ``low = Ry @ high @ Rx.T`` with one
matrix per axis, for any (non-integer) factor. ``area`` averages the high-resolution
pixels each low-resolution pixel covers, weighted by the covered area (as a
sensor integrates, and as ``gdal.Warp -r average`` resamples); ``bilinear`` is
the antialiased bilinear resampling of the paper. :meth:`Degradation.project`
changes an image by the least it must so that its degradation equals the input.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..choices import DegradationKind

__all__ = ["Degradation", "axis_matrix"]


def axis_matrix(kind: DegradationKind, high: int, low: int) -> np.ndarray:
    """The ``(low, high)`` matrix taking one axis of ``high`` pixels to ``low`` pixels."""
    if kind is DegradationKind.AREA:
        edges = np.arange(low + 1) * (high / low)  # low-resolution pixel edges in high-resolution pixels
        starts, ends = np.arange(high), np.arange(1, high + 1)
        overlap = np.minimum(ends[None], edges[1:, None]) - np.maximum(starts[None], edges[:-1, None])
        return np.clip(overlap, 0, None) / (high / low)
    identity = torch.eye(high, dtype=torch.float64)[None, None]
    resized = F.interpolate(identity, size=(low, high), mode="bilinear", antialias=True, align_corners=False)
    return resized[0, 0].numpy()


class Degradation:
    """A separable degradation from a ``(H, W)`` grid to a ``(h, w)`` grid, on the last two axes of tensors."""

    def __init__(self, kind: DegradationKind | str, high: tuple[int, int], low: tuple[int, int]) -> None:
        kind = DegradationKind.of(kind)
        self.kind, self.high, self.low = kind, tuple(high), tuple(low)
        self.matrices = [axis_matrix(kind, big, small) for big, small in zip(high, low)]
        # their right inverses (R @ P = I): the least change that moves a degraded image by a given amount
        self.inverses = [m.T @ np.linalg.inv(m @ m.T) for m in self.matrices]
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
        """``image`` changed by the least amount (in the least-squares sense) so that it degrades to ``low``.

        Only the ``known`` low-resolution pixels are matched; elsewhere the image is kept.
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
