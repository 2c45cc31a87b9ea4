"""Raster input/output for MCPN (GDAL and numpy only, no QGIS import).

Reading turns nodata into NaN and returns float64 arrays shaped (bands, H, W)
together with the grid (CRS, geotransform, size) and the metadata needed to
write a result that looks like the input (data type, nodata, band
descriptions). Writing is atomic: the GeoTIFF is built in a temporary file in
the destination folder and renamed over the destination only once complete.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr

from ..errors import InputError
from .checks import damaged, recognised, rotation_problem
from .gdal_exceptions import gdal_exceptions
from .tiling import Window

__all__ = [
    "Grid",
    "RasterError",
    "read_window",
    "read_decimated",
    "aligned_path",
    "RasterWriter",
    "grid_of",
    "low_res_grid",
    "overlaps",
    "rasterise",
    "to_dtype",
    "writer_profile",
]


class RasterError(InputError):
    """A raster cannot be read, aligned or written; the message is for the end user."""


DECIMATED_ROWS = 64  # rows of a subsampled read (:func:`read_decimated`) read at a time
_INTEGER_TYPES = {
    gdal.GDT_Byte: np.uint8,
    gdal.GDT_UInt16: np.uint16,
    gdal.GDT_Int16: np.int16,
    gdal.GDT_UInt32: np.uint32,
    gdal.GDT_Int32: np.int32,
}
_FLOAT_TYPES = {gdal.GDT_Float32: np.float32, gdal.GDT_Float64: np.float64}


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS (WKT), GDAL geotransform and size in pixels."""

    crs_wkt: str
    geotransform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def pixel_size(self) -> tuple[float, float]:
        return abs(self.geotransform[1]), abs(self.geotransform[5])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of a north-up grid."""
        gt = self.geotransform
        x0, x1 = gt[0], gt[0] + gt[1] * self.width
        y0, y1 = gt[3], gt[3] + gt[5] * self.height
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def same_as(self, other: Grid, tolerance: float = 1e-6) -> bool:
        if (self.width, self.height) != (other.width, other.height):
            return False
        scale = max(self.pixel_size)
        if any(abs(a - b) > tolerance * scale for a, b in zip(self.geotransform, other.geotransform)):
            return False
        return _same_crs(self.crs_wkt, other.crs_wkt)


def _same_crs(wkt_a: str, wkt_b: str) -> bool:
    if not wkt_a or not wkt_b:
        return wkt_a == wkt_b
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def _open(path: str) -> gdal.Dataset:
    try:
        ds = gdal.Open(str(path), gdal.GA_ReadOnly)
    except RuntimeError as exc:
        if recognised(path):  # a raster format GDAL knows, yet its header cannot be read
            raise RasterError(damaged(str(path), str(exc))) from None
        raise RasterError(f"Cannot open raster '{path}': {exc}") from exc
    if ds is None or ds.RasterCount == 0:
        raise RasterError(f"'{path}' is not a raster with at least one band.")
    return ds


@gdal_exceptions()
def grid_of(path_or_ds: str | gdal.Dataset) -> Grid:
    """The grid of a raster file (or open dataset)."""
    ds = _open(path_or_ds) if isinstance(path_or_ds, (str, os.PathLike)) else path_or_ds
    gt = tuple(float(v) for v in ds.GetGeoTransform())
    problem = rotation_problem(os.path.basename(ds.GetDescription() or "the raster"), gt)
    if problem:
        raise RasterError(problem)
    return Grid(ds.GetProjection() or "", gt, ds.RasterXSize, ds.RasterYSize)  # type: ignore[arg-type]


@gdal_exceptions()
def writer_profile(path: str) -> tuple[int, dict]:
    """Band count and the :class:`RasterWriter` arguments that make an output look like ``path``.

    The output takes the first band's data type, every band's nodata value and
    description. A type the writer cannot produce is refused before any work.
    """
    ds = _open(path)
    first = ds.GetRasterBand(1)
    if first.DataType not in _INTEGER_TYPES and first.DataType not in _FLOAT_TYPES:
        raise RasterError(
            f"'{os.path.basename(str(path))}' has the data type {gdal.GetDataTypeName(first.DataType)}, which is not "
            "supported: convert it to Int32 or Float32 first (Raster > Conversion > Translate)."
        )
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    return ds.RasterCount, {
        "gdal_type": first.DataType,
        "nodata": [b.GetNoDataValue() for b in bands],
        "descriptions": [b.GetDescription() or "" for b in bands],
    }


def overlaps(a: Grid, b: Grid) -> bool:
    """Whether the footprint of raster b, in a's CRS, intersects a's extent."""
    if _same_crs(a.crs_wkt, b.crs_wkt) or not a.crs_wkt or not b.crs_wkt:
        bx = b.bounds
    else:
        try:
            bx = _bounds_in(b, a.crs_wkt)
        except RuntimeError:
            return True  # let the warp decide
    ax = a.bounds
    return bx[0] < ax[2] and bx[2] > ax[0] and bx[1] < ax[3] and bx[3] > ax[1]


def _warp(path: str, grid: Grid, resampling: str, what: str, destination: str, fmt: str) -> gdal.Dataset:
    """Warp a raster onto ``grid`` (NaN outside its coverage) into ``destination`` (MEM or VRT)."""
    if not overlaps(grid, grid_of(path)):
        raise RasterError(f"The {what} '{os.path.basename(str(path))}' does not overlap the input raster.")
    src = _open(path)
    options = gdal.WarpOptions(
        format=fmt,
        outputBounds=grid.bounds,
        width=grid.width,
        height=grid.height,
        dstSRS=grid.crs_wkt or None,
        resampleAlg=resampling,
        workingType=gdal.GDT_Float64,
        outputType=gdal.GDT_Float64,
        srcNodata=src.GetRasterBand(1).GetNoDataValue(),
        dstNodata=float("nan"),
        multithread=False,
    )
    try:
        return gdal.Warp(destination, src, options=options)
    except RuntimeError as exc:
        raise RasterError(f"Cannot align the {what} '{path}' with the input raster: {exc}") from exc


@gdal_exceptions()
def aligned_path(path: str, grid: Grid, folder: str, resampling: str = "bilinear", what: str = "raster") -> str:
    """A raster readable on ``grid``: ``path`` itself when aligned, else a warped VRT written in ``folder``.

    The VRT warps lazily, window by window, so nothing is loaded here.
    """
    if grid_of(path).same_as(grid):
        return str(path)
    vrt = os.path.join(folder, f"{uuid.uuid4().hex[:8]}_{os.path.splitext(os.path.basename(str(path)))[0]}.vrt")
    _warp(path, grid, resampling, what, vrt, "VRT").FlushCache()
    return vrt


@gdal_exceptions()
def read_window(path: str, window: Window) -> np.ndarray:
    """Read one window of every band as float64 (bands, h, w) with NaN for nodata."""
    ds = _open(path)
    box = {"xoff": window.col, "yoff": window.row, "win_xsize": window.width, "win_ysize": window.height}
    return _read_bands(ds, path, window.width, window.height, **box)


@gdal_exceptions()
def read_decimated(path: str, max_side: int = 1024) -> np.ndarray:
    """Read every band subsampled (nearest) to at most ``max_side`` px a side: float64 with NaN for nodata.

    Read in strips of :data:`DECIMATED_ROWS` rows, the file opened for each: GDAL frees a file's cached blocks
    when it is closed, so its block cache holds one strip's blocks at a time, not the whole raster's.
    """
    ds = _open(path)
    size_x, size_y = ds.RasterXSize, ds.RasterYSize
    ds = None  # closed: each strip opens the file again
    factor = max(1.0, max(size_x, size_y) / max_side)
    width, height = max(1, round(size_x / factor)), max(1, round(size_y / factor))
    strips = []
    for top in range(0, height, DECIMATED_ROWS):
        bottom = min(height, top + DECIMATED_ROWS)
        first, last = round(top * size_y / height), round(bottom * size_y / height)
        box = {"xoff": 0, "yoff": first, "win_xsize": size_x, "win_ysize": last - first}
        strips.append(_read_bands(_open(path), path, width, bottom - top, **box))
    return np.concatenate(strips, axis=1)


def _read_bands(ds: gdal.Dataset, path: str, width: int, height: int, **box: int) -> np.ndarray:
    """Every band of ``ds`` (within ``box``, by default all of it) read as (bands, height, width), NaN for nodata.

    Every read of an input's pixels passes here: a file cut off or corrupted past its header fails here,
    as a :class:`RasterError` naming it.
    """
    data = np.empty((ds.RasterCount, height, width))
    try:
        for i in range(ds.RasterCount):
            band = ds.GetRasterBand(i + 1)
            data[i] = band.ReadAsArray(**box, buf_xsize=width, buf_ysize=height, buf_type=gdal.GDT_Float64)
            _nodata_to_nan(data[i], band.GetNoDataValue())
    except RuntimeError as exc:
        raise RasterError(_damage(ds, str(path), str(exc))) from None
    return data


def _damage(ds: gdal.Dataset, path: str, message: str) -> str:
    """The message for a failed read, naming the damaged file: for a VRT (a guide or mask warped onto the
    grid) the source that GDAL names."""
    if ds.GetDriver().ShortName == "VRT":
        path = next((f for f in ds.GetFileList()[1:] if f in message), path)
    return damaged(path, message)


def _nodata_to_nan(values: np.ndarray, nodata: float | None) -> None:
    if nodata is not None and not math.isnan(nodata):
        values[values == nodata] = np.nan


def _polygons(vector_path: str, what: str) -> gdal.Dataset:
    """The vector file ``vector_path`` (``what`` it is, for messages), opened: a clear error when it cannot be."""
    try:
        source = gdal.OpenEx(str(vector_path), gdal.OF_VECTOR)
    except RuntimeError as exc:
        raise RasterError(f"Cannot open the {what} '{vector_path}': {exc}") from exc
    if source is None or source.GetLayerCount() == 0:
        raise RasterError(f"'{vector_path}' is not a vector file with a layer of polygons.")
    return source


@gdal_exceptions()
def polygons_extent(vector_path: str, crs_wkt: str, what: str = "area of interest polygons") -> tuple[float, ...]:
    """The extent (xmin, ymin, xmax, ymax) of the polygons of a vector file, in the CRS ``crs_wkt``."""
    source = _polygons(vector_path, what)  # held: its layer lives only as long as the dataset
    layer = source.GetLayer(0)
    xmin, xmax, ymin, ymax = layer.GetExtent()
    layer_srs = layer.GetSpatialRef().Clone() if layer.GetSpatialRef() else None
    if not crs_wkt or layer_srs is None or _same_crs(layer_srs.ExportToWkt(), crs_wkt):
        return xmin, ymin, xmax, ymax
    target = osr.SpatialReference()
    target.ImportFromWkt(crs_wkt)
    for srs in (layer_srs, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return tuple(osr.CoordinateTransformation(layer_srs, target).TransformBounds(xmin, ymin, xmax, ymax, 21))


@gdal_exceptions()
def rasterise(vector_path: str, grid: Grid, path: str, what: str = "cloud polygons") -> str:
    """Burn the polygons of a vector file (``what`` they are, for messages) as 1 on a 0 Byte GeoTIFF on ``grid``.

    Polygons in another CRS are first reprojected into a GeoPackage next to ``path``.
    """
    source = _polygons(vector_path, what)
    layer_srs = source.GetLayer(0).GetSpatialRef()
    if grid.crs_wkt and layer_srs is not None and not _same_crs(layer_srs.ExportToWkt(), grid.crs_wkt):
        reprojected = os.path.splitext(str(path))[0] + "_reprojected.gpkg"
        source = gdal.VectorTranslate(reprojected, source, format="GPKG", dstSRS=grid.crs_wkt, reproject=True)
    options = gdal.RasterizeOptions(
        format="GTiff",
        outputType=gdal.GDT_Byte,
        outputBounds=grid.bounds,
        width=grid.width,
        height=grid.height,
        outputSRS=grid.crs_wkt or None,
        burnValues=[1],
        initValues=[0],
        creationOptions=["TILED=YES", "COMPRESS=DEFLATE"],
    )
    try:
        gdal.Rasterize(str(path), source, options=options).FlushCache()
    except RuntimeError as exc:
        raise RasterError(f"Cannot rasterise the {what} '{vector_path}': {exc}") from exc
    return str(path)


@gdal_exceptions()
def low_res_grid(path: str, extent_grid: Grid) -> Grid:
    """The grid covering ``extent_grid``'s extent, in its CRS, at the (coarser) pixel size of raster ``path``."""
    own = grid_of(path)
    if not overlaps(extent_grid, own):
        raise RasterError(f"The raster '{os.path.basename(str(path))}' does not overlap the guide rasters.")
    px, py = own.pixel_size
    if bool(own.crs_wkt) != bool(extent_grid.crs_wkt):
        raise RasterError(f"'{os.path.basename(str(path))}' and the guides must both have a CRS, or both none.")
    if not _same_crs(own.crs_wkt, extent_grid.crs_wkt):
        # the raster's pixel size expressed in the extent's CRS (from its reprojected footprint)
        b = _bounds_in(own, extent_grid.crs_wkt)
        px, py = (b[2] - b[0]) / own.width, (b[3] - b[1]) / own.height
    xmin, ymin, xmax, ymax = extent_grid.bounds
    width = max(1, int(round((xmax - xmin) / px)))
    height = max(1, int(round((ymax - ymin) / py)))
    geotransform = (xmin, (xmax - xmin) / width, 0.0, ymax, 0.0, -(ymax - ymin) / height)
    return Grid(extent_grid.crs_wkt, geotransform, width, height)


def _bounds_in(grid: Grid, crs_wkt: str) -> tuple[float, float, float, float]:
    """A grid's bounds transformed to another CRS (densified edges)."""
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromWkt(grid.crs_wkt)
    dst.ImportFromWkt(crs_wkt)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return tuple(osr.CoordinateTransformation(src, dst).TransformBounds(*grid.bounds, 21))  # type: ignore[return-value]


def to_dtype(data: np.ndarray, gdal_type: int, nodata: float | None) -> np.ndarray:
    """Convert float data to a GDAL type's numpy dtype.

    Integers are rounded and clipped to the type's range; NaN becomes the nodata
    value (or 0 without one). When a valid value would round to nodata it is
    nudged by one so it stays valid.
    """
    if gdal_type in _FLOAT_TYPES:
        out = data.astype(_FLOAT_TYPES[gdal_type])
        if nodata is not None and not math.isnan(nodata):
            out[np.isnan(out)] = nodata
        return out
    np_type = _INTEGER_TYPES.get(gdal_type)
    if np_type is None:
        raise RasterError(f"Unsupported raster data type {gdal.GetDataTypeName(gdal_type)}.")
    info = np.iinfo(np_type)
    values = np.rint(data)
    values = np.clip(values, info.min, info.max)
    missing = np.isnan(values)
    if nodata is not None and not math.isnan(nodata):
        nd = float(nodata)
        collides = (~missing) & (values == nd)
        if np.any(collides):
            bump = 1.0 if nd < info.max else -1.0
            values[collides] = nd + bump
        values[missing] = nd
    else:
        values[missing] = 0
    return values.astype(np_type)


class RasterWriter:
    """An output GeoTIFF written window by window, atomically.

    Use as a context manager: the file is built under a temporary name in the
    destination folder and renamed to ``path`` by :meth:`commit`; leaving the
    block without committing (an error, a cancel) removes it and leaves
    ``path`` untouched.
    """

    @gdal_exceptions()
    def __init__(
        self,
        path: str,
        grid: Grid,
        bands: int,
        gdal_type: int = gdal.GDT_Float32,
        nodata: Sequence[float | None] | float | None = None,
        descriptions: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(nodata, (list, tuple)):
            nodata = [nodata] * bands
        self.nodata = list(nodata) + [nodata[-1] if nodata else None] * max(0, bands - len(nodata))
        self.gdal_type = gdal_type
        self.path = os.path.abspath(str(path))
        folder = os.path.dirname(self.path) or "."
        self.tmp = os.path.join(folder, f".{os.path.basename(self.path)}.{uuid.uuid4().hex[:8]}.part.tif")
        creation = ["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"]
        if gdal_type in _FLOAT_TYPES:
            creation.append("PREDICTOR=3")
        elif gdal_type in (gdal.GDT_UInt16, gdal.GDT_Int16, gdal.GDT_UInt32, gdal.GDT_Int32):
            creation.append("PREDICTOR=2")
        try:
            os.makedirs(folder, exist_ok=True)
            self.ds = gdal.GetDriverByName("GTiff").Create(
                self.tmp, grid.width, grid.height, bands, gdal_type, options=creation
            )
        except (OSError, RuntimeError) as exc:
            raise RasterError(f"Cannot write the output raster '{self.path}': {exc}") from None
        self.ds.SetGeoTransform(list(grid.geotransform))
        if grid.crs_wkt:
            self.ds.SetProjection(grid.crs_wkt)
        for i, description in enumerate(list(descriptions or [])[:bands]):
            if description:
                self.ds.GetRasterBand(i + 1).SetDescription(description)
        for i, nd in enumerate(self.nodata):
            if nd is not None:
                self.ds.GetRasterBand(i + 1).SetNoDataValue(float(nd))

    @gdal_exceptions()
    def write(self, window: Window, data: np.ndarray) -> None:
        """Write (bands, h, w) float data (NaN = nodata) into ``window``, converted to the output type."""
        for i in range(self.ds.RasterCount):
            values = to_dtype(data[i], self.gdal_type, self.nodata[i])
            self.ds.GetRasterBand(i + 1).WriteArray(values, window.col, window.row)
        if window.col + window.width == self.ds.RasterXSize:  # a strip done: its blocks to disk, out of GDAL's
            self.ds.FlushCache()  # block cache, so that memory stays flat however large the raster

    @gdal_exceptions()
    def commit(self) -> str:
        """Finish the file and move it into place."""
        self.ds.FlushCache()
        self.ds = None
        os.replace(self.tmp, self.path)
        return self.path

    def __enter__(self) -> RasterWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.ds is not None or os.path.exists(self.tmp):
            self.ds = None
            _remove_quietly(self.tmp)
            _remove_quietly(self.tmp + ".aux.xml")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
