# SPDX-License-Identifier: GPL-2.0-or-later
"""How output layers look when QGIS loads them on completion: a layer post-processor, as QGIS's own algorithms use.

The uncertainty layer (a spread in the target's units, 0 on clear pixels) would
load as a grey or RGB stretch of its first bands; :func:`uncertainty_style`
gives its first band a single-band pseudocolor renderer over a perceptual ramp,
from 0 to a high percentile of its nonzero values.

The Processing context takes over the C++ side of a post-processor and deletes
it with itself, so each run gets its own. QGIS keeps no reference to the Python
side, and without one Python may collect it before QGIS calls it (a known
pitfall of post-processors written in Python): :data:`_KEPT` holds each until
it has styled its layer, keyed by the layer's file (a new run to the same file
replaces the one of a run that never loaded its layer).
"""

from __future__ import annotations

import math

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)

RAMP = "Viridis"  # of QGIS's default style: perceptual, readable in grey and by most colour-blind readers
PERCENTILE = 98  # the top of the ramp: this percentile of the band's nonzero values (a few outliers do not flatten it)
SAMPLE = 1024  # the band is read at most this many pixels wide and high to find it


def high_value(path: str, band: int = 1) -> float:
    """The :data:`PERCENTILE` of the band's finite, nonzero, valid values (read decimated); 1.0 when there are none."""
    import numpy as np
    from osgeo import gdal

    dataset = gdal.Open(path)
    if dataset is None:
        return 1.0
    raster = dataset.GetRasterBand(band)
    scale = max(1.0, max(dataset.RasterXSize, dataset.RasterYSize) / SAMPLE)
    width, height = max(1, round(dataset.RasterXSize / scale)), max(1, round(dataset.RasterYSize / scale))
    values = raster.ReadAsArray(buf_xsize=width, buf_ysize=height).astype("float64").ravel()
    nodata = raster.GetNoDataValue()
    keep = np.isfinite(values) & (values > 0)
    if nodata is not None:
        keep &= values != nodata
    top = float(np.percentile(values[keep], PERCENTILE)) if keep.any() else 0.0
    return top if top > 0 and math.isfinite(top) else 1.0


class SpreadStyle(QgsProcessingLayerPostProcessorInterface):
    """Band 1 in pseudocolor (:data:`RAMP`), from 0 to :func:`high_value`; other layers are left as they are."""

    def postProcessLayer(  # noqa: N802  (QGIS's name)
        self, layer: QgsRasterLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        for path in [path for path, style in _KEPT.items() if style is self]:
            del _KEPT[path]  # QGIS calls it once; the context deletes its C++ side
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            return
        renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1)
        renderer.setClassificationMin(0.0)
        renderer.setClassificationMax(high_value(layer.source().split("|")[0]))
        renderer.createShader(QgsStyle.defaultStyle().colorRamp(RAMP))  # the ramp is copied
        layer.setRenderer(renderer)
        layer.triggerRepaint()


_KEPT: dict[str, SpreadStyle] = {}  # the post-processors QGIS has not called yet, by output file


def uncertainty_style(path: str) -> SpreadStyle:
    """A new post-processor for the uncertainty layer written to ``path``, kept until QGIS has called it."""
    _KEPT[path] = style = SpreadStyle()
    return style
