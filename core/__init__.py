"""MCPN engine: guided cloud inpainting and super-resolution by internal learning.

Pure Python, PyTorch, NumPy and GDAL; it never imports QGIS. ``config`` holds the
one :class:`Settings` of a run, ``classic`` the instant estimates (baselines and
anchors); ``model``, ``raster``, ``pipeline`` and ``trust`` say what lives in
them. Import the arrays API from :mod:`core.pipeline.api` and the raster
pipelines from :mod:`core.pipeline.inpainting` and :mod:`core.pipeline.super_resolution`
(this package does not import torch by itself, so the plugin loads where torch is missing).
"""
