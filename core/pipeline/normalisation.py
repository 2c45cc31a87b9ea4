"""Per-band robust normalisation of a domain, and its exact inverse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

PERCENTILES = (1.0, 99.0)
_DB_FLOOR = 1e-6


def to_decibels(x: np.ndarray) -> np.ndarray:
    """Linear backscatter to dB (10 log10); values <= 0 become NaN (invalid)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(np.where(x > 0, x, np.nan))
    return db.astype(np.float32)


@dataclass(frozen=True)
class BandScaling:
    """Maps each band's 1st..99th percentile of valid pixels to 0..1."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, image: np.ndarray, valid: np.ndarray, name: str = "image") -> BandScaling:
        """Compute the scaling of a ``(bands, H, W)`` image from its ``valid`` pixels.

        ``valid`` is ``(H, W)`` or ``(bands, H, W)``. A band without any valid
        pixel raises :class:`InputError`; a constant band maps to 0.
        """
        valid = np.broadcast_to(valid, image.shape) & np.isfinite(image)
        low, high = [], []
        for band in range(image.shape[0]):
            values = image[band][valid[band]]
            if values.size == 0:
                raise InputError(f"band {band + 1} of the {name} has no valid pixel")
            lo, hi = np.percentile(values.astype(np.float64), PERCENTILES)
            low.append(lo)
            high.append(hi if hi > lo else lo + 1.0)
        return cls(np.array(low), np.array(high))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Scale a ``(bands, H, W)`` image (float32 out)."""
        scaled = (image - self.low[:, None, None]) / (self.high - self.low)[:, None, None]
        return scaled.astype(np.float32)

    def invert(self, scaled: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply` (float64 out, so round trips are exact to float32 precision)."""
        return scaled.astype(np.float64) * (self.high - self.low)[:, None, None] + self.low[:, None, None]
