# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin object QGIS loads: registers the Processing provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qgis.core import QgsApplication

from .provider import MCPNProvider

if TYPE_CHECKING:
    from qgis.gui import QgisInterface


class MCPNPlugin:
    """Registers the MCPN Processing provider; works without a GUI (``iface`` None)."""

    def __init__(self, iface: QgisInterface | None = None) -> None:
        self.iface = iface
        self.provider: MCPNProvider | None = None

    def initProcessing(self) -> None:
        if self.provider is None:
            self.provider = MCPNProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        # The algorithms live in the Processing toolbox; no menus or toolbar buttons.
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
