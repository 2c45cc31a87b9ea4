# SPDX-License-Identifier: GPL-2.0-or-later
"""Build resources/sample/ from ../shared/data (GDAL only).

- target_2018-08-05.tif: Sentinel-2 B04, B03, B02, B08 (10 m, uint16) of a 128 x 128 px window
- guide_2018-07-21.tif: the same bands and window 15 days earlier
- cloud_mask.tif: a real cloud mask (from ../shared/data/s1_sar_guide, another place) put on the
  sample's grid; 1 = cloud. Both dates are clear, so the target is the ground truth under the mask.
- sr_b08_20m.tif: super-resolution input: the 10 m B08 (near infrared) of the target window
  area-averaged to 20 m (64 x 64 px, gdal.Warp -r average), so the 10 m original (band 4 of
  target_2018-08-05.tif) is the truth; a real 20 m band such as B8A has no 10 m truth.
- sr_guides_10m.tif: its guides, B04, B03, B02 at 10 m (the same date and window; not B08, the truth).
- sentinel2/: two small Sentinel-2 Level-2A products as zips (scripts/s2_product.py), 120 x 120 px at 10 m:
  the target of 2018-08-05 (baseline 04.00, offset 1000) whose scene classification marks the real cloud
  mask above as cloud (its pixels keep their true values: the algorithm leaves them out, the demo scores
  against them) and the guide of 2018-07-21 (baseline 02.06).

Usage: python scripts/make_sample.py [--data ../shared/data] [--out resources/sample]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

BANDS = [("B04", "B04 red"), ("B03", "B03 green"), ("B02", "B02 blue"), ("B08", "B08 near infrared")]
X0, Y0, SIZE = 560, 300, 128  # window in the 10 m grid of tile T30STF
MASK_X0, MASK_Y0 = 32, 64  # window in the 256 x 256 cloud mask
S2_X0, S2_Y0, S2_SIZE = 558, 300, 120  # the products' window: whole 60 m pixels


def stack(folder: str, out: str) -> None:
    first = gdal.Open(os.path.join(folder, "B04.tif"))
    gt = first.GetGeoTransform()
    driver = gdal.GetDriverByName("GTiff")
    ds = driver.Create(out, SIZE, SIZE, len(BANDS), gdal.GDT_UInt16, options=["COMPRESS=DEFLATE", "PREDICTOR=2"])
    ds.SetProjection(first.GetProjection())
    ds.SetGeoTransform((gt[0] + X0 * gt[1], gt[1], 0.0, gt[3] + Y0 * gt[5], 0.0, gt[5]))
    for i, (name, description) in enumerate(BANDS):
        src = gdal.Open(os.path.join(folder, f"{name}.tif"))
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(src.GetRasterBand(1).ReadAsArray(X0, Y0, SIZE, SIZE))
        band.SetDescription(description)
    ds.SetMetadataItem("SOURCE", f"Copernicus Sentinel-2 L2A, tile T30STF, {os.path.basename(folder)}")
    ds = None


def mask(src_path: str, template: str, out: str) -> float:
    src = gdal.Open(src_path)
    values = src.GetRasterBand(1).ReadAsArray(MASK_X0, MASK_Y0, SIZE, SIZE)
    values = (values > 0).astype(np.uint8)
    tpl = gdal.Open(template)
    ds = gdal.GetDriverByName("GTiff").Create(out, SIZE, SIZE, 1, gdal.GDT_Byte, options=["COMPRESS=DEFLATE"])
    ds.SetProjection(tpl.GetProjection())
    ds.SetGeoTransform(tpl.GetGeoTransform())
    ds.GetRasterBand(1).WriteArray(values)
    ds.GetRasterBand(1).SetDescription("cloud (1) / clear (0)")
    ds = None
    return float(values.mean())


def super_resolution_sample(target: str, out: str) -> None:
    """The target's band 4 (B08) averaged to 20 m, and its bands 1-3 (B04, B03, B02) as 10 m guides."""
    options = ["COMPRESS=DEFLATE", "PREDICTOR=2"]
    low = gdal.Warp(
        os.path.join(out, "sr_b08_20m.tif"),
        gdal.Translate("", target, format="VRT", bandList=[4]),
        xRes=20,
        yRes=20,
        resampleAlg="average",
        outputType=gdal.GDT_UInt16,
        creationOptions=options,
    )
    low.GetRasterBand(1).SetDescription("B08 near infrared, averaged to 20 m")
    low = None
    guides = gdal.Translate(os.path.join(out, "sr_guides_10m.tif"), target, bandList=[1, 2, 3], creationOptions=options)
    for i, (_, description) in enumerate(BANDS[:3]):
        guides.GetRasterBand(i + 1).SetDescription(description)
    guides = None


def products(pair: str, source_mask: str, out: str) -> None:
    """The target and guide Sentinel-2 products, zipped as downloaded."""
    from s2_product import build  # scripts/

    cloud = gdal.Open(source_mask).ReadAsArray(MASK_X0, MASK_Y0, S2_SIZE, S2_SIZE) > 0
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        target = build(os.path.join(pair, "2018-08-05"), folder, S2_X0, S2_Y0, S2_SIZE, cloud=cloud)
        guide = build(
            os.path.join(pair, "2018-07-21"), folder, S2_X0, S2_Y0, S2_SIZE, baseline="02.06", date="20180721T110621"
        )
        for product in (target, guide):
            name = os.path.basename(product.safe)
            shutil.make_archive(os.path.join(out, name[: -len(".SAFE")]), "zip", folder, name)


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(root, "..", "shared", "data"))
    parser.add_argument("--out", default=os.path.join(root, "resources", "sample"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    pair = os.path.join(args.data, "s2_time_pair")
    target = os.path.join(args.out, "target_2018-08-05.tif")
    stack(os.path.join(pair, "2018-08-05"), target)
    stack(os.path.join(pair, "2018-07-21"), os.path.join(args.out, "guide_2018-07-21.tif"))
    source_mask = os.path.join(args.data, "s1_sar_guide", "cloud_mask.tif")
    cover = mask(source_mask, target, os.path.join(args.out, "cloud_mask.tif"))
    super_resolution_sample(target, args.out)
    products(pair, source_mask, os.path.join(args.out, "sentinel2"))
    print(f"sample written to {args.out}; cloud cover {100 * cover:.1f} %")


if __name__ == "__main__":
    main()
