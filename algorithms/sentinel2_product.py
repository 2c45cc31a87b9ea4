# SPDX-License-Identifier: GPL-2.0-or-later
"""Processing algorithm "Sentinel-2 cloud-free product" (mcpn:sentinel2product)."""

from __future__ import annotations

from typing import Any, Callable

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.choices import Scope
from ..core.config import Settings
from ..core.errors import MCPNError
from ..core.raster.masks import CloudMask, parse_mask_values
from ..core.raster.sentinel2 import BANDS, open_product, product_grid
from . import compat
from .base import MCPNAlgorithm
from .messages import tr
from .parameters import add, add_method, add_output, add_run_parameters, add_stopping, add_tiling_parameters

SCL_CLOUD = "3,8,9,10"  # as core.pipeline.sentinel2.SCL_CLOUD (that module imports torch)

HELP_TEXT = "".join(
    [
        "<p>Makes a cloud-free 10 m product from a cloudy Sentinel-2 product (Level-2A or Level-1C) and one or "
        "more products of the same place on other dates. The clouds of the 10 m and of the 20 m bands are filled "
        "from the other dates (guided cloud inpainting), then the filled 20 m bands are brought to 10 m with the "
        "10 m bands as guides (guided super-resolution): one run, one multi-band GeoTIFF.</p>",
        "<p><b>Inputs.</b> <i>Cloudy product</i>: the .SAFE folder, its MTD_MSIL2A.xml / MTD_MSIL1C.xml file or "
        "the zip as downloaded. <i>Guide products</i>: Sentinel-2 products of the same tile on other dates (their "
        "own clouds are left out). <i>Scene classification classes meaning cloud</i> (Level-2A): 3 cloud shadow, "
        "8 and 9 cloud medium and high probability, 10 thin cirrus by default. A <i>cloud mask raster</i> "
        "replaces them (needed for Level-1C, which has no scene classification). <i>Area of interest</i>: start "
        "with a small extent or polygons (the output is clipped to them); empty processes the whole product.</p>",
        "<p><b>Outputs.</b> A UInt16 GeoTIFF on the product's 10 m grid: reflectance x 10000 with the offset of "
        "processing baseline 04.00 and later removed, nodata 0, one named band per chosen band (wavelength in its "
        "metadata). Optionally a mask of the filled pixels (1 filled; 2 cloudy in every guide too, left "
        "nodata).</p>",
        "<p><b>Time.</b> Three fits (10 m fill, 20 m fill, 20 m to 10 m): the bundled 120 x 120 px sample took "
        "22 s at 300 steps on a two-core CPU; a whole tile needs a GPU, or start with a small area of interest. "
        "It needs torch, numpy, scipy and scikit-image.</p>",
    ]
)


class Sentinel2Product(MCPNAlgorithm):
    NAME = "sentinel2product"
    DISPLAY_NAME = "Sentinel-2 cloud-free product"
    SHORT_DESCRIPTION = "Fills the clouds of a Sentinel-2 product from other dates and writes all bands at 10 m."
    HELP = HELP_TEXT
    SUPER_RESOLUTION = True  # the stopping rules both fills and the super-resolution have
    CLOUD_CLASSES = "CLOUD_CLASSES"
    MASK = "MASK"
    MASK_VALUES = "MASK_VALUES"
    RADAR_GUIDES = "RADAR_GUIDES"
    EXTENT = "EXTENT"
    AREA_POLYGONS = "AREA_POLYGONS"
    BANDS = "BANDS"
    FILLED = "FILLED"
    OUTPUTS = {MCPNAlgorithm.OUTPUT: "output", FILLED: "filled"}

    def initAlgorithm(self, config: dict | None = None) -> None:
        add(
            self,
            QgsProcessingParameterFile(
                self.INPUT,
                tr("Cloudy Sentinel-2 product (.SAFE folder, MTD_MSI*.xml or zip)"),
                compat.FILE_BEHAVIOR_FILE,
                fileFilter=tr("Sentinel-2 products (MTD_MSIL2A.xml MTD_MSIL1C.xml *.zip);;All files (*)"),
            ),
            tr("The product to make cloud-free: a .SAFE folder, its MTD_MSIL2A.xml or MTD_MSIL1C.xml, or its zip."),
        )
        add(
            self,
            QgsProcessingParameterMultipleLayers(
                self.GUIDES, tr("Guide products (other dates)"), layerType=compat.SOURCE_FILE
            ),
            tr(
                "Sentinel-2 products of the same place on other dates (.SAFE folders, MTD_MSI*.xml files or zips). "
                "Their own clouds (scene classification, Level-2A) are left out of the fill."
            ),
        )
        add(
            self,
            QgsProcessingParameterMultipleLayers(
                self.RADAR_GUIDES,
                tr("Radar guide rasters in linear backscatter"),
                layerType=compat.SOURCE_RASTER,
                optional=True,
            ),
            tr("Sentinel-1 sigma0 or similar, converted to decibels, used as further guides of both fills."),
        )
        add(
            self,
            QgsProcessingParameterString(
                self.CLOUD_CLASSES, tr("Scene classification classes meaning cloud"), defaultValue=SCL_CLOUD
            ),
            tr(
                "Classes of the Level-2A scene classification layer (SCL) to fill: 3 cloud shadow, 8 cloud medium "
                "probability, 9 cloud high probability, 10 thin cirrus."
            ),  # fmt: skip
        )
        add(
            self,
            QgsProcessingParameterRasterLayer(
                self.MASK, tr("Cloud mask raster (instead of the classes)"), optional=True
            ),
            tr("A raster marking the clouds, on any grid; replaces the scene classification. Needed for Level-1C."),
        )
        add(
            self,
            QgsProcessingParameterString(self.MASK_VALUES, tr("Mask values meaning cloud"), defaultValue="1"),
            tr("Values of the cloud mask raster that mean cloud: 1, 3,8,9,10, 8-10 or >=40."),
        )
        add(
            self,
            QgsProcessingParameterExtent(self.EXTENT, tr("Area of interest (empty: the whole product)"), optional=True),
            tr("Process only this extent (any CRS), snapped outwards to the product's 20 m pixels."),
        )
        add(
            self,
            QgsProcessingParameterFeatureSource(
                self.AREA_POLYGONS,
                tr("Area of interest polygons (the output is clipped to them)"),
                [compat.SOURCE_VECTOR_POLYGON],
                optional=True,
            ),
            tr("Polygons in any CRS: the output is nodata outside them; without an extent, their extent is processed."),
        )
        add(
            self,
            QgsProcessingParameterEnum(
                self.BANDS,
                tr("Output bands"),
                options=list(BANDS),
                allowMultiple=True,
                defaultValue=list(range(len(BANDS))),
            ),
            tr("The bands of the output, in this order; 20 m bands are brought to 10 m."),
        )
        add_method(self, tr("Stacked (default), Direct or Emergent, as in Guided cloud inpainting."))
        add_stopping(self, tr("Held-out pixels (default), a fixed number of steps, or the RMSE of the known pixels."))
        add_run_parameters(self)
        add_tiling_parameters(self)
        # an area larger than a tile is fitted by one network for the scene by default
        self.parameterDefinition(self.SCOPE).setDefaultValue(list(Scope).index(Scope.SCENE))
        add_output(self, tr("A UInt16 GeoTIFF of reflectance x 10000 on the 10 m grid, nodata 0, named bands."))
        add(
            self,
            QgsProcessingParameterRasterDestination(
                self.FILLED, tr("Filled pixels"), optional=True, createByDefault=False
            ),
            tr("A Byte raster: 1 where a pixel was filled, 2 where every guide is cloudy too (left nodata)."),
        )

    def input_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """As the base class for the rasters (the products are checked when the run opens them), and: guides are
        given, the cloud classes or mask values can be read."""
        if not parameters.get(self.GUIDES):
            return tr("Select at least one guide product (a Sentinel-2 product of another date).")
        try:
            parse_mask_values(self.parameterAsString(parameters, self.CLOUD_CLASSES, context))
            if parameters.get(self.MASK):
                parse_mask_values(self.parameterAsString(parameters, self.MASK_VALUES, context))
        except MCPNError as exc:
            return str(exc)
        return super().input_problem(parameters, context)

    @staticmethod
    def engine() -> Callable[..., Any]:
        from ..core.pipeline.sentinel2 import sentinel2_product

        return sentinel2_product

    def settings(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback | None = None
    ) -> tuple[Settings, dict[str, Any]]:
        target = self.parameterAsFile(parameters, self.INPUT, context)
        mask_layer = self.parameterAsRasterLayer(parameters, self.MASK, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        filled = self.parameterAsOutputLayer(parameters, self.FILLED, context) or None
        self.name_output_layer(context, output, self.displayName())
        if filled:
            self.name_output_layer(context, filled, tr("Filled pixels"))
        band_names = list(BANDS)
        inputs = {
            "target": target,
            "guides": [str(path) for path in self.parameterAsFileList(parameters, self.GUIDES, context)],
            "radar_guides": self.raster_paths(parameters, self.RADAR_GUIDES, context, "radar guide raster"),
            "cloud_classes": self.parameterAsString(parameters, self.CLOUD_CLASSES, context),
            "mask": CloudMask(
                self.raster_path(mask_layer, "cloud mask"),
                self.parameterAsString(parameters, self.MASK_VALUES, context),
            )
            if mask_layer is not None
            else None,  # fmt: skip
            "area": self.area(parameters, target, context),
            "area_polygons": self.parameterAsCompatibleSourceLayerPath(
                parameters, self.AREA_POLYGONS, context, ["gpkg", "shp"], "gpkg", feedback or QgsProcessingFeedback()
            )
            if parameters.get(self.AREA_POLYGONS)
            else None,  # fmt: skip
            "bands": [band_names[i] for i in self.parameterAsEnums(parameters, self.BANDS, context)],
            "output": output,
            "filled": filled,
        }
        return self.common_settings(parameters, context), inputs

    def area(
        self, parameters: dict[str, Any], target: str, context: QgsProcessingContext
    ) -> tuple[float, float, float, float] | None:
        """The area of interest in the product's CRS, or None for the whole product."""
        if not parameters.get(self.EXTENT):
            return None
        try:
            crs = QgsCoordinateReferenceSystem.fromWkt(product_grid(open_product(target), None).crs_wkt)
        except MCPNError as exc:
            raise QgsProcessingException(str(exc)) from None
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
        return extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()
