# SPDX-License-Identifier: GPL-2.0-or-later
"""Processing algorithm "Guided cloud inpainting" (mcpn:guidedcloudinpainting)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import MCPNAlgorithm, report_result, tr

STOPPING_RULES = ["fixed", "known_rmse", "patch_consistency"]
STOPPING_LABELS = ["Fixed number of steps", "Known-region RMSE", "Patch consistency"]

HELP = """<p>Fills the cloudy (or missing) pixels of a satellite image with a small convolutional
network that is fitted to <i>this</i> image only (deep image prior, MCPN). The network sees the
clear part of the target image and one or more <b>guide</b> images of the same place (for example
a clear image of another date, or a radar image) and learns to reproduce the target from them;
its output then fills the masked pixels. Clear pixels are copied unchanged from the input.</p>
<h3>Parameters</h3>
<ul>
<li><b>Target raster</b>: the image to repair (any number of bands). Its nodata pixels are filled too.</li>
<li><b>Cloud mask raster</b>: a raster whose values mark clouds (any grid or CRS; resampled with
nearest neighbour to the target's grid).</li>
<li><b>Cloud polygons</b>: a polygon layer whose features are clouds (any CRS), instead of or in addition
to the mask raster.</li>
<li><b>Mask values meaning cloud</b>: comma-separated values (<code>1</code> for a 0/1 mask,
<code>3,8,9,10</code> for the Sentinel-2 scene classification layer), ranges (<code>8-10</code>) or a
threshold for probability masks (<code>&gt;=40</code>).</li>
<li><b>Guide rasters</b>: images of the same area used as they are (an optical image of another
date, a radar image already in dB, ...); they are resampled (bilinear) to the target's grid. Pixels
outside a guide's coverage are treated as invalid.</li>
<li><b>Radar guide rasters</b>: radar backscatter in linear units (for example Sentinel-1 GRD
sigma0); they are converted to decibels, then used like the other guides. Give at least one guide
in either list.</li>
<li><b>Method</b>: <i>Emergent</i> (a shared core network produces a learned signal from which one
small head per image rebuilds the target and each guide; the default, and the best with radar
guides in the paper), <i>Direct</i> (the core network produces the target itself and small heads
rebuild each guide from it) or <i>Stacked</i> (one network outputs target and guides stacked as
channels; the baseline of earlier work).</li>
<li><b>Stopping</b>: <i>Fixed number of steps</i> keeps the output at the last step (averaged over the
last steps, see Output averaging); <i>Known-region
RMSE</i> keeps the checked step (every 50 steps) whose output best matches the clear pixels, and stops
early when it has not improved for 1000 steps; <i>Patch consistency</i> keeps the step whose filled
region has the texture statistics (Fr&eacute;chet distance of low-level image features) closest to
the clear region's. Its features are the first layers of Inception-v3: the first run downloads its
weights (about 100 MB) into PyTorch's cache; without internet access a fixed filter bank is used
instead, and the log says so.</li>
<li><b>Number of optimisation steps</b>: 4000 is a good default; a few hundred give a quick preview.
On a 2-core CPU one step of a 256&times;256 px tile takes about 0.5 s (Emergent), 0.57 s (Direct) or
0.12 s (Stacked), so 4000 steps take 8 to 40 minutes per cloudy tile; use a GPU for whole scenes (GPU speed is not
measured yet; see the README).</li>
<li><b>Compute device</b>: <i>auto</i> uses an NVIDIA GPU (CUDA) or an Apple GPU (MPS) when PyTorch
sees one, else the CPU; choosing a GPU that is not there is an error.</li>
<li><b>Random seed</b>: the same seed and inputs give the same result on the same device.</li>
<li><b>Advanced</b>: learning rate (0 = the method's default), core channels (network width),
arithmetic precision (bf16 took about 1/1.4 of the FP32 time on a CPU with AVX-512 BF16, and its
masked SSIM differed from FP32 by no more than the seed-to-seed spread in our benchmark; on CPUs
without bf16 instructions it may be slower), output averaging (the image kept is a moving average of
the network's outputs over about the last 100 steps, which removes their step-to-step wander; 0 keeps
the last step's output),
mask dilation in pixels (grow the clouds to cover their hazy edges), the tile size (rasters
larger than one tile are processed in overlapping tiles, read and written window by window and
blended without seams; only tiles containing clouds are fitted), the Dask scheduler (empty: tiles
run here one after the other; <code>local</code> or <code>local:4</code>: a local Dask cluster;
<code>tcp://host:8786</code>: a running Dask cluster whose workers see the same files), the number
of ensemble fits for the uncertainty layer, and self-validation: before the real fill, clear pixels
of one cloudy tile are hidden under synthetic clouds shaped like yours, filled with MCPN and with
GDAL Fill nodata, and both are scored (SSIM, RMSE) against the true pixels, an estimate of the
quality on your scene (it costs one more tile fit).</li>
<li><b>Output</b>: a GeoTIFF with the target's grid, data type, nodata and band names.</li>
<li><b>Uncertainty</b> (optional): per filled pixel, the standard deviation of the fills of the
ensemble (each tile fitted K times with seeds seed..seed+K-1, the output being their mean); 0 on clear
pixels.</li>
<li><b>Run report</b> (optional): an HTML page with the parameters, device and time, convergence
plots, self-validation scores and previews.</li>
</ul>
<p>Runs in the background and can be cancelled. Requires torch, numpy, scipy and scikit-image
(and matplotlib for the run report).</p>"""


class GuidedCloudInpainting(MCPNAlgorithm):
    MASK = "MASK"
    MASK_VALUES = "MASK_VALUES"
    MASK_POLYGONS = "MASK_POLYGONS"
    MASK_DILATION = "MASK_DILATION"
    RADAR_GUIDES = "RADAR_GUIDES"
    ENSEMBLE = "ENSEMBLE"
    SELF_VALIDATION = "SELF_VALIDATION"
    UNCERTAINTY = "UNCERTAINTY"

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
        self.addParameter(QgsProcessingParameterRasterLayer(self.MASK, tr("Cloud mask raster"), optional=True))
        self.addParameter(
            QgsProcessingParameterString(self.MASK_VALUES, tr("Mask values meaning cloud"), defaultValue="1")
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.MASK_POLYGONS, tr("Cloud polygons"), [QgsProcessing.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.GUIDES, tr("Guide rasters"), layerType=QgsProcessing.TypeRaster, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.RADAR_GUIDES,
                tr("Radar guide rasters (linear backscatter, converted to dB)"),
                layerType=QgsProcessing.TypeRaster,
                optional=True,
            )
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
        self.add_tiling_parameters()
        self.add_advanced(
            QgsProcessingParameterNumber(
                self.ENSEMBLE,
                tr("Ensemble fits for the uncertainty layer"),
                QgsProcessingParameterNumber.Integer,
                defaultValue=3,
                minValue=2,
                maxValue=20,
            )
        )
        self.add_advanced(
            QgsProcessingParameterBoolean(
                self.SELF_VALIDATION, tr("Self-validation on synthetic clouds (one more fit)"), defaultValue=False
            )
        )
        self.add_output()
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.UNCERTAINTY, tr("Uncertainty (spread of the ensemble)"), optional=True, createByDefault=False
            )
        )
        self.add_report_output()

    def input_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """As the base class, and: a cloud mask and at least one guide are given."""
        if not parameters.get(self.MASK) and not parameters.get(self.MASK_POLYGONS):
            return tr("Give a cloud mask raster, cloud polygons or both.")
        if not parameters.get(self.GUIDES) and not parameters.get(self.RADAR_GUIDES):
            return tr("Select at least one guide raster (Guide rasters or Radar guide rasters).")
        return super().input_problem(parameters, context)

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        feedback = feedback or QgsProcessingFeedback()
        self.require_dependencies()

        target_layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        target_path = self.raster_path(target_layer, "target raster")
        mask_layer = self.parameterAsRasterLayer(parameters, self.MASK, context)
        mask_path = self.raster_path(mask_layer, "cloud mask") if mask_layer is not None else None
        polygons = None
        if parameters.get(self.MASK_POLYGONS):
            polygons = self.parameterAsCompatibleSourceLayerPath(
                parameters, self.MASK_POLYGONS, context, ["gpkg", "shp"], "gpkg", feedback
            )
        guide_paths = [
            self.raster_path(layer, "guide raster")
            for layer in self.parameterAsLayerList(parameters, self.GUIDES, context)
        ]
        radar_paths = [
            self.raster_path(layer, "radar guide raster")
            for layer in self.parameterAsLayerList(parameters, self.RADAR_GUIDES, context)
        ]
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context) or None
        report = self.report_path(parameters, context)
        self.name_output_layer(context, output, f"{self.displayName()} – {target_layer.name()}")
        if uncertainty:
            self.name_output_layer(context, uncertainty, f"Uncertainty – {target_layer.name()}")

        scene = self.load_engine()  # lazy: imports torch
        mask = scene.CloudMask(
            raster=mask_path,
            values=self.parameterAsString(parameters, self.MASK_VALUES, context),
            polygons=polygons,
            dilation=self.parameterAsInt(parameters, self.MASK_DILATION, context),
        )
        options = self.engine_options(parameters, context)
        method = self.METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        stopping = STOPPING_RULES[self.parameterAsEnum(parameters, self.STOPPING, context)]
        self.log_run(feedback, method, stopping, options)
        result = self.run_engine(
            scene.inpaint_raster,
            feedback,
            target_path,
            mask,
            guide_paths + radar_paths,
            output,
            method=method,
            stopping=stopping,
            sar_guides=tuple(range(len(guide_paths), len(guide_paths) + len(radar_paths))),
            ensemble=self.parameterAsInt(parameters, self.ENSEMBLE, context) if uncertainty else 1,
            uncertainty=uncertainty,
            self_validation=self.parameterAsBoolean(parameters, self.SELF_VALIDATION, context),
            **self.tiling_options(parameters, context),
            **options,
            **self.callbacks(feedback),
        )
        report_result(result, feedback)
        outputs = {self.OUTPUT: output}
        if uncertainty:
            outputs[self.UNCERTAINTY] = uncertainty
        if report:
            outputs[self.REPORT] = self.write_report(report, parameters, context, result, feedback)
        return outputs
