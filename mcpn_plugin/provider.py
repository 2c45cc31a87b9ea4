# SPDX-License-Identifier: GPL-2.0-or-later
"""The MCPN Processing provider."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..algorithms import provider_settings
from ..algorithms.base import ICON_PATH
from ..algorithms.inpainting import GuidedCloudInpainting
from ..algorithms.sentinel2_product import Sentinel2Product
from ..algorithms.super_resolution import GuidedSuperResolution


class MCPNProvider(QgsProcessingProvider):
    """Provider ``mcpn``: guided cloud inpainting, guided super-resolution and the Sentinel-2 cloud-free product,
    and their settings in Processing's options (:mod:`algorithms.provider_settings`), added when QGIS loads the
    provider and removed when it unloads."""

    def load(self) -> bool:
        provider_settings.add(self.name(), self.icon())
        return super().load()  # loads the algorithms

    def unload(self) -> None:
        provider_settings.remove()
        super().unload()

    def id(self) -> str:
        return "mcpn"

    def name(self) -> str:
        return "MCPN"

    def longName(self) -> str:
        return "MCPN – guided deep-image-prior restoration of satellite images"

    def icon(self) -> QIcon:
        return QIcon(ICON_PATH)

    def svgIconPath(self) -> str:
        return ICON_PATH

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif", "tiff"]

    def defaultRasterFileExtension(self) -> str:
        return "tif"

    def loadAlgorithms(self) -> None:
        self.addAlgorithm(GuidedCloudInpainting())
        self.addAlgorithm(GuidedSuperResolution())
        self.addAlgorithm(Sentinel2Product())
