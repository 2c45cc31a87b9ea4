"""Cloud masks: from a mask raster's values to a boolean (H, W) array (numpy only).

A mask raster is turned into ``True`` = cloud/missing with either a list of
values meaning cloud (e.g. ``"1"`` for a binary mask or ``"3,8,9,10"`` for the
Sentinel-2 scene classification layer; ranges such as ``"8-10"`` are allowed)
or a threshold (cloud probability rasters: ``value >= threshold``); a
:class:`CloudMask` (raster and/or polygons) is read window by window on the
working grid as a :class:`MaskLayer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .io import read_decimated, read_window
from .tiling import Window

__all__ = ["CloudMask", "MaskError", "MaskLayer", "dilate", "mask_from_values", "parse_mask_values"]


class MaskError(InputError):
    """The mask specification or the mask itself cannot be used; the message is for the end user."""


def parse_mask_values(text: str) -> list[tuple[float, float]]:
    """Parse "1" / "3,8,9,10" / "8-10, 3" / ">=40" into inclusive (low, high) value ranges.

    A single value v gives (v, v); "a-b" gives (a, b); ">=t" or ">t" gives (t, inf)
    (">t" excludes t itself by nudging it up to the next float).
    """
    if text is None or not str(text).strip():
        raise MaskError("No cloud mask value given: enter the value(s) that mean cloud, e.g. 1 or 3,8,9,10.")
    ranges: list[tuple[float, float]] = []
    for raw in str(text).replace(";", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            if item.startswith(">="):
                ranges.append((float(item[2:]), np.inf))
            elif item.startswith(">"):
                t = float(item[1:])
                ranges.append((float(np.nextafter(t, np.inf)), np.inf))
            elif "-" in item[1:]:
                cut = item.index("-", 1)
                low, high = float(item[:cut]), float(item[cut + 1 :])
                if low > high:
                    low, high = high, low
                ranges.append((low, high))
            else:
                v = float(item)
                ranges.append((v, v))
        except ValueError:
            raise MaskError(
                f"Cannot read the cloud mask value '{item}': use numbers separated by commas "
                "(e.g. 3,8,9,10), ranges such as 8-10, or a threshold such as >=50."
            ) from None
    if not ranges:
        raise MaskError("No cloud mask value given: enter the value(s) that mean cloud, e.g. 1 or 3,8,9,10.")
    return ranges


def _as_2d(mask_data: np.ndarray) -> np.ndarray:
    data = np.asarray(mask_data, dtype=np.float64)
    if data.ndim == 3:
        if data.shape[0] != 1:
            # a multi-band mask: a pixel is cloud if any band says so (handled by the callers per band)
            return data
        data = data[0]
    if data.ndim not in (2, 3):
        raise MaskError("The cloud mask must be a single-band raster.")
    return data


def mask_from_values(mask_data: np.ndarray, values: str | list[tuple[float, float]]) -> np.ndarray:
    """Boolean (H, W) mask, True where the mask raster's value is one of ``values``.

    Multi-band masks are combined with a logical OR. NaN (mask nodata) is not cloud.
    """
    ranges = parse_mask_values(values) if isinstance(values, str) else list(values)
    data = _as_2d(mask_data)
    out = np.zeros(data.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for low, high in ranges:
            out |= (data >= low) & (data <= high)
    if out.ndim == 3:
        out = out.any(axis=0)
    return out


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean mask by ``pixels`` (disk-shaped structuring element); 0 returns a copy."""
    mask = np.asarray(mask, dtype=bool)
    pixels = int(pixels)
    if pixels < 0:
        raise MaskError("The mask dilation must be zero or a positive number of pixels.")
    if pixels == 0 or not mask.any():
        return mask.copy()
    from scipy import ndimage  # here: the plugin reads mask values before the engine's packages are checked
    from skimage.morphology import disk

    return ndimage.binary_dilation(mask, structure=disk(pixels))


@dataclass(frozen=True)
class CloudMask:
    """Which pixels are missing: values of a mask raster and/or polygons, grown by ``dilation`` px."""

    raster: str | None = None  # any grid; resampled with nearest neighbour
    values: str = "1"  # values meaning cloud: "1", "3,8,9,10", "8-10", ">=40"
    polygons: str | None = None  # a vector file (any CRS) whose polygons are cloud
    dilation: int = 0


@dataclass(frozen=True)
class MaskLayer:
    """A :class:`CloudMask` on the working grid, read window by window."""

    raster: str | None
    ranges: tuple[tuple[float, float], ...]
    polygons: str | None  # Byte raster on the grid, 1 = cloud
    dilation: int
    height: int
    width: int

    def _evaluate(self, mask_values: np.ndarray | None, polygons: np.ndarray | None) -> np.ndarray:
        """Cloud pixels from the mask raster's values and the burnt polygons (at least one is given)."""
        cloud = mask_from_values(mask_values, list(self.ranges)) if mask_values is not None else False
        return cloud | (polygons[0] > 0) if polygons is not None else cloud

    def read(self, window: Window) -> np.ndarray:
        """Cloud pixels (True) of a window, dilation included (read with a halo)."""
        d = self.dilation
        top, left = max(0, window.row - d), max(0, window.col - d)
        bottom = min(self.height, window.row + window.height + d)
        right = min(self.width, window.col + window.width + d)
        halo = Window(top, left, bottom - top, right - left)
        cloud = self._evaluate(
            read_window(self.raster, halo) if self.raster else None,
            read_window(self.polygons, halo) if self.polygons else None,
        )
        cloud = dilate(cloud, d)
        return cloud[
            window.row - top : window.row - top + window.height, window.col - left : window.col - left + window.width
        ]

    def read_decimated(self, max_side: int = 1024) -> np.ndarray:
        """Cloud pixels of the whole grid subsampled like :func:`core.raster.io.read_decimated` (no dilation)."""
        return self._evaluate(
            read_decimated(self.raster, max_side) if self.raster else None,
            read_decimated(self.polygons, max_side) if self.polygons else None,
        )
