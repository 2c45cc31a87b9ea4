# SPDX-License-Identifier: GPL-2.0-or-later
"""MCPN for QGIS: guided cloud inpainting and super-resolution of satellite images.

QGIS (and qgis_process, with ``iface=None``) calls :func:`classFactory`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qgis.gui import QgisInterface

    from .mcpn_plugin.plugin import MCPNPlugin


def classFactory(iface: QgisInterface | None) -> MCPNPlugin:  # noqa: N802 (QGIS API name)
    """Return the plugin instance; ``iface`` is None under qgis_process."""
    from .mcpn_plugin.plugin import MCPNPlugin

    return MCPNPlugin(iface)
