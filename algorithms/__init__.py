# SPDX-License-Identifier: GPL-2.0-or-later
"""Processing algorithms of the MCPN provider."""
