# SPDX-License-Identifier: GPL-2.0-or-later
"""Processing algorithm "Guided super-resolution" (mcpn:guidedsuperresolution)."""

from __future__ import annotations

from typing import Any, Callable

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..core.choices import DegradationKind
from ..core.config import MAX_SENSOR_BLUR, Settings
from . import compat
from .base import MCPNAlgorithm
from .messages import tr
from .parameters import (
    DEFAULTS,
    add,
    add_choice,
    add_method,
    add_output,
    add_report_output,
    add_run_parameters,
    add_stopping,
    add_tiling_parameters,
)

HELP_TEXT = "".join(
    [
        "<p>Brings a low-resolution raster, for example a 20 m or 60 m Sentinel-2 band, to the resolution of "
        "one or more high-resolution guide rasters of the same place, for example the 10 m bands. A small "
        "neural network is fitted to this scene only (a deep image prior), seeing the guides as input: it "
        "starts from the best instant estimate (guide regression or bicubic, whichever predicts held-out "
        "input pixels best) and learns a correction of it. The result averages back exactly to the input and "
        "gains the guides' sharpness. No training data is needed.</p>",
        "<p><b>Inputs.</b> <i>Low-resolution raster</i>: the band or bands to sharpen, read over the first "
        "guide's extent at their own pixel size. <i>High-resolution guide rasters</i>: the output takes the "
        "<b>first</b> guide's grid (CRS, extent and pixel size); the other guides are resampled to it. The "
        "guides must be finer than the input.</p>",
        "<p><b>Choices.</b> <i>Method</i>: Stacked (default, the fastest), Direct or Emergent. "
        "<i>Stopping</i>: held-out input pixels (default), a fixed number of steps, or low-resolution RMSE. "
        "The Advanced group holds how the network starts, how the input was made (area average or bilinear, "
        "and the sensor's blur, estimated by default), "
        "the learning rate, network width, precision, output averaging, tiling and Dask; every field has a "
        "tooltip.</p>",
        "<p><b>Outputs.</b> A GeoTIFF on the first guide's grid with the input's data type, nodata and band "
        "names; where the input is nodata, so is the output. Optionally an HTML run report.</p>",
        "<p><b>Time.</b> On a two-core CPU a step of a 256 px tile takes about 0.2 s with Stacked; the fit "
        "stops when the held-out pixels stop improving, at most after the steps you set. A GPU (CUDA or Apple "
        "MPS, chosen automatically) is the device for whole scenes. The run happens in the background, "
        "reports its progress and the time left, and can be cancelled. It needs the Python packages torch, "
        "numpy, scipy and scikit-image (the algorithm tells you how to install them when they are "
        "missing).</p>",
    ]
)


class GuidedSuperResolution(MCPNAlgorithm):
    DEGRADATION = "DEGRADATION"
    SENSOR_BLUR = "SENSOR_BLUR"
    NAME = "guidedsuperresolution"
    DISPLAY_NAME = "Guided super-resolution"
    SHORT_DESCRIPTION = "Brings a low-resolution band to the resolution of high-resolution guide images."
    HELP = HELP_TEXT
    SUPER_RESOLUTION = True

    def initAlgorithm(self, config: dict | None = None) -> None:
        add(
            self,
            QgsProcessingParameterRasterLayer(self.INPUT, tr("Low-resolution raster")),
            tr("The band or bands to sharpen, for example a 20 m Sentinel-2 band. Must be coarser than the guides."),
        )
        add(
            self,
            QgsProcessingParameterMultipleLayers(
                self.GUIDES,
                tr("High-resolution guide rasters (the output takes the first one's grid)"),
                layerType=compat.SOURCE_RASTER,
            ),
            tr(
                "Images of the same place at the target resolution, for example the 10 m Sentinel-2 bands. The "
                "output takes the first guide's CRS, extent and pixel size; the others are resampled to it."
            ),
        )
        add_method(
            self,
            tr(
                "Stacked (default): one network outputs all images as channels, the fastest per step. Direct: the "
                "core network produces the sharpened image and small heads rebuild each guide from it. Emergent: a "
                "learned core signal with one head per image."
            ),
        )
        add_stopping(
            self,
            tr(
                "Held-out input pixels (default): a few patches of the low-resolution input are hidden from the "
                "fit; the step that predicts them best is kept, the instant estimate when no step clearly beats "
                "it. Fixed number of steps: keep the (averaged) output of the last step. Low-resolution RMSE: "
                "keep the checked step that best reproduces the low-resolution input."
            ),
        )
        add_run_parameters(self)
        add_choice(
            self,  # optional: models saved before it existed run with the default
            self.DEGRADATION,
            tr("How the low-resolution raster was made"),
            list(DegradationKind),
            DEFAULTS.degradation,
            tr(
                "Area average: each low-resolution pixel is the mean of the high-resolution pixels it covers, as a "
                "sensor measures and as GDAL's average resampling makes it. The result then averages back exactly "
                "to the input. Bilinear: the antialiased bilinear resampling of Czerkawski et al.'s MCPN."
            ),
            advanced=True,
            optional=True,
        )
        add(
            self,
            QgsProcessingParameterNumber(
                self.SENSOR_BLUR,
                tr("Sensor blur in low-resolution pixels (empty: estimated)"),
                compat.NUMBER_DOUBLE,
                optional=True,
                minValue=0.0,
                maxValue=MAX_SENSOR_BLUR,
            ),
            tr(
                "A sensor's pixel sees a little of its neighbours (its point spread), so the input is blurrier "
                "than an average of the finer pixels. This is the standard deviation of that Gaussian blur, in "
                "input pixels (0: none; about 0.5 for a sensor whose response at the input's Nyquist frequency is "
                "0.3). Empty: estimated from the guides, as the blur under which they best explain the input's "
                "finest detail; the log says the value."
            ),
            advanced=True,
        )
        add_tiling_parameters(self)
        add_output(self, tr("A GeoTIFF on the first guide's grid, with the input's data type, nodata and band names."))
        add_report_output(self)

    @staticmethod
    def engine() -> Callable[..., Any]:
        from ..core.pipeline.super_resolution import super_resolve_raster

        return super_resolve_raster

    def settings(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback | None = None
    ) -> tuple[Settings, dict[str, Any]]:
        low_layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        low_res = self.raster_path(low_layer, "low-resolution raster")
        guides = self.raster_paths(parameters, self.GUIDES, context, "guide raster")
        if not guides:
            raise QgsProcessingException(tr("Select at least one high-resolution guide raster."))
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        self.name_output_layer(context, output, f"{self.displayName()} – {low_layer.name()}")
        degradation = self.choice(parameters, self.DEGRADATION, list(DegradationKind), context)
        given = parameters.get(self.SENSOR_BLUR) not in (None, "")
        blur = self.parameterAsDouble(parameters, self.SENSOR_BLUR, context) if given else None
        settings = self.common_settings(parameters, context, degradation=degradation, sensor_blur=blur)
        return settings, {"low_res": low_res, "guides": guides, "output": output}
