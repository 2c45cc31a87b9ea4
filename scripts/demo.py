# SPDX-License-Identifier: GPL-2.0-or-later
"""Demo: both algorithms on the shipped sample through qgis_process, each scored against the known truth.

- Guided cloud inpainting: the sample target (Sentinel-2, 2018-08-05) is clear and the cloud mask
  is a real mask transplanted onto it, so the pixels under the mask are known: the demo fills them
  using the 2018-07-21 image as guide and reports masked SSIM and RMSE (reflectance x 10000) over
  the cloud, next to a naive baseline (the guide's pixels pasted into the gap).
- Guided super-resolution: the input is the target's 10 m B08 averaged to 20 m, so the 10 m B08 is
  the truth; the guides are the 10 m B04, B03, B02. SSIM and RMSE over the whole image, next to
  bicubic interpolation of the 20 m input.
- Sentinel-2 cloud-free product: the sample's Level-2A product of 2018-08-05 (a zip; its scene classification
  marks the real cloud mask as cloud, while its pixels keep their true values, which the algorithm leaves out)
  filled from the product of 2018-07-21: masked SSIM and RMSE of the 10 m bands over the cloud, next to the
  moving-window guide regression of the 10 m bands on the guide's.

Run with `make demo` (which sets up the QGIS profile and environment).
Usage: python scripts/demo.py [--steps 500] [--output-dir .build/demo] [--only inpainting|super-resolution|sentinel2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample")
TARGET = os.path.join(SAMPLE, "target_2018-08-05.tif")


def run(qgis_process: str, algorithm: str, arguments: list[str], output: str) -> bool:
    """Run one algorithm through qgis_process (it prints its progress and log); True when the output exists."""
    print(f"\nrunning {algorithm} through {qgis_process} ...", flush=True)
    start = time.time()
    done = subprocess.run([qgis_process, "run", algorithm, "--", *arguments, f"OUTPUT={output}"])
    if done.returncode != 0 or not os.path.isfile(output):
        print(f"{algorithm} failed", file=sys.stderr)
        return False
    print(f"done in {time.time() - start:.0f} s; output: {output}")
    return True


def scores(rows: list[tuple[str, object]], truth: object, region: object) -> None:
    from mcpn.core.metrics import masked_ssim, rmse

    print(f"{'':28}{'SSIM':>8}{'RMSE':>10}")
    for name, image in rows:
        print(f"{name:28}{masked_ssim(image, truth, region):8.4f}{rmse(image, truth, region):10.1f}")


def read(path: str) -> object:
    """Every band of a raster as float64 (bands, H, W), NaN for nodata."""
    from mcpn.core.raster import io as rasters
    from mcpn.core.raster.tiling import Window

    grid = rasters.grid_of(path)
    return rasters.read_window(path, Window(0, 0, grid.height, grid.width))


def inpainting(args: argparse.Namespace) -> bool:
    from mcpn.core.raster import masks

    guide = os.path.join(SAMPLE, "guide_2018-07-21.tif")
    mask_path = os.path.join(SAMPLE, "cloud_mask.tif")
    output = os.path.join(args.output_dir, "sample_inpainted.tif")
    arguments = [f"INPUT={TARGET}", f"MASK={mask_path}", "MASK_VALUES=1", f"GUIDES={guide}"]
    if not run(args.qgis_process, "mcpn:guidedcloudinpainting", [*arguments, *common(args)], output):
        return False
    truth = read(TARGET)
    cloud = masks.mask_from_values(read(mask_path), "1")
    pasted = truth.copy()
    pasted[:, cloud] = read(guide)[:, cloud]
    print(f"cloud: {cloud.mean():.1%} of the pixels; scores over the cloud:")
    scores([("MCPN", read(output)), ("guide pasted (baseline)", pasted)], truth, cloud)
    return True


def super_resolution(args: argparse.Namespace) -> bool:
    from osgeo import gdal

    low = os.path.join(SAMPLE, "sr_b08_20m.tif")
    guides = os.path.join(SAMPLE, "sr_guides_10m.tif")
    output = os.path.join(args.output_dir, "sample_b08_10m.tif")
    arguments = [f"INPUT={low}", f"GUIDES={guides}"]
    if not run(args.qgis_process, "mcpn:guidedsuperresolution", [*arguments, *common(args)], output):
        return False
    truth = read(TARGET)[3:4]  # band 4: the 10 m B08 the input was averaged from
    grid = gdal.Open(guides)
    width, height = grid.RasterXSize, grid.RasterYSize
    gt = grid.GetGeoTransform()
    bounds = (gt[0], gt[3] + height * gt[5], gt[0] + width * gt[1], gt[3])
    cubic = gdal.Warp("", low, format="MEM", width=width, height=height, outputBounds=bounds, resampleAlg="cubic")
    baseline = cubic.ReadAsArray()[None].astype(float)
    print("scores over the whole image against the 10 m B08:")
    scores([("MCPN", read(output)), ("bicubic (baseline)", baseline)], truth, None)
    return True


def sentinel2(args: argparse.Namespace) -> bool:
    import glob
    import tempfile

    import numpy as np
    from mcpn.core.classic import local_regression
    from mcpn.core.raster.sentinel2 import open_product, product_grid, write_bands

    target, guide = sorted(glob.glob(os.path.join(SAMPLE, "sentinel2", "*.zip")), reverse=True)  # 08-05, 07-21
    output = os.path.join(args.output_dir, "sample_sentinel2_product.tif")
    filled = os.path.join(args.output_dir, "sample_sentinel2_filled.tif")
    arguments = [f"INPUT={target}", f"GUIDES={guide}", f"FILLED={filled}"]
    if not run(args.qgis_process, "mcpn:sentinel2product", [*arguments, *common(args)], output):
        return False
    bands = ["B02", "B03", "B04", "B08"]
    with tempfile.TemporaryDirectory() as folder:  # the true 10 m reflectance, offset removed, as the run reads it
        truth, guide_bands = (
            read(write_bands(p, 10, bands, product_grid(p, None), os.path.join(folder, f"{i}.tif"), "near"))
            for i, p in enumerate(map(open_product, (target, guide)))
        )
    cloud = read(filled)[0] == 1
    regression = np.where(cloud, local_regression(truth, ~cloud, [guide_bands]), truth)
    print(f"cloud: {cloud.mean():.1%} of the pixels; scores of the 10 m bands over the cloud:")
    scores([("MCPN", read(output)[:4]), ("moving-window regression", regression)], truth, cloud)
    return True


def common(args: argparse.Namespace) -> list[str]:
    return [f"STEPS={args.steps}", "DEVICE=0", "SEED=0"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--output-dir", default=os.path.join(ROOT, ".build", "demo"))
    parser.add_argument("--only", choices=["inpainting", "super-resolution", "sentinel2"])
    parser.add_argument("--qgis-process", default=os.environ.get("MCPN_QGIS_PROCESS", "qgis_process.bin"))
    args = parser.parse_args()
    args.output_dir = os.path.abspath(args.output_dir)
    os.makedirs(args.output_dir, exist_ok=True)
    ok = True
    if args.only in (None, "inpainting"):
        ok = inpainting(args) and ok
    if args.only in (None, "super-resolution"):
        ok = super_resolution(args) and ok
    if args.only in (None, "sentinel2"):
        ok = sentinel2(args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
