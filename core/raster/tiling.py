"""Tiles for rasters larger than one network: overlapping windows and feathered blending.

Only tiles that contain missing pixels are fitted, so the cost grows with the
cloudy area, not with the scene. Overlapping outputs are blended with weights
that fall linearly to the tile edges, so no seam shows between tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A rectangle of the raster: rows ``row:row + height``, columns ``col:col + width``."""

    row: int
    col: int
    height: int
    width: int


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def tile_windows(height: int, width: int, tile: int, overlap: int) -> list[Window]:
    """Windows of at most ``tile`` px covering the raster, overlapping by at least ``overlap`` px."""
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError("the tile size must be positive and larger than the overlap")
    step = tile - overlap
    return [
        Window(row, col, min(tile, height), min(tile, width))
        for row in _starts(height, tile, step)
        for col in _starts(width, tile, step)
    ]


def feather(window: Window, overlap: int) -> np.ndarray:
    """Blending weights of a window: 1 inside, falling linearly over ``overlap`` px to the edges."""
    if overlap == 0:
        return np.ones((window.height, window.width))

    def ramp(n: int) -> np.ndarray:
        distance = np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5
        return np.clip(distance / overlap, 0, 1)

    return np.minimum.outer(ramp(window.height), ramp(window.width))
