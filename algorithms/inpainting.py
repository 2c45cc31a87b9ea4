# SPDX-License-Identifier: GPL-2.0-or-later
"""Processing algorithm "Guided cloud inpainting" (mcpn:guidedcloudinpainting)."""

from __future__ import annotations

from typing import Any, Callable

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.config import Settings
from ..core.errors import MCPNError
from ..core.raster.masks import CloudMask, parse_mask_values
from . import compat, styles
from .base import MCPNAlgorithm
from .messages import tr
from .parameters import (
    add,
    add_advanced,
    add_method,
    add_output,
    add_report_output,
    add_run_parameters,
    add_stopping,
    add_tiling_parameters,
)

HELP_TEXT = "".join(
    [
        "<p>Fills the cloudy or missing pixels of a satellite image using one or more guide images of the "
        "same place, for example a clear image of another date or a radar image. A small neural network is "
        "fitted to this scene only (a deep image prior): it learns to reproduce the clear part of the target "
        "from the guides, which it also sees as input. It starts from the best instant estimate (guide "
        "regression or interpolation, whichever fills held-out clear pixels best) and learns a correction of "
        "it; the step that fills held-out clear pixels best is kept, the instant estimate itself when no step "
        "clearly beats it. Clear pixels are copied unchanged. No training data is needed.</p>",
        "<p><b>Inputs.</b> <i>Target raster</i>: the image to repair (any number of bands); its nodata pixels "
        "are filled too. <i>Cloud mask raster</i> or <i>cloud polygons</i> (at least one of the two): where "
        "the clouds are, on any grid or CRS. <i>Mask values meaning cloud</i>: 1 for a 0/1 mask, 3,8,9,10 for "
        "the Sentinel-2 scene classification layer, a range such as 8-10 or a threshold such as &gt;=40 for a "
        "cloud probability. <i>Guide rasters</i> or <i>radar guide rasters</i> (at least one guide in either "
        "list): images of the same area; radar guides in linear backscatter (such as Sentinel-1 sigma0) are "
        "converted to decibels first.</p>",
        "<p><b>Choices.</b> <i>Method</i>: Stacked (default, the fastest), Direct or Emergent, the variants "
        "of MCPN (Czerkawski et al.). <i>Stopping</i>: held-out clear pixels (default), a fixed number of steps, the "
        "known-region RMSE or patch consistency. The Advanced group holds how the network starts (from the "
        "instant estimate, or from noise as in MCPN), the learning rate, network width, precision, "
        "output averaging, mask dilation, tiling, Dask, the uncertainty ensemble and self-validation; every "
        "field has a tooltip.</p>",
        "<p><b>Outputs.</b> A GeoTIFF with the target's grid, data type, nodata and band names; optionally "
        "the uncertainty (spread of several fits) and an HTML run report.</p>",
        "<p><b>Time.</b> On a two-core CPU a raster of several tiles gets one network for the scene by "
        "default: its fit (about six minutes) is paid once, then each cloudy tile takes about a second; one "
        "network per tile (Advanced) can take half an hour per tile. A GPU (CUDA or Apple MPS) is faster. "
        "The run happens in the background, reports its progress and the time left, and can be cancelled. "
        "It needs torch, numpy, scipy and scikit-image (the algorithm says how to install them if missing).</p>",
    ]
)


class GuidedCloudInpainting(MCPNAlgorithm):
    NAME = "guidedcloudinpainting"
    DISPLAY_NAME = "Guided cloud inpainting"
    SHORT_DESCRIPTION = "Fills cloudy pixels of an image using guide images of the same place."
    HELP = HELP_TEXT
    MASK = "MASK"
    MASK_VALUES = "MASK_VALUES"
    MASK_POLYGONS = "MASK_POLYGONS"
    MASK_DILATION = "MASK_DILATION"
    RADAR_GUIDES = "RADAR_GUIDES"
    ENSEMBLE = "ENSEMBLE"
    SELF_VALIDATION = "SELF_VALIDATION"
    UNCERTAINTY = "UNCERTAINTY"
    OUTPUTS = {MCPNAlgorithm.OUTPUT: "output", UNCERTAINTY: "uncertainty"}

    def initAlgorithm(self, config: dict | None = None) -> None:
        add(
            self,
            QgsProcessingParameterRasterLayer(self.INPUT, tr("Target raster (cloudy image)")),
            tr("The image to repair, any number of bands. Its nodata pixels are filled too."),
        )
        add(
            self,
            QgsProcessingParameterRasterLayer(self.MASK, tr("Cloud mask raster (or cloud polygons)"), optional=True),
            tr(
                "A raster whose values mark the clouds, on any grid or CRS (resampled to the target with nearest "
                "neighbour). Give this, cloud polygons, or both."
            ),
        )
        add(
            self,
            QgsProcessingParameterString(self.MASK_VALUES, tr("Mask values meaning cloud"), defaultValue="1"),
            tr(
                "Values of the cloud mask raster that mean cloud, separated by commas: 1 for a 0/1 mask, 3,8,9,10 "
                "for the Sentinel-2 scene classification layer, ranges such as 8-10, or a threshold such as >=40 "
                "for a cloud probability raster."
            ),
        )
        add(
            self,
            QgsProcessingParameterFeatureSource(
                self.MASK_POLYGONS,
                tr("Cloud polygons (or cloud mask raster)"),
                [compat.SOURCE_VECTOR_POLYGON],
                optional=True,
            ),
            tr("A polygon layer whose features are clouds, in any CRS. Give this, a cloud mask raster, or both."),
        )
        add(
            self,
            QgsProcessingParameterMultipleLayers(
                self.GUIDES,
                tr("Guide rasters (or radar guide rasters)"),
                layerType=compat.SOURCE_RASTER,
                optional=True,
            ),
            tr(
                "Images of the same area used as they are: a clear optical image of another date, a radar image "
                "already in dB... They are resampled (bilinear) to the target's grid. Give at least one guide here "
                "or in Radar guide rasters."
            ),
        )
        add(
            self,
            QgsProcessingParameterMultipleLayers(
                self.RADAR_GUIDES,
                tr("Radar guide rasters in linear backscatter (or guide rasters)"),
                layerType=compat.SOURCE_RASTER,
                optional=True,
            ),
            tr(
                "Radar backscatter in linear units, such as Sentinel-1 GRD sigma0: converted to decibels, then used "
                "like the other guides. Give at least one guide here or in Guide rasters."
            ),
        )
        add_method(
            self,
            tr(
                "Stacked (default): one network outputs target and guides as channels; started from the instant "
                "estimate it is as good as the others here and about 4 times faster per step. Direct: the core "
                "network produces the target itself and small heads rebuild each guide from it. Emergent: a learned "
                "core signal with one small head per image (Czerkawski et al.'s choice for radar guides)."
            ),
        )
        add_stopping(
            self,
            tr(
                "Held-out clear pixels (default): a few cloud-shaped patches of clear pixels are hidden from the "
                "fit; the step whose fill matches them best is kept, the instant estimate when no step clearly "
                "beats it. Fixed number of steps: keep the (averaged) output of the last step. Known-region RMSE: "
                "keep the checked step that best matches the clear pixels. Patch consistency: keep the step whose "
                "fill has the texture of the clear region (downloads about 100 MB of Inception-v3 weights once; "
                "offline a fixed filter bank is used and the log says so)."
            ),
        )
        add_run_parameters(self)
        add_advanced(
            self,
            QgsProcessingParameterNumber(
                self.MASK_DILATION,
                tr("Grow the clouds by (pixels)"),
                compat.NUMBER_INTEGER,
                defaultValue=0,
                minValue=0,
                maxValue=100,
            ),
            tr("Grows the cloud mask by this many pixels, to cover the hazy edges of the clouds."),
        )
        add_tiling_parameters(self)
        add_advanced(
            self,
            QgsProcessingParameterNumber(
                self.ENSEMBLE,
                tr("Number of fits for the uncertainty layer"),
                compat.NUMBER_INTEGER,
                defaultValue=3,
                minValue=2,
                maxValue=20,
            ),
            tr(
                "Used only when the Uncertainty output is asked for: each cloudy tile is fitted this many times "
                "with different seeds; the output is their mean and the uncertainty their spread."
            ),
        )
        add_advanced(
            self,
            QgsProcessingParameterBoolean(
                self.SELF_VALIDATION, tr("Estimate the quality on synthetic clouds (one more fit)"), defaultValue=False
            ),
            tr(
                "Before the real fill, clear pixels of one cloudy tile are hidden under synthetic clouds shaped like "
                "yours, filled with MCPN and with GDAL Fill nodata, and both are scored against the true pixels. "
                "The scores are in the log and the run report."
            ),
        )
        add_output(self, tr("A GeoTIFF with the target's grid, data type, nodata and band names."))
        add(
            self,
            QgsProcessingParameterRasterDestination(
                self.UNCERTAINTY, tr("Uncertainty (spread of several fits)"), optional=True, createByDefault=False
            ),
            tr(
                "Per filled pixel, the standard deviation of the fills of the ensemble (0 on clear pixels). "
                "Costs one fit per ensemble member."
            ),
        )
        add_report_output(self)

    def input_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """As the base class, and: a cloud mask and at least one guide are given, the mask values can be read."""
        if not parameters.get(self.MASK) and not parameters.get(self.MASK_POLYGONS):
            return tr("Give a cloud mask raster, cloud polygons or both.")
        if not parameters.get(self.GUIDES) and not parameters.get(self.RADAR_GUIDES):
            return tr("Select at least one guide raster (Guide rasters or Radar guide rasters).")
        if parameters.get(self.MASK):
            try:
                parse_mask_values(self.parameterAsString(parameters, self.MASK_VALUES, context))
            except MCPNError as exc:
                return str(exc)
        return super().input_problem(parameters, context)

    @staticmethod
    def engine() -> Callable[..., Any]:
        from ..core.pipeline.inpainting import inpaint_raster

        return inpaint_raster

    def settings(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback | None = None
    ) -> tuple[Settings, dict[str, Any]]:
        target_layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        target = self.raster_path(target_layer, "target raster")
        mask_layer = self.parameterAsRasterLayer(parameters, self.MASK, context)
        polygons = None
        if parameters.get(self.MASK_POLYGONS):
            polygons = self.parameterAsCompatibleSourceLayerPath(
                parameters, self.MASK_POLYGONS, context, ["gpkg", "shp"], "gpkg", feedback or QgsProcessingFeedback()
            )  # a layer of another format is converted: it needs a feedback object (None crashes QGIS 3.22)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context) or None
        self.name_output_layer(context, output, f"{self.displayName()} – {target_layer.name()}")
        if uncertainty:
            name = f"Uncertainty – {target_layer.name()}"
            self.name_output_layer(context, uncertainty, name, styles.uncertainty_style(uncertainty))
        settings = self.common_settings(
            parameters,
            context,
            ensemble=self.parameterAsInt(parameters, self.ENSEMBLE, context) if uncertainty else 1,
            self_validation=self.parameterAsBoolean(parameters, self.SELF_VALIDATION, context),
        )
        inputs = {
            "target": target,
            "mask": CloudMask(
                raster=self.raster_path(mask_layer, "cloud mask") if mask_layer is not None else None,
                values=self.parameterAsString(parameters, self.MASK_VALUES, context),
                polygons=polygons,
                dilation=self.parameterAsInt(parameters, self.MASK_DILATION, context),
            ),
            "guides": self.raster_paths(parameters, self.GUIDES, context, "guide raster"),
            "radar_guides": self.raster_paths(parameters, self.RADAR_GUIDES, context, "radar guide raster"),
            "output": output,
            "uncertainty": uncertainty,
        }
        return settings, inputs
