"""MCPN for QGIS: guided cloud inpainting and super-resolution of satellite images.

QGIS (and qgis_process, with ``iface=None``) calls :func:`classFactory`.
"""

from __future__ import annotations


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin instance; ``iface`` is None under qgis_process."""
    from .mcpn_plugin.plugin import MCPNPlugin

    return MCPNPlugin(iface)
