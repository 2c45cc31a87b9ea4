"""Checks of input rasters and output paths before anything is read or written (engine and algorithms alike)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from osgeo import gdal

__all__ = [
    "damaged",
    "open_raster",
    "output_problem",
    "recognised",
    "rotation_problem",
    "same_file",
    "without_aux_files",
]

GEOTIFF = (".tif", ".tiff")


def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file (links and relative paths resolved; also for files not yet made)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def open_raster(path: str) -> tuple[Any, str]:
    """The GDAL raster dataset at ``path`` and "", or None and GDAL's reason (with or without gdal.UseExceptions)."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    gdal.ErrorReset()
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_VERBOSE_ERROR)
        reason = "" if ds is not None else gdal.GetLastErrorMsg()
    except RuntimeError as exc:
        ds, reason = None, str(exc)
    finally:
        gdal.PopErrorHandler()
    if ds is not None and ds.RasterCount == 0:
        ds, reason = None, "it has no raster band"
    if ds is None:
        reason = reason.replace(f"`{path}' ", "").strip().rstrip(".") or "GDAL cannot open it"
        if recognised(path):
            reason = f"it looks incomplete or damaged: download or export it again; GDAL: {_detail(path, reason)}"
        return None, reason
    return ds, ""


def recognised(path: str) -> bool:
    """Whether a GDAL raster driver recognises the file (by its header): if it still fails, the file is damaged."""
    return os.path.isfile(path) and gdal.IdentifyDriverEx(str(path), gdal.OF_RASTER) is not None


def damaged(path: str, gdal_message: str) -> str:
    """The message for a raster cut off or corrupted (an interrupted download, say), naming the file."""
    detail = _detail(path, gdal_message)
    return f"The raster '{path}' looks incomplete or damaged (GDAL: {detail}); download or export it again."


def _detail(path: str, gdal_message: str) -> str:
    """GDAL's words about the file alone: "<path>: " and "<...>, band 1: ...: <path>, " prefixes dropped."""
    return gdal_message.rsplit(f"{path}, ", 1)[-1].replace(f"{path}: ", "").strip().rstrip(".")


@contextlib.contextmanager
def without_aux_files() -> Iterator[None]:
    """Rasters that GDAL opens and describes inside the block never write '<file>.aux.xml' beside them.

    A QGIS raster layer computes statistics and a histogram for its default style as it loads, and GDAL's
    PAM saves them into '<file>.aux.xml' when the layer closes. GDAL decides whether a dataset uses PAM the
    first time it needs it (for a layer: as it loads), so PAM is switched off for this thread only (QGIS's
    other threads keep it) during the block, and restored after it.
    """
    previous = gdal.GetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO")
    try:
        yield
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", previous)


def rotation_problem(name: str, geotransform: Sequence[float], label: str = "") -> str | None:
    """Why a raster with this geotransform cannot be used (rotated or skewed), or None."""
    if geotransform[2] == 0.0 and geotransform[4] == 0.0:
        return None
    return (
        f"'{name}'{f' ({label})' if label else ''} has a rotated or skewed geotransform (rotation terms "
        f"{geotransform[2]:g} and {geotransform[4]:g}), which is not supported: warp it to a north-up grid first "
        "(Raster > Projections > Warp)."
    )


def output_problem(
    path: str,
    what: str,
    inputs: Sequence[tuple[str, str]],
    earlier: Sequence[str] = (),
    extensions: Sequence[str] = GEOTIFF,
) -> str | None:
    """What is wrong with the output file ``path`` (called ``what`` in the message), or None.

    ``inputs`` are (label, path) of every input file, ``earlier`` the other
    outputs of the run: an output may be neither; it must end in one of
    ``extensions`` and lie in a folder (made if missing) where a file can be written.
    """
    name = os.path.basename(path)
    if os.path.splitext(path)[1].lower() not in extensions:
        if tuple(extensions) == GEOTIFF:
            return (
                f"The {what} '{name}' must be a GeoTIFF file name ending in .tif or .tiff: the algorithm writes "
                "GeoTIFF only (convert the result afterwards with Raster > Conversion > Translate)."
            )
        return f"The {what} '{name}' must be a file name ending in {' or '.join(extensions)}."
    for label, source in inputs:
        if same_file(path, source):
            return (
                f"The {what} '{path}' is an input file ({label}): choose another output file name "
                "(inputs are never overwritten)."
            )
    if any(same_file(path, other) for other in earlier):
        return f"The {what} '{path}' is also given for another output: choose a different file name for each."
    if os.path.isdir(path):
        return f"The {what} '{path}' is a folder: give a file name."
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"Cannot write the {what} '{path}': '{existing}' is a file, not a folder."
    try:  # a real write test: permissions alone say nothing when running as root
        handle, probe = tempfile.mkstemp(prefix=".mcpn-write-test-", dir=existing)
        os.close(handle)
        os.remove(probe)
    except OSError as exc:
        return f"Cannot write the {what} '{path}': the folder '{existing}' is not writable ({exc.strerror})."
    return None
