"""QGIS-facing part of the MCPN plugin: plugin class, Processing provider, dependency check."""
