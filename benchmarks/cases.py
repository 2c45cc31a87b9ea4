"""Benchmark cases built from the real Sentinel-1/2 sample rasters in ``../shared/data``.

Inpainting cases carry a cloud mask and an exact ground truth (the scenes are
clear, the mask comes from a real cloudy date); super-resolution cases are made
by degrading a real high-resolution band (antialiased bilinear downsampling).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import _mcpn
import numpy as np
from baselines import downsample
from osgeo import gdal
from skimage.transform import resize

gdal.UseExceptions()

S2_RGBN = ("B04", "B03", "B02", "B08")
TARGET_DATE, GUIDE_DATE = "2018-08-05", "2018-07-21"
SAR_NODATA = 1e9

INPAINT_CASES = ("s2_guide", "sar_guide")
SR_CASES = {"sr_nir": (4, 8, 16), "sr_rgb": (4, 8)}
CASE_GROUPS = INPAINT_CASES + tuple(SR_CASES)


@dataclass
class Case:
    """One benchmark sample.

    ``target`` is the engine's input: for inpainting the full-size image with
    NaN under ``mask`` (True = cloud); for super-resolution the low-res image.
    ``truth`` is the full-size ground truth. ``guides`` are on the truth grid.
    """

    name: str
    kind: str  # "inpaint" or "sr"
    description: str
    target: np.ndarray
    truth: np.ndarray
    guides: list[np.ndarray]
    guide_names: list[str]
    mask: np.ndarray | None = None
    sar_guides: tuple[int, ...] = ()
    factor: int = 1
    band_names: list[str] = field(default_factory=list)

    @property
    def region(self) -> np.ndarray | None:
        """Pixels scored as "masked region" (the cloud), or None for super-resolution."""
        return self.mask


def _read(path: Path, window: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read all bands as float64 ``(bands, H, W)``; ``window`` = (xoff, yoff, size)."""
    ds = gdal.Open(str(path))
    if window is None:
        data = ds.ReadAsArray()
    else:
        x, y, s = window
        if x + s > ds.RasterXSize or y + s > ds.RasterYSize:
            raise ValueError(f"a {s} px crop does not fit in {path} ({ds.RasterXSize} x {ds.RasterYSize})")
        data = ds.ReadAsArray(x, y, s, s)
    data = np.asarray(data, dtype=np.float64)
    return data[None] if data.ndim == 2 else data


def _centre_window(path: Path, size: int) -> tuple[int, int, int]:
    ds = gdal.Open(str(path))
    return (ds.RasterXSize - size) // 2, (ds.RasterYSize - size) // 2, size


def cloud_mask(data_dir: Path, size: int) -> np.ndarray:
    """The real 256 x 256 cloud mask (1 = cloud), nearest-neighbour resized to ``size``."""
    mask = _read(data_dir / "s1_sar_guide" / "cloud_mask.tif")[0] > 0
    if mask.shape != (size, size):
        mask = resize(mask.astype(float), (size, size), order=0, anti_aliasing=False) > 0.5
    return mask


def s2_stack(data_dir: Path, date: str, bands: tuple[str, ...], size: int) -> np.ndarray:
    """Centre ``size`` crop of Sentinel-2 10 m bands of one date (reflectance x 10000)."""
    folder = data_dir / "s2_time_pair" / date
    window = _centre_window(folder / f"{bands[0]}.tif", size)
    return np.concatenate([_read(folder / f"{b}.tif", window) for b in bands])


def _with_gap(truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    target = truth.copy()
    target[:, mask] = np.nan
    return target


def s2_guide_case(data_dir: Path, size: int) -> Case:
    """(a) Inpainting of 2018-08-05 B04/B03/B02/B08 with 2018-07-21 as the historical guide."""
    truth = s2_stack(data_dir, TARGET_DATE, S2_RGBN, size)
    guide = s2_stack(data_dir, GUIDE_DATE, S2_RGBN, size)
    mask = cloud_mask(data_dir, size)
    return Case(
        "s2_guide",
        "inpaint",
        f"S2 {TARGET_DATE} B04/B03/B02/B08 under a real cloud mask, guide S2 {GUIDE_DATE}",
        _with_gap(truth, mask),
        truth,
        [guide],
        [f"S2 {GUIDE_DATE}"],
        mask=mask,
        band_names=list(S2_RGBN),
    )


def sar_guide_case(data_dir: Path, size: int) -> Case:
    """(b) Inpainting of the 2019 mean S2 RGB with the 2020 S1 VH/VV patch as guide (linear, NaN nodata)."""
    folder = data_dir / "s1_sar_guide"
    window = _centre_window(folder / "s2_2019_mean_rgb.tif", size)
    truth = _read(folder / "s2_2019_mean_rgb.tif", window)
    sar = _read(folder / "s1_2020_sar.tif", window)[:2]  # band 3 is constant
    sar[(sar >= SAR_NODATA) | ~(sar > 0)] = np.nan
    mask = cloud_mask(data_dir, size)
    return Case(
        "sar_guide",
        "inpaint",
        "S2 2019 mean RGB under a real cloud mask, guide S1 2020 (VH, VV)",
        _with_gap(truth, mask),
        truth,
        [sar],
        ["S1 2020 VH/VV"],
        mask=mask,
        sar_guides=(0,),
        band_names=["B04", "B03", "B02"],
    )


def sr_cases(data_dir: Path, size: int, group: str) -> list[Case]:
    """(c) Super-resolution cases of one group ("sr_nir" or "sr_rgb"), one per factor."""
    current = s2_stack(data_dir, TARGET_DATE, S2_RGBN, size)
    cases = []
    for factor in SR_CASES[group]:
        low_size = max(1, round(size / factor))
        if group == "sr_nir":
            truth, guide = current[3:4], current[:3]
            guide_name, desc = f"S2 {TARGET_DATE} RGB", f"S2 {TARGET_DATE} B08 x{factor}, guide same-date RGB"
            bands = ["B08"]
        else:
            truth, guide = current[:3], s2_stack(data_dir, GUIDE_DATE, S2_RGBN[:3], size)
            guide_name, desc = f"S2 {GUIDE_DATE} RGB", f"S2 {TARGET_DATE} RGB x{factor}, guide S2 {GUIDE_DATE} RGB"
            bands = list(S2_RGBN[:3])
        cases.append(
            Case(
                f"{group}_x{factor}",
                "sr",
                desc,
                downsample(truth, (low_size, low_size)),
                truth,
                [guide],
                [guide_name],
                factor=factor,
                band_names=bands,
            )
        )
    return cases


def build_cases(data_dir: Path, size: int, names: list[str]) -> list[Case]:
    """Cases selected by group name (``sr_nir``) or full name (``sr_nir_x8``)."""
    out: list[Case] = []
    for group in CASE_GROUPS:
        wanted = [n for n in names if n == group or n.startswith(group + "_x")]
        if not wanted:
            continue
        if group == "s2_guide":
            out.append(s2_guide_case(data_dir, size))
        elif group == "sar_guide":
            out.append(sar_guide_case(data_dir, size))
        else:
            out += [c for c in sr_cases(data_dir, size, group) if group in wanted or c.name in wanted]
    known = {c for c in CASE_GROUPS} | {f"{g}_x{f}" for g, fs in SR_CASES.items() for f in fs}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; expected some of {sorted(known)}")
    return out


def add_inpainting_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cases``, ``--size``, ``--jobs``, ``--data`` and ``--out``, taken by every multi-fit inpainting benchmark."""
    parser.add_argument("--cases", nargs="+", default=list(INPAINT_CASES), choices=INPAINT_CASES)
    parser.add_argument("--size", type=int, default=128, help="crop size in pixels (default 128)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--data", type=Path, default=_mcpn.DATA_DIR)
    parser.add_argument("--out", type=Path, default=_mcpn.REPO / "benchmarks" / "results")
