"""GDAL errors as Python exceptions, only while the engine runs.

``gdal.UseExceptions()`` is one setting for the whole process: QGIS and other
plugins share it and may rely on GDAL's default (errors returned as None). The
engine switches exceptions on while at least one of its calls runs (calls may
nest, and tiles may run in threads) and restores the previous setting after the
last one ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from osgeo import gdal

__all__ = ["gdal_exceptions"]

_lock = threading.Lock()
_active = 0  # engine calls running now
_previous = False  # the setting before the first of them


@contextlib.contextmanager
def gdal_exceptions() -> Iterator[None]:
    """Inside the block (or the decorated function) GDAL errors raise RuntimeError."""
    global _active, _previous
    with _lock:
        if _active == 0:
            _previous = bool(gdal.GetUseExceptions())
            gdal.UseExceptions()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and not _previous:
                gdal.DontUseExceptions()
