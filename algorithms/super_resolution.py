# SPDX-License-Identifier: GPL-2.0-or-later
"""Processing algorithm "Guided super-resolution" (mcpn:guidedsuperresolution)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterLayer,
)

from .base import MCPNAlgorithm, report_result, tr

STOPPING_RULES = ["fixed", "known_rmse"]
STOPPING_LABELS = ["Fixed number of steps", "Low-resolution RMSE"]

HELP = """<p>Brings a low-resolution raster (for example a 20 m or 60 m Sentinel-2 band) to the
resolution of one or more high-resolution <b>guide</b> rasters of the same place (for example the
10 m bands). A small convolutional network is fitted to this scene only (deep image prior, MCPN):
it learns to reproduce the guides and an image which, resampled to the low resolution (antialiased
bilinear, any scale factor), reproduces the input; so the result keeps the input's radiometry and
gains the guides' detail.</p>
<h3>Parameters</h3>
<ul>
<li><b>Low-resolution raster</b>: the band(s) to sharpen; it is read over the first guide's extent at
its own pixel size (nothing is resampled when the grids are aligned, as for bands of one Sentinel-2
tile).</li>
<li><b>Guide rasters</b>: high-resolution images; the output takes the <b>first</b> guide's grid (CRS,
extent and pixel size), the other guides are resampled (bilinear) to it.</li>
<li><b>Method</b>: <i>Direct</i> (the core network produces the sharpened image itself and small heads
rebuild each guide from it; the default, and the best for super-resolution in the paper),
<i>Emergent</i> (a learned core signal with one head per image) or <i>Stacked</i> (one network outputs
all images stacked as channels).</li>
<li><b>Stopping</b>: <i>Fixed number of steps</i> keeps the output at the last step (averaged over the
last steps, see Output averaging); <i>Low-resolution RMSE</i> keeps
the checked step (every 50 steps) that best reproduces the low-resolution input, and stops early when
it has not improved for 1000 steps.</li>
<li><b>Number of optimisation steps</b>: 4000 is a good default; a few hundred give a quick preview.</li>
<li><b>Compute device</b>: <i>auto</i> uses an NVIDIA GPU (CUDA) or an Apple GPU (MPS) when PyTorch
sees one, else the CPU; choosing a GPU that is not there is an error.</li>
<li><b>Random seed</b>: the same seed and inputs give the same result on the same device.</li>
<li><b>Advanced</b>: learning rate (0 = the method's default), core channels (network width),
arithmetic precision (FP32, or bf16: faster on CPUs with AVX-512 BF16), output averaging (the image
kept is a moving average of the network's outputs over about the last 100 steps; 0 keeps the last
step's output), the tile
size in output pixels (large rasters are processed in overlapping tiles cut at low-resolution pixel
boundaries, every tile fitted, read and written window by window and blended without seams) and
the Dask scheduler (empty: tiles run here; <code>local</code> or <code>local:4</code>: a local Dask
cluster; <code>tcp://host:8786</code>: a running cluster whose workers see the same files).</li>
<li><b>Output</b>: a GeoTIFF on the first guide's grid with the input's data type, nodata and band
names; where the input is nodata (or outside its extent, when it has a nodata value), so is the
output.</li>
<li><b>Run report</b> (optional): an HTML page with the parameters, device and time, convergence
plots and previews.</li>
</ul>
<p>Runs in the background and can be cancelled. Requires torch, numpy, scipy and scikit-image
(and matplotlib for the run report).</p>"""


class GuidedSuperResolution(MCPNAlgorithm):
    def name(self) -> str:
        return "guidedsuperresolution"

    def displayName(self) -> str:
        return tr("Guided super-resolution")

    def shortDescription(self) -> str:
        return tr("Brings a low-resolution band to the resolution of high-resolution guide images.")

    def shortHelpString(self) -> str:
        return tr(HELP)

    def initAlgorithm(self, config: dict | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, tr("Low-resolution raster")))
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.GUIDES,
                tr("High-resolution guide rasters (the output takes the first one's grid)"),
                layerType=QgsProcessing.TypeRaster,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.METHOD, tr("Method"), options=self.METHOD_LABELS, defaultValue=1)
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.STOPPING, tr("Stopping"), options=STOPPING_LABELS, defaultValue=0)
        )
        self.add_run_parameters()
        self.add_tiling_parameters()
        self.add_output()
        self.add_report_output()

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        feedback = feedback or QgsProcessingFeedback()
        self.require_dependencies()

        low_layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        low_path = self.raster_path(low_layer, "low-resolution raster")
        guide_layers = self.parameterAsLayerList(parameters, self.GUIDES, context)
        if not guide_layers:
            raise QgsProcessingException(tr("Select at least one high-resolution guide raster."))
        guide_paths = [self.raster_path(layer, "guide raster") for layer in guide_layers]
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        report = self.report_path(parameters, context)
        self.name_output_layer(context, output, f"{self.displayName()} – {low_layer.name()}")

        scene = self.load_engine()  # lazy: imports torch
        options = self.engine_options(parameters, context)
        method = self.METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        stopping = STOPPING_RULES[self.parameterAsEnum(parameters, self.STOPPING, context)]
        self.log_run(feedback, method, stopping, options)
        result = self.run_engine(
            scene.super_resolve_raster,
            feedback,
            low_path,
            guide_paths,
            output,
            method=method,
            stopping=stopping,
            **self.tiling_options(parameters, context),
            **options,
            **self.callbacks(feedback),
        )
        report_result(result, feedback)
        outputs = {self.OUTPUT: output}
        if report:
            outputs[self.REPORT] = self.write_report(report, parameters, context, result, feedback)
        return outputs
