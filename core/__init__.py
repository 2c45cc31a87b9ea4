"""MCPN engine: guided cloud inpainting and super-resolution by internal learning.

Pure Python, PyTorch, NumPy and GDAL; it never imports QGIS. Import the API
from :mod:`core.api` (this package does not import torch by itself, so the
QGIS plugin loads even where torch is missing).
"""
