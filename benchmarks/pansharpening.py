"""Instant super-resolution tools a user would otherwise pick, as benchmark baselines (not engine estimates).

- :func:`gdal_brovey`: QGIS's *Pansharpening* (GDAL's weighted Brovey, cubic resampling, equal weights), with
  the mean of the guide bands as the panchromatic band, as a user would build it.
- :func:`guided_filter`: the guided filter (He, Sun and Tang 2013) of the bicubic image, the same mean of the
  guides as its guide: the edges of the guide, the levels of the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from osgeo import gdal
from scipy import ndimage

GUIDED_EPS = 0.01  # regularisation of the guided filter, on images scaled to unit variance


def _mem(image: np.ndarray, pixel: float) -> gdal.Dataset:
    """``image`` (B, H, W) as a float64 in-memory dataset with square pixels of side ``pixel``."""
    ds = gdal.GetDriverByName("MEM").Create("", image.shape[2], image.shape[1], len(image), gdal.GDT_Float64)
    ds.SetGeoTransform((0.0, pixel, 0.0, 0.0, 0.0, -pixel))
    for index, band in enumerate(image):
        ds.GetRasterBand(index + 1).WriteArray(band)
    return ds


def pan(guides: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of every guide band: the panchromatic band a user builds from the guides."""
    return np.concatenate([np.asarray(g, np.float64) for g in guides]).mean(axis=0)


def gdal_brovey(low: np.ndarray, guides: Sequence[np.ndarray]) -> np.ndarray:
    """GDAL's weighted Brovey pansharpening of ``low`` (B, h, w) on the guides' grid."""
    panchromatic = pan(guides)
    height, width = panchromatic.shape
    pan_ds = _mem(panchromatic[None], 1.0)
    ms_ds = _mem(low, width / low.shape[2])
    weights = ",".join([f"{1 / len(low):.17g}"] * len(low))
    bands = "".join(f'<SpectralBand dstBand="{i + 1}"/>' for i in range(len(low)))
    xml = (
        '<VRTDataset subClass="VRTPansharpenedDataset"><PansharpeningOptions>'
        f"<AlgorithmOptions><Weights>{weights}</Weights></AlgorithmOptions><Resampling>Cubic</Resampling>"
        f"{bands}</PansharpeningOptions></VRTDataset>"
    )
    spectral = [ms_ds.GetRasterBand(i + 1) for i in range(len(low))]
    vrt = gdal.CreatePansharpenedVRT(xml, pan_ds.GetRasterBand(1), spectral)
    return vrt.ReadAsArray().astype(np.float64).reshape(len(low), height, width)


def guided_filter(upsampled: np.ndarray, guides: Sequence[np.ndarray], radius: int) -> np.ndarray:
    """Each band of ``upsampled`` (B, H, W) filtered with the guides' mean as guide, in windows of ``radius``."""
    guide = pan(guides)
    guide = (guide - guide.mean()) / max(guide.std(), 1e-12)
    size = 2 * radius + 1

    def box(image: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(image, size, mode="reflect")

    mean_guide = box(guide)
    var_guide = box(guide * guide) - mean_guide**2
    out = []
    for band in upsampled:
        scale = max(band.std(), 1e-12)
        values = band / scale
        mean = box(values)
        slope = (box(guide * values) - mean_guide * mean) / (var_guide + GUIDED_EPS)
        offset = mean - slope * mean_guide
        out.append((box(slope) * guide + box(offset)) * scale)
    return np.stack(out)
