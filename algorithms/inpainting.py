"""Processing algorithm "Guided cloud inpainting" (mcpn:guidedcloudinpainting)."""

from __future__ import annotations

from typing import Any

import numpy as np
from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core import masks, rasters
from .base import MCPNAlgorithm, report_result, tr

STOPPING = ["fixed", "known_rmse", "patch_consistency"]
STOPPING_LABELS = ["Fixed number of steps", "Known-region RMSE", "Patch consistency"]

HELP = """<p>Fills the cloudy (or missing) pixels of a satellite image with a small convolutional
network that is fitted to <i>this</i> image only (deep image prior, MCPN). The network sees the
clear part of the target image and one or more <b>guide</b> images of the same place (for example
a clear image of another date, or a radar image) and learns to reproduce the target from them;
its output then fills the masked pixels. Clear pixels are copied unchanged from the input.</p>
<h3>Parameters</h3>
<ul>
<li><b>Target raster</b>: the image to repair (any number of bands). Its nodata pixels are filled too.</li>
<li><b>Cloud mask</b>: a raster whose values mark clouds; it is resampled (nearest neighbour) to the
target's grid when needed.</li>
<li><b>Mask values meaning cloud</b>: comma-separated values (<code>1</code> for a 0/1 mask,
<code>3,8,9,10</code> for the Sentinel-2 scene classification layer), ranges (<code>8-10</code>) or a
threshold for probability masks (<code>&gt;=40</code>).</li>
<li><b>Guide rasters</b>: one or more images of the same area; they are resampled (bilinear) to the
target's grid. Pixels outside a guide's coverage are treated as invalid.</li>
<li><b>Method</b>: <i>Emergent</i> (a shared core network produces a learned signal from which one
small head per image rebuilds the target and each guide; the default, and the best with radar
guides in the paper), <i>Direct</i> (the core network produces the target itself and small heads
rebuild each guide from it) or <i>Stacked</i> (one network outputs target and guides stacked as
channels; the baseline of earlier work).</li>
<li><b>Stopping</b>: <i>Fixed number of steps</i> keeps the output of the last step; <i>Known-region
RMSE</i> keeps the checked step (every 50 steps) whose output best matches the clear pixels, and stops
early when it has not improved for 1000 steps; <i>Patch consistency</i> keeps the step whose filled
region has the texture statistics (Fr&eacute;chet distance of low-level image features) closest to
the clear region's.</li>
<li><b>Number of optimisation steps</b>: 4000 is a good default; a few hundred give a quick preview.
On a 2-core CPU one step of a 256&times;256 px tile takes about 0.7 s (Emergent) or 0.15 s (Stacked),
so 4000 steps take 10 to 50 minutes per cloudy tile; a GPU is one to two orders of magnitude faster.</li>
<li><b>Compute device</b>: <i>auto</i> uses an NVIDIA GPU when PyTorch sees one.</li>
<li><b>Random seed</b>: the same seed and inputs give the same result on the same device.</li>
<li><b>Advanced</b>: learning rate (0 = the method's default), core channels (network width),
mask dilation in pixels (grow the clouds to cover their hazy edges), conversion of guides to
decibels (tick it when the guides are radar backscatter in linear units) and the tile size: rasters
larger than one tile are processed in overlapping tiles, blended without seams, and only tiles
containing clouds are fitted.</li>
<li><b>Output</b>: a GeoTIFF with the target's grid, data type, nodata and band names.</li>
</ul>
<p>Runs in the background and can be cancelled. Requires torch, numpy, scipy and scikit-image.</p>"""


class GuidedCloudInpainting(MCPNAlgorithm):
    MASK = "MASK"
    MASK_VALUES = "MASK_VALUES"
    MASK_DILATION = "MASK_DILATION"
    SAR_GUIDES = "SAR_GUIDES"
    TILE_SIZE = "TILE_SIZE"

    def name(self) -> str:
        return "guidedcloudinpainting"

    def displayName(self) -> str:
        return tr("Guided cloud inpainting")

    def shortDescription(self) -> str:
        return tr("Fills cloudy pixels of an image using guide images of the same place.")

    def shortHelpString(self) -> str:
        return tr(HELP)

    def initAlgorithm(self, config: dict | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, tr("Target raster (cloudy image)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.MASK, tr("Cloud mask raster")))
        self.addParameter(
            QgsProcessingParameterString(self.MASK_VALUES, tr("Mask values meaning cloud"), defaultValue="1")
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.GUIDES, tr("Guide rasters"), layerType=QgsProcessing.TypeRaster)
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.METHOD, tr("Method"), options=self.METHOD_LABELS, defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.STOPPING, tr("Stopping"), options=STOPPING_LABELS, defaultValue=0)
        )
        self.add_run_parameters()
        self.add_advanced(
            QgsProcessingParameterNumber(
                self.MASK_DILATION,
                tr("Mask dilation (pixels)"),
                QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
                maxValue=100,
            )
        )
        self.add_advanced(
            QgsProcessingParameterBoolean(
                self.SAR_GUIDES, tr("Guides are radar backscatter: convert them to dB"), defaultValue=False
            )
        )
        self.add_advanced(
            QgsProcessingParameterNumber(
                self.TILE_SIZE,
                tr("Tile size (pixels)"),
                QgsProcessingParameterNumber.Integer,
                defaultValue=256,
                minValue=64,
                maxValue=4096,
            )
        )
        self.add_output()

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        feedback = feedback or QgsProcessingFeedback()
        self.require_dependencies()

        target_layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        target_path = self.raster_path(target_layer, "target raster")
        mask_path = self.raster_path(self.parameterAsRasterLayer(parameters, self.MASK, context), "cloud mask")
        guide_layers = self.parameterAsLayerList(parameters, self.GUIDES, context)
        if not guide_layers:
            raise QgsProcessingException(tr("Select at least one guide raster."))
        guide_paths = [self.raster_path(layer, "guide raster") for layer in guide_layers]
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        mask_values = self.parameterAsString(parameters, self.MASK_VALUES, context)
        dilation = self.parameterAsInt(parameters, self.MASK_DILATION, context)

        target = self.guarded("Target raster", rasters.read_raster, target_path)
        feedback.pushInfo(
            tr(f"Target: {target.name}, {target.bands} band(s), {target.grid.width}x{target.grid.height} px.")
        )
        mask_raster = self.guarded("Cloud mask", rasters.read_on_grid, mask_path, target.grid, "near", "cloud mask")
        mask = self.guarded("Cloud mask", masks.mask_from_values, mask_raster.data, mask_values)
        mask = self.guarded("Cloud mask", masks.dilate, mask, dilation)
        missing = mask | np.any(np.isnan(target.data), axis=0)
        feedback.pushInfo(tr(f"Cloud mask: {masks.summary(mask)}."))
        self.name_output_layer(context, output, f"{self.displayName()} – {target_layer.name()}")

        if not missing.any():
            feedback.pushInfo(tr("The mask marks no cloud and the target has no nodata: the input is copied."))
            self.write_output(output, target.data, target.grid, target, feedback)
            return {self.OUTPUT: output}
        if missing.all():
            raise QgsProcessingException(
                tr("The cloud mask covers the whole target raster: there is no clear pixel to learn from.")
            )
        if feedback.isCanceled():
            raise QgsProcessingException(tr("The run was cancelled; no output was written."))

        guides = []
        for path in guide_paths:
            guide = self.guarded("Guide raster", rasters.read_on_grid, path, target.grid, "bilinear", "guide")
            guides.append(guide.data)
        feedback.pushInfo(tr(f"Guides: {len(guides)} raster(s), {sum(g.shape[0] for g in guides)} band(s)."))
        feedback.setProgress(5)

        api = self.load_engine()  # lazy: imports torch

        options = self.engine_options(parameters, context)
        sar = self.parameterAsBoolean(parameters, self.SAR_GUIDES, context)
        method = self.METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        stopping = STOPPING[self.parameterAsEnum(parameters, self.STOPPING, context)]
        feedback.pushInfo(tr(f"Method: {method}, stopping: {stopping}, steps: {options['steps']}."))
        result = self.run_engine(
            api.inpaint,
            feedback,
            target.data,
            mask,
            guides,
            method=method,
            stopping=stopping,
            sar_guides=tuple(range(len(guides))) if sar else (),
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            **options,
            **self.callbacks(feedback),
        )
        report_result(result, feedback)
        self.write_output(output, result.image, target.grid, target, feedback)
        return {self.OUTPUT: output}
