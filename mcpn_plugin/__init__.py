# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS-facing part of the MCPN plugin: plugin class, Processing provider, dependency check."""
