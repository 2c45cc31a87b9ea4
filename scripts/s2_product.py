# SPDX-License-Identifier: GPL-2.0-or-later
"""Build a small but real Sentinel-2 product (.SAFE, compact naming) from the per-band GeoTIFFs of ../shared/data.

The product holds what GDAL's SENTINEL2 driver reads: the product metadata (``MTD_MSIL2A.xml`` or
``MTD_MSIL1C.xml``: granule's band files, special values, quantification, the baseline 04.00 offsets,
wavelengths), the tile metadata (``GRANULE/<granule>/MTD_TL.xml``: CRS, sizes and origins per resolution),
JPEG2000 bands at 10, 20 and 60 m (lossless) and, for Level-2A, the scene classification layer (SCL) at
20 and 60 m. Reflectance x 10000 is stored as in real products: plus 1000 from baseline 04.00 on.

Used by the tests, the benchmark and ``scripts/make_sample.py`` (the demo's product). Usage:
    python scripts/s2_product.py SOURCE_FOLDER OUT_FOLDER [--x 420 --y 380 --size 96 --level 2A --baseline 04.00]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
from osgeo import gdal

# band: (native resolution in m, central wavelength in nm, band index in the metadata)
BANDS = {
    "B01": (60, 442.7, 0), "B02": (10, 492.4, 1), "B03": (10, 559.8, 2), "B04": (10, 664.6, 3),
    "B05": (20, 704.1, 4), "B06": (20, 740.5, 5), "B07": (20, 782.8, 6), "B08": (10, 832.8, 7),
    "B8A": (20, 864.7, 8), "B09": (60, 945.1, 9), "B11": (20, 1613.7, 11), "B12": (20, 2202.4, 12),
}  # fmt: skip
SCL_CLEAR, SCL_CLOUD_HIGH, SCL_SHADOW = 4, 9, 3  # vegetation, cloud high probability, cloud shadow
OFFSET = 1000  # added to reflectance x 10000 from processing baseline 04.00 (BOA/RADIO_ADD_OFFSET = -1000)


@dataclass(frozen=True)
class Product:
    """What was built: the .SAFE folder, its metadata file and the cloud on the 10 m grid."""

    safe: str
    metadata: str
    cloud: np.ndarray  # (size, size) bool on the 10 m grid


def build(
    source: str,
    out_folder: str,
    x: int,
    y: int,
    size: int,
    *,
    level: str = "2A",
    baseline: str = "04.00",
    date: str = "20180805T110621",
    tile: str = "T30STF",
    orbit: int = 94,
    cloud: np.ndarray | None = None,
    cloud_value: int | None = None,
    shadow: np.ndarray | None = None,
) -> Product:
    """A product of the ``size`` x ``size`` px (10 m) window at (x, y) of ``source``'s bands (``B02.tif``...).

    ``cloud`` (bool, 10 m grid, grown to whole 20 m pixels) is classed as cloud high probability in the SCL,
    ``shadow`` as cloud shadow; under both every band holds ``cloud_value`` reflectance x 10000, so a fill cannot
    copy the truth (None: the true values are kept). The product's ``cloud`` is both, on the 10 m grid.
    """
    if size % 6:
        raise ValueError("the size must be a multiple of 6 px (a whole number of 60 m pixels)")
    offset = OFFSET if float(baseline) >= 4 else 0
    # snapped to the 20 m pixels, as the 20 m scene classification marks them
    cloud = _fine(_coarse(np.zeros((size, size), bool) if cloud is None else cloud, 2), 2)
    shadow = _fine(_coarse(np.zeros((size, size), bool) if shadow is None else shadow, 2), 2) & ~cloud
    name = f"S2B_MSIL{level}_{date}_N{baseline.replace('.', '')}_R{orbit:03d}_{tile}_{date}.SAFE"
    granule = f"L{level}_{tile}_A007465_{date}"
    safe = os.path.join(out_folder, name)
    img = os.path.join("GRANULE", granule, "IMG_DATA")
    first = gdal.Open(os.path.join(source, "B02.tif"))
    gt, crs = first.GetGeoTransform(), first.GetSpatialRef()
    ulx, uly = gt[0] + x * gt[1], gt[3] + y * gt[5]
    files: list[str] = []
    for band, (resolution, _, _) in BANDS.items():
        factor = resolution // 10
        src = gdal.Open(os.path.join(source, f"{band}.tif"))
        values = src.ReadAsArray(x // factor, y // factor, size // factor, size // factor).astype(np.int64)
        if cloud_value is not None:
            values = np.where(_coarse(cloud | shadow, factor), cloud_value, values)
        values = values + offset * (values > 0)
        files.append(_write_band(safe, img, level, tile, date, band, resolution, values, ulx, uly, crs))
    if level == "2A":
        for resolution in (20, 60):
            factor = resolution // 10
            scl = np.full((size // factor, size // factor), SCL_CLEAR, np.uint8)
            scl[_coarse(shadow, factor)] = SCL_SHADOW
            scl[_coarse(cloud, factor)] = SCL_CLOUD_HIGH
            files.append(_write_band(safe, img, level, tile, date, "SCL", resolution, scl, ulx, uly, crs))
    epsg = crs.GetAuthorityCode(None)
    with open(os.path.join(safe, "GRANULE", granule, "MTD_TL.xml"), "w", encoding="utf-8") as f:
        f.write(_tile_xml(level, epsg, size, ulx, uly))
    metadata = os.path.join(safe, f"MTD_MSIL{level}.xml")
    with open(metadata, "w", encoding="utf-8") as f:
        f.write(_product_xml(level, baseline, name, date, orbit, files, offset))
    return Product(safe, metadata, cloud | shadow)


def _coarse(mask: np.ndarray, factor: int) -> np.ndarray:
    """A 10 m mask on a grid ``factor`` times coarser: a coarse pixel is set where any of its fine pixels is."""
    h, w = mask.shape
    return mask.reshape(h // factor, factor, w // factor, factor).any(axis=(1, 3))


def _fine(mask: np.ndarray, factor: int) -> np.ndarray:
    """A mask on a grid ``factor`` times finer."""
    return np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)


def _write_band(safe, img, level, tile, date, band, resolution, values, ulx, uly, crs) -> str:
    """One lossless JPEG2000 band file; its path in the product without the extension."""
    suffix = f"_{resolution}m" if level == "2A" else ""
    folder = os.path.join(img, f"R{resolution}m") if level == "2A" else img
    relative = os.path.join(folder, f"{tile}_{date}_{band}{suffix}")
    os.makedirs(os.path.join(safe, folder), exist_ok=True)
    h, w = values.shape
    mem = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte if band == "SCL" else gdal.GDT_UInt16)
    mem.SetGeoTransform((ulx, resolution, 0.0, uly, 0.0, -resolution))
    mem.SetSpatialRef(crs)
    mem.GetRasterBand(1).WriteArray(values)
    options = ["REVERSIBLE=YES", "QUALITY=100", "YCBCR420=NO"]
    gdal.GetDriverByName("JP2OpenJPEG").CreateCopy(os.path.join(safe, relative + ".jp2"), mem, options=options)
    return relative.replace(os.sep, "/")


def _tile_xml(level: str, epsg: str, size: int, ulx: float, uly: float) -> str:
    sizes = "".join(
        f'<Size resolution="{r}"><NROWS>{size * 10 // r}</NROWS><NCOLS>{size * 10 // r}</NCOLS></Size>'
        for r in (10, 20, 60)
    )
    positions = "".join(
        f'<Geoposition resolution="{r}"><ULX>{ulx:.6f}</ULX><ULY>{uly:.6f}</ULY><XDIM>{r}</XDIM><YDIM>-{r}</YDIM>'
        "</Geoposition>"
        for r in (10, 20, 60)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<n1:Level-{level}_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level}_Tile_Metadata.xsd">'
        f"<n1:Geometric_Info><Tile_Geocoding><HORIZONTAL_CS_NAME>WGS84 / UTM</HORIZONTAL_CS_NAME>"
        f"<HORIZONTAL_CS_CODE>EPSG:{epsg}</HORIZONTAL_CS_CODE>{sizes}{positions}</Tile_Geocoding></n1:Geometric_Info>"
        f"</n1:Level-{level}_Tile_ID>\n"
    )


def _product_xml(level: str, baseline: str, name: str, date: str, orbit: int, files: Sequence[str], offset: int) -> str:
    l2a = level == "2A"
    when = f"{date[:4]}-{date[4:6]}-{date[6:8]}T{date[9:11]}:{date[11:13]}:{date[13:15]}.024Z"
    images = "".join(f"<IMAGE_FILE>{escape(f)}</IMAGE_FILE>" for f in files)
    kind = "BOA" if l2a else "RADIO"
    offsets = "".join(f'<{kind}_ADD_OFFSET band_id="{i}">-{offset}</{kind}_ADD_OFFSET>' for i in range(13))
    offsets = f"<{kind}_ADD_OFFSET_VALUES_LIST>{offsets}</{kind}_ADD_OFFSET_VALUES_LIST>" if offset else ""
    quantification = (
        '<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>'
        '<AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>'
        '<WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
        if l2a
        else '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
    )
    spectral = "".join(
        f'<Spectral_Information bandId="{index}" physicalBand="{band.replace("B0", "B")}">'
        f"<RESOLUTION>{resolution}</RESOLUTION><Wavelength>"
        f'<CENTRAL unit="nm">{wavelength}</CENTRAL></Wavelength></Spectral_Information>'
        for band, (resolution, wavelength, index) in sorted(BANDS.items(), key=lambda item: item[1][2])
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<n1:Level-{level}_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-{level}.xsd">'
        "<n1:General_Info><Product_Info>"
        f"<PRODUCT_START_TIME>{when}</PRODUCT_START_TIME><PRODUCT_STOP_TIME>{when}</PRODUCT_STOP_TIME>"
        f"<PRODUCT_URI>{name}</PRODUCT_URI><PROCESSING_LEVEL>Level-{level}</PROCESSING_LEVEL>"
        f"<PRODUCT_TYPE>S2MSI{level}</PRODUCT_TYPE><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>"
        f"<Datatake><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>"
        f"<SENSING_ORBIT_NUMBER>{orbit}</SENSING_ORBIT_NUMBER>"
        "<SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION></Datatake>"
        '<Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>'
        '<Product_Organisation><Granule_List><Granule imageFormat="JPEG2000">'
        f"{images}</Granule></Granule_List></Product_Organisation></Product_Info>"
        "<Product_Image_Characteristics>"
        "<Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>"
        "<SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>"
        "<Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>"
        "<SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>"
        f"{quantification}{offsets}"
        f"<Spectral_Information_List>{spectral}</Spectral_Information_List>"
        "</Product_Image_Characteristics></n1:General_Info>"
        f"</n1:Level-{level}_User_Product>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="per-band GeoTIFFs (B02.tif...), e.g. ../shared/data/s2_time_pair/2018-08-05")
    parser.add_argument("out", help="the folder the .SAFE is made in")
    parser.add_argument("--x", type=int, default=420)
    parser.add_argument("--y", type=int, default=378)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--level", choices=["2A", "1C"], default="2A")
    parser.add_argument("--baseline", default="04.00")
    args = parser.parse_args()
    gdal.UseExceptions()
    product = build(args.source, args.out, args.x, args.y, args.size, level=args.level, baseline=args.baseline)
    print(product.metadata)


if __name__ == "__main__":
    main()
