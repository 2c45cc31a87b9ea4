"""One short run on a GPU: step time, quality at the default budget, scene throughput.

1. The 704 px part of the real scene (``scene_scope.py``: 9 tiles, clouds in every tile), one
   network per tile with the engine's defaults on ``--device`` (tiles batched 8 at a time on a
   CUDA GPU): wall time, masked SSIM over the clouds, and the step time the engine logs.
2. A ``--size`` px mosaic of the scene (``scene_scale.py``), one network for the scene with the
   engine's defaults: wall time, megapixels a minute, time by stage, masked SSIM on its diagonal blocks.

Refuses to run without the device (``--device cpu --steps 20`` checks the script itself).

    python benchmarks/gpu.py [--device cuda] [--size 4272] [--steps 4000]

Results: benchmarks/results/gpu.{md,json}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _harness import DATA_DIR, RESULTS, Run, module
from osgeo import gdal
from scene import BANDS, WORK, read, tiled_mask, write_like
from scene_scale import BLOCK, date_stack, mosaic, read_block
from scene_scope import part

module("core")
from mcpn.core.callbacks import Callbacks  # noqa: E402
from mcpn.core.config import Settings  # noqa: E402
from mcpn.core.metrics import masked_ssim  # noqa: E402
from mcpn.core.pipeline.inpainting import inpaint_raster  # noqa: E402
from mcpn.core.raster.masks import CloudMask  # noqa: E402


def timed_run(target: Path, mask: Path, guide: Path, out: Path, settings: Settings) -> tuple[object, float, list]:
    """The inpainting run, its wall time and the engine's step-time lines."""
    logs: list[str] = []
    started = time.perf_counter()
    result = inpaint_raster(str(target), CloudMask(str(mask)), [str(guide)], str(out), settings,
                            callbacks=Callbacks(log=logs.append))  # fmt: skip
    return result, time.perf_counter() - started, [line for line in logs if line.startswith("fit on")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--size", type=int, default=4 * BLOCK, help="side of the scene mosaic in px")
    parser.add_argument("--steps", type=int, default=Settings().steps)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("No CUDA device here: nothing measured.")
    run = Run(args)
    WORK.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    target, guide = part("2018-08-05", 704), part("2018-07-21", 704)
    cloud = tiled_mask(704)
    mask = write_like(target, WORK / "gpu_mask_704.tif", cloud[None].astype(np.uint8), gdal.GDT_Byte, None)
    out = WORK / "gpu_filled_704.tif"
    tile_settings = Settings(device=args.device, steps=args.steps)
    result, seconds, steps = timed_run(target, mask, guide, out, tile_settings)
    tiles = {"seconds": seconds, "ssim": masked_ssim(read(out), read(target), cloud), "step_time": steps,
             "batch_size": tile_settings.resolved().batch_size, "chosen_steps": result.chosen_steps}  # fmt: skip
    print(tiles, flush=True)
    size = args.size
    target = mosaic(date_stack("2018-08-05"), size, WORK / f"scale_target_{size}.tif", gdal.GDT_UInt16, 0, BANDS)
    guide = mosaic(date_stack("2018-07-21"), size, WORK / f"scale_guide_{size}.tif", gdal.GDT_UInt16, 0, BANDS)
    real = gdal.Open(str(DATA_DIR / "s1_sar_guide" / "cloud_mask.tif")).ReadAsArray().astype(np.uint8)
    mask = mosaic(real[None], size, WORK / f"scale_mask_{size}.tif", gdal.GDT_Byte, None)
    out = WORK / f"gpu_filled_{size}.tif"
    result, seconds, steps = timed_run(target, mask, guide, out, Settings(device=args.device, steps=args.steps,
                                                                          scope="scene"))  # fmt: skip
    ssims = [masked_ssim(read_block(out, o), read_block(target, o), read_block(mask, o)[0] > 0)
             for o in range(0, size - BLOCK + 1, BLOCK)]  # fmt: skip
    scene = {"size": size, "seconds": seconds, "megapixels_per_minute": size * size / 1e6 / (seconds / 60),
             "stages": result.stages, "ssim": float(np.mean(ssims)), "step_time": steps}  # fmt: skip
    lines = [
        f"Device: {device}.",
        "",
        f"704 px, 9 tiles, one network per tile, the engine's defaults ({args.steps} steps at most, "
        f"{tiles['batch_size']} tiles at a time): **{tiles['seconds']:.0f} s**, masked SSIM **{tiles['ssim']:.3f}**. "
        f"Step time: {'; '.join(tiles['step_time'])}.",
        "",
        f"{size} x {size} px, one network for the scene: **{seconds:.0f} s** "
        f"({scene['megapixels_per_minute']:.1f} Mpx a minute), masked SSIM {scene['ssim']:.3f} on its diagonal "
        f"blocks. Time by stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.stages.items()) + ". "
        f"Step time: {'; '.join(steps)}.",
    ]  # fmt: skip
    run.write(args.out, "gpu", "\n".join(lines), {"device": device, "tiles": tiles, "scene": scene})


if __name__ == "__main__":
    main()
