# SPDX-License-Identifier: GPL-2.0-or-later
"""Demo: "Guided cloud inpainting" on the shipped sample through qgis_process, scored against the truth.

The sample target (Sentinel-2, 2018-08-05) is clear and the cloud mask is a real
mask transplanted onto it, so the pixels under the mask are known: the demo fills
them using the 2018-07-21 image as guide and reports masked SSIM and RMSE (in
reflectance x 10000) over the cloud, next to a naive baseline (the guide's
pixels pasted into the gap).

Run with `make demo` (which sets up the QGIS profile and environment).
Usage: python scripts/demo.py [--steps 500] [--output path.tif] [--method 0|1|2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--method", type=int, default=0, help="0 Emergent, 1 Direct, 2 Stacked")
    parser.add_argument("--output", default=os.path.join(ROOT, ".build", "demo", "sample_inpainted.tif"))
    parser.add_argument("--qgis-process", default=os.environ.get("MCPN_QGIS_PROCESS", "qgis_process.bin"))
    args = parser.parse_args()

    from mcpn.core import masks, rasters
    from mcpn.core.metrics import masked_ssim, rmse

    target = os.path.join(SAMPLE, "target_2018-08-05.tif")
    guide = os.path.join(SAMPLE, "guide_2018-07-21.tif")
    mask_path = os.path.join(SAMPLE, "cloud_mask.tif")
    output = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    command = [
        args.qgis_process,
        "run",
        "mcpn:guidedcloudinpainting",
        "--",
        f"INPUT={target}",
        f"MASK={mask_path}",
        "MASK_VALUES=1",
        f"GUIDES={guide}",
        f"METHOD={args.method}",
        "STOPPING=0",
        f"STEPS={args.steps}",
        "DEVICE=0",
        "SEED=0",
        f"OUTPUT={output}",
    ]
    print(f"running Guided cloud inpainting ({args.steps} steps) on the sample through {args.qgis_process} ...")
    start = time.time()
    done = subprocess.run(command)  # qgis_process prints its progress and the algorithm's log
    if done.returncode != 0 or not os.path.isfile(output):
        print("qgis_process failed", file=sys.stderr)
        return 1
    print(f"done in {time.time() - start:.0f} s; output: {output}")

    truth = rasters.read_raster(target).data
    filled = rasters.read_raster(output).data
    cloud = masks.mask_from_values(rasters.read_raster(mask_path).data, "1")
    pasted = truth.copy()
    pasted[:, cloud] = rasters.read_raster(guide).data[:, cloud]
    print(f"cloud: {masks.summary(cloud)}")
    print(f"{'':24}{'masked SSIM':>12}{'RMSE':>10}")
    for name, image in (("MCPN", filled), ("guide pasted (baseline)", pasted)):
        print(f"{name:24}{masked_ssim(image, truth, cloud):12.4f}{rmse(image, truth, cloud):10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
