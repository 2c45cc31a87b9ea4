"""Processing algorithms of the MCPN provider."""
