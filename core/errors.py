"""Exceptions raised by the MCPN engine.

Every problem the engine can diagnose is raised as an :class:`MCPNError`
subclass whose message is meant for the end user, so the QGIS layer can show it
as-is.
"""


class MCPNError(Exception):
    """Base class of all errors raised on purpose by the engine."""


class InputError(MCPNError, ValueError):
    """The input arrays, rasters or parameters cannot be processed."""


class DeviceError(MCPNError, RuntimeError):
    """The requested compute device is not available."""


class Cancelled(MCPNError):
    """The run was cancelled by the caller."""
