"""Cloud masks: from a mask raster's values to a boolean (H, W) array (numpy only).

A mask raster is turned into ``True`` = cloud/missing with either a list of
values meaning cloud (e.g. ``"1"`` for a binary mask or ``"3,8,9,10"`` for the
Sentinel-2 scene classification layer; ranges such as ``"8-10"`` are allowed)
or a threshold (cloud probability rasters: ``value >= threshold``).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["MaskError", "parse_mask_values", "mask_from_values", "mask_from_threshold", "dilate", "summary"]


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


def mask_from_threshold(mask_data: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean (H, W) mask, True where the value is >= threshold (cloud probability rasters)."""
    return mask_from_values(mask_data, [(float(threshold), np.inf)])


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean mask by ``pixels`` (disk-shaped structuring element); 0 returns a copy."""
    mask = np.asarray(mask, dtype=bool)
    pixels = int(pixels)
    if pixels < 0:
        raise MaskError("The mask dilation must be zero or a positive number of pixels.")
    if pixels == 0 or not mask.any():
        return mask.copy()
    height, width = mask.shape
    padded = np.pad(mask, pixels, mode="constant", constant_values=False)
    out = np.zeros_like(mask)
    for dy in range(-pixels, pixels + 1):
        for dx in range(-pixels, pixels + 1):
            if dy * dy + dx * dx > pixels * pixels:
                continue
            out |= padded[pixels + dy : pixels + dy + height, pixels + dx : pixels + dx + width]
    return out


def summary(mask: np.ndarray) -> str:
    """A short human-readable description of a mask's cloud cover."""
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    return f"{n} of {mask.size} pixels masked ({100.0 * n / max(mask.size, 1):.1f} %)"
