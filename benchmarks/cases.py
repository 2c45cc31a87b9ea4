"""Benchmark cases built from the real Sentinel-1/2 rasters in ``../shared/data``.

Inpainting cases carry a cloud mask and an exact ground truth (the scenes are
clear; the mask comes from a real cloudy date). Super-resolution cases degrade
a real 10 m image the way a sensor or GDAL does (``gdal.Warp -r average``). The gap cases sweep the cloud
cover (the real mask shrunk or grown), cut a cloud by the image border, and fill one large gap in a small
single-band NDVI image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from osgeo import gdal
from scipy import ndimage
from skimage.transform import resize

S2_RGBN = ("B04", "B03", "B02", "B08")
TARGET_DATE, GUIDE_DATE = "2018-08-05", "2018-07-21"
SAR_NODATA = 1e9
HEAVY_COVER = (0.4, 0.6)

GAP_COVERS = (0.1, 0.3, 0.5, 0.8)  # the gap sweep's shares of the image under cloud
NDVI_SIZE, NDVI_COVER = 100, 0.45  # the NDVI case: a small image, one large gap over most of its lower half

INPAINT_CASES = ("s2_guide", "s2_heavy", "sar_guide", "swir_guide")
GAP_CASES = (*(f"gap{round(100 * c)}" for c in GAP_COVERS), "border", "ndvi_small")
SR_FACTORS = (2, 4, 3.3)  # 3.3: a factor that does not divide the grid
SR_CASES = tuple(
    f"{group}_x{factor:g}{blur}" for blur in ("", "_psf") for group in ("sr_nir", "sr_rgb") for factor in SR_FACTORS
)  # _psf: the low-resolution input made with a sensor-like blur before the area average
MTF_AT_NYQUIST = 0.3  # the sensor-like blur: a Gaussian whose response at the input's Nyquist frequency is 0.3
ALL_CASES = INPAINT_CASES + GAP_CASES + SR_CASES


@dataclass
class Case:
    """One benchmark sample: ``target`` is the engine's input (NaN under ``mask``, or the low-resolution image)."""

    name: str
    kind: str  # "inpaint" or "sr"
    description: str
    target: np.ndarray
    truth: np.ndarray
    guides: list[np.ndarray]
    mask: np.ndarray | None = None
    radar_guides: tuple[int, ...] = ()
    band_names: list[str] = field(default_factory=list)
    sensor_blur: float = 0.0  # super-resolution: the Gaussian blur the input was made with (σ in its pixels)

    @property
    def region(self) -> np.ndarray:
        """The scored pixels: the cloud, or the whole image for super-resolution."""
        return self.mask if self.mask is not None else np.ones(self.truth.shape[1:], bool)


def _read(path: Path, size: int, scale: float = 1.0) -> np.ndarray:
    """The centre crop of ``size`` output pixels of every band; ``scale`` 2 reads a 20 m band, bilinearly upsampled."""
    ds = gdal.Open(str(path))
    side = round(size / scale)
    x, y = (ds.RasterXSize - side) // 2, (ds.RasterYSize - side) // 2
    data = np.asarray(ds.ReadAsArray(x, y, side, side), dtype=np.float64)
    data = data[None] if data.ndim == 2 else data
    if scale != 1.0:
        data = np.stack([resize(b, (size, size), order=1, mode="edge", anti_aliasing=False) for b in data])
    return data


def _s2(data: Path, date: str, bands: tuple[str, ...], size: int, scale: float = 1.0) -> np.ndarray:
    return np.concatenate([_read(data / "s2_time_pair" / date / f"{b}.tif", size, scale) for b in bands])


def cloud_mask(data: Path, size: int) -> np.ndarray:
    """The real 256 x 256 cloud mask (1 = cloud), nearest-neighbour resized to ``size``."""
    mask = _read(data / "s1_sar_guide" / "cloud_mask.tif", 256)[0] > 0
    if mask.shape != (size, size):
        mask = resize(mask.astype(float), (size, size), order=0, anti_aliasing=False) > 0.5
    return mask


def heavy_mask(mask: np.ndarray) -> np.ndarray:
    """The real mask with its rotated copies, grown until it covers 40-60 % of the image."""
    heavy = mask | np.rot90(mask, 1) | np.rot90(mask, 2)
    while heavy.mean() < HEAVY_COVER[0]:
        heavy = ndimage.binary_dilation(heavy)
    assert heavy.mean() <= HEAVY_COVER[1], heavy.mean()
    return heavy


def with_cover(mask: np.ndarray, cover: float) -> np.ndarray:
    """``mask`` shrunk or grown along the signed distance to its edge until it covers ``cover`` of the image.

    Ties in the distance go to the pixels with more cloud around them, so the cover is exact.
    """
    signed = ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)
    signed -= 0.1 * ndimage.gaussian_filter(mask.astype(float), 2)
    return signed <= np.sort(signed, axis=None)[round(cover * mask.size) - 1]


def sweep_mask(mask: np.ndarray, cover: float) -> np.ndarray:
    """The real mask (with its rotated copies as in :func:`heavy_mask` beyond twice its cover) at ``cover``."""
    base = mask | np.rot90(mask, 1) | np.rot90(mask, 2) if cover > 2 * mask.mean() else mask
    return with_cover(base, cover)


def largest_cloud(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    return labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, count + 1))))


def border_mask(mask: np.ndarray) -> np.ndarray:
    """The real mask moved left until the border cuts its largest cloud through the middle (clear on the right)."""
    shift = round(ndimage.center_of_mass(largest_cloud(mask))[1])
    return np.pad(mask[:, shift:], ((0, 0), (0, shift)))


def lower_half_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The real mask's largest cloud upside down (its edge cut by the border now at the bottom), stretched over the
    lower 60 % of a ``size`` px image and shrunk or grown to :data:`NDVI_COVER`, without holes."""
    cloud = largest_cloud(mask)
    rows, cols = np.nonzero(cloud)
    cloud = cloud[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1][::-1]
    height = round(0.6 * size)
    placed = np.zeros((size, size), bool)
    placed[size - height :] = resize(cloud.astype(float), (height, size), order=0, anti_aliasing=False) > 0.5
    return ndimage.binary_fill_holes(with_cover(placed, NDVI_COVER))


def _ndvi(data: Path, date: str, size: int) -> np.ndarray:
    """(B08 - B04) / (B08 + B04) of a date, float, ``(1, size, size)``."""
    nir, red = _s2(data, date, ("B08", "B04"), size)
    return ((nir - red) / (nir + red))[None]


def _with_gap(truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask[None], np.nan, truth)


def inpainting_case(name: str, data: Path, size: int) -> Case:
    """One inpainting case of :data:`INPAINT_CASES`."""
    mask = cloud_mask(data, size)
    if name == "sar_guide":
        folder = data / "s1_sar_guide"
        truth = _read(folder / "s2_2019_mean_rgb.tif", size)
        sar = _read(folder / "s1_2020_sar.tif", size)[:2]  # band 3 is constant
        sar[(sar >= SAR_NODATA) | ~(sar > 0)] = np.nan
        description = "S2 2019 mean RGB under a real cloud mask, guide S1 2020 VH/VV (radar, linear)"
        return Case(
            name, "inpaint", description, _with_gap(truth, mask), truth, [sar], mask, (0,), ["B04", "B03", "B02"]
        )
    truth = _s2(data, TARGET_DATE, S2_RGBN, size)
    if name == "swir_guide":
        guide = _s2(data, GUIDE_DATE, ("B11", "B12"), size, scale=2.0)
        description = f"S2 {TARGET_DATE} RGBN under a real cloud mask, guide S2 {GUIDE_DATE} SWIR B11/B12 (20 m)"
    else:
        guide = _s2(data, GUIDE_DATE, S2_RGBN, size)
        description = f"S2 {TARGET_DATE} RGBN under a real cloud mask, guide S2 {GUIDE_DATE} RGBN"
    if name == "s2_heavy":
        mask = heavy_mask(mask)
        description = description.replace("a real cloud mask", f"a heavy mask ({mask.mean():.0%} cover)")
    return Case(name, "inpaint", description, _with_gap(truth, mask), truth, [guide], mask, (), list(S2_RGBN))


def gap_case(name: str, data: Path, size: int) -> Case:
    """One case of :data:`GAP_CASES`: the first case's images under other masks, or NDVI in a small image."""
    mask = cloud_mask(data, size)
    guide_text = f"guide S2 {GUIDE_DATE}"
    if name == "ndvi_small":
        size = min(size, NDVI_SIZE)
        mask = lower_half_mask(mask, size)
        truth, guide = _ndvi(data, TARGET_DATE, size), _ndvi(data, GUIDE_DATE, size)
        description = (
            f"S2 {TARGET_DATE} NDVI (float, {size} px) under one real-shaped gap over the lower half "
            f"({mask.mean():.0%} cover), {guide_text} NDVI"
        )
        return Case(name, "inpaint", description, _with_gap(truth, mask), truth, [guide], mask, (), ["NDVI"])
    if name == "border":
        mask = border_mask(mask)
        shape = f"the real mask moved so the border cuts its largest cloud ({mask.mean():.0%} cover)"
    else:
        mask = sweep_mask(mask, int(name[3:]) / 100)
        shape = f"the real mask shrunk or grown to {mask.mean():.0%} cover"
    truth, guide = _s2(data, TARGET_DATE, S2_RGBN, size), _s2(data, GUIDE_DATE, S2_RGBN, size)
    description = f"S2 {TARGET_DATE} RGBN under {shape}, {guide_text} RGBN"
    return Case(name, "inpaint", description, _with_gap(truth, mask), truth, [guide], mask, (), list(S2_RGBN))


def area_average(image: np.ndarray, low: int) -> np.ndarray:
    """``image`` averaged onto a ``low`` x ``low`` grid over the same extent with ``gdal.Warp -r average``."""
    bands, height, width = image.shape
    source = gdal.GetDriverByName("MEM").Create("", width, height, bands, gdal.GDT_Float64)
    source.SetGeoTransform((0, 1, 0, 0, 0, -1))
    for index, band in enumerate(image):
        source.GetRasterBand(index + 1).WriteArray(band)
    options = gdal.WarpOptions(
        format="MEM", width=low, height=low, resampleAlg="average", outputBounds=(0, -height, width, 0)
    )
    return np.asarray(gdal.Warp("", source, options=options).ReadAsArray(), dtype=np.float64).reshape(bands, low, low)


PSF_SIGMA = np.sqrt(-2 * np.log(MTF_AT_NYQUIST)) / np.pi  # its σ in the coarser grid's pixels


def sensor_blur(image: np.ndarray, factor: float) -> np.ndarray:
    """A Gaussian point spread of the coarser sensor (its MTF at the coarser grid's Nyquist is MTF_AT_NYQUIST)."""
    return np.stack([ndimage.gaussian_filter(band, PSF_SIGMA * factor, mode="reflect") for band in image])


def sr_case(name: str, data: Path, size: int) -> Case:
    """One super-resolution case of :data:`SR_CASES`: ``sr_nir_x4`` is B08 from same-date RGB at factor 4,
    ``sr_nir_x4_psf`` the same with a sensor-like blur before the area average."""
    blurred = name.endswith("_psf")
    group, factor = name.removesuffix("_psf").rsplit("_x", 1)
    current = _s2(data, TARGET_DATE, S2_RGBN, size)
    if group == "sr_nir":
        truth, guide, names = current[3:], current[:3], ["B08"]
        description = f"S2 {TARGET_DATE} B08 x{factor}, guide same-date RGB"
    else:
        truth, guide, names = current[:3], _s2(data, GUIDE_DATE, S2_RGBN[:3], size), list(S2_RGBN[:3])
        description = f"S2 {TARGET_DATE} RGB x{factor}, guide S2 {GUIDE_DATE} RGB"
    low = area_average(sensor_blur(truth, float(factor)) if blurred else truth, round(size / float(factor)))
    description += " (sensor-like blur, then area average)" if blurred else " (area average)"
    return Case(name, "sr", description, low, truth, [guide], band_names=names, sensor_blur=PSF_SIGMA * blurred)


def build_cases(data: Path, size: int, names: list[str]) -> list[Case]:
    """The cases named (any of :data:`ALL_CASES`)."""
    unknown = sorted(set(names) - set(ALL_CASES))
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; expected some of {list(ALL_CASES)}")
    build = {**dict.fromkeys(INPAINT_CASES, inpainting_case), **dict.fromkeys(GAP_CASES, gap_case)}
    return [build.get(n, sr_case)(n, data, size) for n in names]
