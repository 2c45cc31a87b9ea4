"""Whole rasters, from files to a file, tile by tile: memory bounded, seamless, distributable.

Guides and cloud masks on other grids are warped lazily (GDAL VRTs) onto the
working grid: the target's for inpainting, the first guide's for
super-resolution. Every tile is read by window and fitted on its own with the
scene's global normalisation (from a subsampled read of the whole raster);
overlapping tiles are blended with feathered weights in on-disk accumulators
and the output is written window by window, so peak memory depends on the
tile size, not on the scene. Inpainting fits only the tiles with missing
pixels; super-resolution fits them all. Tiles run one after the other here or,
one task per tile, on a Dask cluster (:mod:`core.distributed`).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from osgeo import gdal

from . import masks
from .batched import batchable, fit_batch
from .device import select_device
from .distributed import run_tiles, share_progress
from .errors import Cancelled, InputError
from .fitting import CancelCheck, Log, Progress, Settings, TracePoint
from .gdal_exceptions import gdal_exceptions
from .normalisation import BandScaling
from .paths import same_file
from .rasters import (
    Grid,
    RasterError,
    RasterWriter,
    aligned_path,
    grid_of,
    low_res_grid,
    rasterise,
    read_decimated,
    read_window,
    writer_profile,
)
from .sample import Sample, domain_scalings, fit_with_fallback, make_settings
from .self_validation import Validation, validate
from .tiling import Window, feather, tile_windows

__all__ = ["CloudMask", "SceneResult", "TileJob", "fit_tile", "inpaint_raster", "super_resolve_raster"]

TILE_SIZE = 256
TILE_OVERLAP = 32
_WRITE_BLOCK = 512
_PREVIEW_SIDE = 256


@dataclass(frozen=True)
class CloudMask:
    """Which pixels are missing: values of a mask raster and/or polygons, grown by ``dilation`` px."""

    raster: str | None = None  # any grid; resampled with nearest neighbour
    values: str = "1"  # values meaning cloud: "1", "3,8,9,10", "8-10", ">=40"
    polygons: str | None = None  # a vector file (any CRS) whose polygons are cloud
    dilation: int = 0


@dataclass(frozen=True)
class _MaskLayer:
    """A :class:`CloudMask` on the working grid, read window by window."""

    raster: str | None
    ranges: tuple[tuple[float, float], ...]
    polygons: str | None  # Byte raster on the grid, 1 = cloud
    dilation: int
    height: int
    width: int

    def _evaluate(self, mask_values: np.ndarray | None, polygons: np.ndarray | None) -> np.ndarray:
        """Cloud pixels from the mask raster's values and the burnt polygons (at least one is given)."""
        cloud = masks.mask_from_values(mask_values, list(self.ranges)) if mask_values is not None else False
        return cloud | (polygons[0] > 0) if polygons is not None else cloud

    def read(self, window: Window) -> np.ndarray:
        """Cloud pixels (True) of a window, dilation included (read with a halo)."""
        d = self.dilation
        top, left = max(0, window.row - d), max(0, window.col - d)
        bottom = min(self.height, window.row + window.height + d)
        right = min(self.width, window.col + window.width + d)
        halo = Window(top, left, bottom - top, right - left)
        cloud = self._evaluate(
            read_window(self.raster, halo) if self.raster else None,
            read_window(self.polygons, halo) if self.polygons else None,
        )
        cloud = masks.dilate(cloud, d)
        return cloud[
            window.row - top : window.row - top + window.height, window.col - left : window.col - left + window.width
        ]

    def read_decimated(self, max_side: int = 1024) -> np.ndarray:
        """Cloud pixels of the whole grid subsampled like :func:`core.rasters.read_decimated` (no dilation)."""
        return self._evaluate(
            read_decimated(self.raster, max_side) if self.raster else None,
            read_decimated(self.polygons, max_side) if self.polygons else None,
        )


@dataclass(frozen=True)
class TileJob:
    """Everything the fit of one tile needs (picklable, for Dask workers)."""

    index: int
    window: Window  # on the output grid
    target: str  # raster the target is read from
    target_window: Window  # its window there (the same as ``window`` for inpainting)
    guides: tuple[str, ...]  # rasters on the output grid
    mask: _MaskLayer | None  # inpainting only
    scalings: tuple[BandScaling, ...]  # target, then each guide
    sar: tuple[int, ...]
    settings: Settings
    device: str
    members: int = 1  # fits with seeds seed, seed + 1, ...: their spread is the uncertainty


@dataclass
class TileFit:
    """The fitted tile in the target's units: mean over the ensemble and its spread."""

    index: int
    mean: np.ndarray  # (B, h, w)
    spread: np.ndarray | None  # (B, h, w) standard deviation over the members, None for one member
    device: str
    chosen_step: int
    trace: list[TracePoint]
    notes: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)


@gdal_exceptions()
def fit_tile(
    job: TileJob, progress: Progress | None = None, cancel: CancelCheck | None = None, log: Log | None = None
) -> TileFit:
    """Read one tile's windows, fit it (``job.members`` times) and return its output."""
    started = time.perf_counter()
    sample, warnings = _read_tile(job)
    device = select_device(job.device)
    outputs = []
    for member in range(job.members):
        member_progress = share_progress(progress, member, job.members)
        settings = replace(job.settings, seed=job.settings.seed + member)
        run, device = fit_with_fallback(sample.problem(), settings, device, member_progress, cancel, log)
        outputs.append(sample.scaling.invert(run.output).astype(np.float32))
    stack = np.stack(outputs)
    spread = stack.std(axis=0) if job.members > 1 else None
    seconds = time.perf_counter() - started
    return TileFit(
        job.index, stack.mean(axis=0), spread, str(device), run.chosen_step, run.trace, run.notes, seconds, warnings
    )


@gdal_exceptions()
def fit_tiles(
    jobs: Sequence[TileJob],
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
) -> list[TileFit]:
    """Fit several tiles, together in one vectorised fit where they can be (see :mod:`core.batched`).

    A GPU running out of memory retries with half the tiles at a time, then one
    tile at a time (which falls back to the CPU with a warning).
    """
    if len(jobs) == 1 or any(job.members > 1 for job in jobs):
        return [fit_tile(job, share_progress(progress, i, len(jobs)), cancel, log) for i, job in enumerate(jobs)]
    started = time.perf_counter()
    samples, warnings = zip(*(_read_tile(job) for job in jobs))
    problems = [sample.problem() for sample in samples]
    settings = jobs[0].settings
    if not batchable(problems, settings):
        return [fit_tile(job, share_progress(progress, i, len(jobs)), cancel, log) for i, job in enumerate(jobs)]
    device = select_device(jobs[0].device)
    try:
        fits = fit_batch(problems, settings, device, progress, cancel)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        if log:
            log(f"warning: the GPU ran out of memory fitting {len(jobs)} tiles together; trying fewer at a time")
        half = len(jobs) // 2
        return [*fit_tiles(jobs[:half], None, cancel, log), *fit_tiles(jobs[half:], progress, cancel, log)]
    seconds = time.perf_counter() - started
    return [
        TileFit(job.index, sample.scaling.invert(run.output).astype(np.float32), None, str(device), run.chosen_step,
                run.trace, run.notes, seconds / len(jobs), list(tile_warnings))
        for job, sample, run, tile_warnings in zip(jobs, samples, fits, warnings)
    ]  # fmt: skip


def _read_tile(job: TileJob) -> tuple[Sample, list[str]]:
    """A tile's normalised sample, read by window, and the warnings about it."""
    target = read_window(job.target, job.target_window)
    known = np.isfinite(target)
    if job.mask is not None:
        known &= ~job.mask.read(job.window)
    guides = [read_window(path, job.window) for path in job.guides]
    warnings = []
    if not known.any():
        warnings.append(
            f"the tile at row {job.window.row}, column {job.window.col} has no clear pixel: its fill comes from "
            "the guides alone; larger tiles give it clear pixels to learn from"
        )
    shape = (job.window.height, job.window.width)
    return Sample.prepare(target, known, guides, shape, job.sar, job.scalings), warnings


class _Blend:
    """Feather-weighted sums of tile outputs, on disk (a float32 GeoTIFF in a scratch folder)."""

    def __init__(self, folder: str, height: int, width: int, bands: int, spread: bool) -> None:
        self.bands, self.spread = bands, spread
        count = bands * (2 if spread else 1) + 1
        creation = ["TILED=YES", "SPARSE_OK=TRUE", "BIGTIFF=IF_SAFER"]
        driver = gdal.GetDriverByName("GTiff")
        self.ds = driver.Create(f"{folder}/blend.tif", width, height, count, gdal.GDT_Float32, options=creation)

    def __enter__(self) -> _Blend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ds = None  # closed before its scratch folder is removed, also on errors (Windows keeps open files)

    def _read(self, window: Window) -> np.ndarray:
        return self.ds.ReadAsArray(window.col, window.row, window.width, window.height).reshape(
            self.ds.RasterCount, window.height, window.width
        )

    def add(self, window: Window, fitted: TileFit, weight: np.ndarray) -> None:
        sums = self._read(window)
        sums[: self.bands] += fitted.mean * weight
        if self.spread and fitted.spread is not None:
            sums[self.bands : 2 * self.bands] += fitted.spread * weight
        sums[-1] += weight
        for i in range(self.ds.RasterCount):
            self.ds.GetRasterBand(i + 1).WriteArray(sums[i], window.col, window.row)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """The blended mean (NaN where no tile was fitted) and spread of a window."""
        sums = self._read(window).astype(np.float64)
        weight = sums[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(weight > 0, sums[: self.bands] / weight, np.nan)
            spread = np.where(weight > 0, sums[self.bands : 2 * self.bands] / weight, 0.0) if self.spread else None
        return mean, spread


@dataclass
class SceneResult:
    """What a file-to-file run did."""

    output: str
    tiles: int  # tiles covering the output grid
    fitted: int  # tiles fitted
    device: str
    seconds: float  # wall time of the whole run
    chosen_steps: list[int]
    trace: list[TracePoint]  # of the first fitted tile (the only one when the raster fits in one tile)
    notes: list[str] = field(default_factory=list)
    uncertainty: str | None = None
    validation: Validation | None = None
    previews: dict[str, np.ndarray] = field(default_factory=dict)  # caption -> image or mask, <= 256 px a side


@dataclass
class _Run:
    """The shared arguments of a run, checked once."""

    settings: Settings
    device: str
    sar: tuple[int, ...]
    tile_size: int
    tile_overlap: int  # by default TILE_OVERLAP, at most a quarter of the tile
    scheduler: str | None
    members: int
    batch_size: int  # tiles fitted together here (default: 8 on a CUDA GPU, 1 elsewhere)
    progress: Progress | None
    cancel: CancelCheck | None
    log: Log | None

    @classmethod
    def make(cls, method: str, stopping: str, steps: int, device: str, seed: int, **kwargs) -> _Run:
        options = kwargs.pop("options")
        if kwargs["tile_overlap"] is None:
            kwargs["tile_overlap"] = min(TILE_OVERLAP, kwargs["tile_size"] // 4)
        settings = make_settings(method, stopping, steps, seed, options)
        chosen = select_device(device)  # a missing device is an error before any work
        if kwargs["batch_size"] is None:
            kwargs["batch_size"] = 8 if chosen.type == "cuda" else 1
        if kwargs["batch_size"] < 1:
            raise InputError("the batch size must be at least 1 tile")
        if kwargs["tile_size"] < 16 or not 0 <= kwargs["tile_overlap"] < kwargs["tile_size"] // 2:
            raise InputError("the tile size must be at least 16 px and more than twice the tile overlap")
        if kwargs["members"] < 1:
            raise InputError("the ensemble needs at least one member")
        kwargs["sar"] = tuple(kwargs["sar"])
        return cls(settings=settings, device=device, **kwargs)

    def say(self, message: str) -> None:
        if self.log:
            self.log(message)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled by the user")


def _scalings(
    target: str, mask: _MaskLayer | None, guides: Sequence[str], sar: Sequence[int]
) -> tuple[BandScaling, ...]:
    """Global normalisation of every domain from a subsampled read of the whole grid."""
    values = read_decimated(target)
    known = np.isfinite(values)
    if mask is not None:
        known &= ~mask.read_decimated()
    return tuple(domain_scalings(values, known, [read_decimated(path) for path in guides], sar))


def _fit_and_blend(run: _Run, jobs: list[TileJob], blend: _Blend, overlap: int, tiled: bool) -> list[TileFit]:
    """Fit the jobs (here or on Dask) and blend each tile as it comes back."""
    fits: list[TileFit] = []

    def done(fitted: TileFit) -> None:
        window = jobs[fitted.index].window
        blend.add(window, fitted, feather(window, overlap) if tiled else np.ones((window.height, window.width)))
        for warning in fitted.warnings:
            run.say(f"warning: {warning}")
        fits.append(fitted)

    run_tiles(
        jobs, fit_tiles, done, group_size=run.batch_size, scheduler=run.scheduler, progress=run.progress,
        cancel=run.cancel, log=run.log,
    )  # fmt: skip
    return fits


def _result(run: _Run, output: str, windows: list, fits: list[TileFit], started: float, **extra) -> SceneResult:
    fits = sorted(fits, key=lambda f: f.index)
    notes: list[str] = []
    for fitted in fits:
        notes += [n for n in fitted.notes if n not in notes]
    if len(windows) > 1:
        notes.append(f"tiled: {len(fits)} of {len(windows)} tiles of {run.tile_size} px were fitted")
    devices = sorted({f.device for f in fits}) or ["none"]
    return SceneResult(
        output,
        len(windows),
        len(fits),
        ", ".join(devices),
        time.perf_counter() - started,
        [f.chosen_step for f in fits],
        fits[0].trace if fits else [],
        notes,
        **extra,
    )


@gdal_exceptions()
def inpaint_raster(
    target: str,
    mask: CloudMask,
    guides: Sequence[str],
    output: str,
    *,
    method: str = "emergent",
    stopping: str = "fixed",
    steps: int = 4000,
    device: str = "auto",
    seed: int = 0,
    sar_guides: Sequence[int] = (),
    tile_size: int = TILE_SIZE,
    tile_overlap: int | None = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    ensemble: int = 1,
    uncertainty: str | None = None,
    self_validation: bool = False,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
    **options,
) -> SceneResult:
    """Fill the missing pixels of the raster file ``target`` and write the result to ``output`` (GeoTIFF).

    Missing pixels are the ``mask``'s clouds and the target's nodata; guides
    and mask may be on any grid or CRS (warped to the target's grid; outside a
    guide's coverage its pixels are left out of its loss). The output keeps the
    target's grid, data type, nodata and band names, and its clear pixels.
    ``scheduler`` runs the tiles on Dask (see :func:`core.distributed.run_tiles`);
    here, ``batch_size`` tiles are fitted together (default: 8 on a CUDA GPU,
    where one step of N small networks should cost little more than one (not yet
    measured), 1 on a CPU, where a batch is slower than single fits).
    With ``ensemble`` K > 1 every tile is fitted K times with seeds ``seed``..
    ``seed + K - 1``: the output is their mean and ``uncertainty`` (a path)
    receives their standard deviation on the filled pixels (0 elsewhere).
    ``self_validation`` first scores the fill on clear pixels of one cloudy
    tile (the one most evenly split between cloud and clear ground) hidden
    under synthetic clouds (:mod:`core.self_validation`).
    Other arguments and ``options`` are those of :func:`core.api.inpaint`.
    """
    started = time.perf_counter()
    run = _Run.make(
        method, stopping, steps, device, seed, sar=sar_guides, tile_size=tile_size, tile_overlap=tile_overlap,
        scheduler=scheduler, members=ensemble, batch_size=batch_size, progress=progress, cancel=cancel, log=log,
        options=options,
    )  # fmt: skip
    if mask.raster is None and mask.polygons is None:
        raise InputError("give a cloud mask: a mask raster, cloud polygons or both")
    grid = grid_of(target)
    bands, meta = writer_profile(target)
    inputs = [target, mask.raster, mask.polygons, *guides]
    with tempfile.TemporaryDirectory(prefix="mcpn-", dir=_scratch_parent([output, uncertainty], inputs)) as scratch:
        layer = _MaskLayer(
            aligned_path(mask.raster, grid, scratch, "near", "cloud mask") if mask.raster else None,
            tuple(masks.parse_mask_values(mask.values)),
            rasterise(mask.polygons, grid, f"{scratch}/polygons.tif") if mask.polygons else None,
            _dilation(mask.dilation),
            grid.height,
            grid.width,
        )
        guide_paths = tuple(aligned_path(p, grid, scratch, "bilinear", "guide") for p in guides)
        windows = tile_windows(grid.height, grid.width, run.tile_size, run.tile_overlap)
        cloudy, clear, any_known = [], [], np.zeros(bands, dtype=bool)
        for window in windows:
            run.check_cancel()
            values = read_window(target, window)
            known = np.isfinite(values) & ~layer.read(window)
            any_known |= known.any(axis=(1, 2))
            if not known.all():
                cloudy.append(window)
                clear.append(int(known.all(axis=0).sum()))
        if not cloudy:
            run.say("the mask marks no pixel as missing and the target has no nodata: the target is copied")
        elif not any_known.all():
            raise InputError(
                "no pixel of the target is known (the cloud mask or nodata covers it all): nothing to learn from"
            )
        scalings = _scalings(target, layer, guide_paths, run.sar) if cloudy else ()
        jobs = [
            TileJob(i, w, target, w, guide_paths, layer, scalings, run.sar, run.settings, run.device, run.members)
            for i, w in enumerate(cloudy)
        ]
        tiles = f" in {len(cloudy)} of {len(windows)} tiles" if len(windows) > 1 else ""
        if cloudy:
            run.say(f"fitting MCPN {run.settings.method} for up to {run.settings.steps} steps{tiles}")
        validation = None
        if self_validation and cloudy:
            balance = [min(count, w.height * w.width - count) for w, count in zip(cloudy, clear)]
            window = cloudy[int(np.argmax(balance))]  # as much cloud shape as clear ground to hide it on
            validation = _self_validate(run, target, layer, guide_paths, scalings, window, share=1 / (len(jobs) + 1))
        filled = 0
        with _Blend(scratch, grid.height, grid.width, bands, spread=uncertainty is not None) as blend:
            fits = _fit_and_blend(run, jobs, blend, run.tile_overlap, len(windows) > 1)
            with (
                RasterWriter(output, grid, bands, **meta) as writer,
                _uncertainty_writer(uncertainty, grid, bands) as spread,
            ):
                for window in tile_windows(grid.height, grid.width, _WRITE_BLOCK, 0):
                    run.check_cancel()
                    values = read_window(target, window)
                    known = np.isfinite(values) & ~layer.read(window)
                    filled += int((~known.all(axis=0)).sum())
                    mean, deviation = blend.read(window)
                    writer.write(window, np.where(known, values, mean))
                    if spread is not None:
                        spread.write(window, np.where(known, 0.0, deviation))
                if spread is not None:
                    spread.commit()
                writer.commit()
        run.say(f"{filled} of {grid.width * grid.height} pixels filled (clouds and nodata)")
        previews = {
            "input": read_decimated(target, _PREVIEW_SIDE),
            "cloud mask": layer.read_decimated(_PREVIEW_SIDE),
            "output": read_decimated(output, _PREVIEW_SIDE),
        }
    return _result(
        run, output, windows, fits, started, uncertainty=uncertainty, validation=validation, previews=previews
    )


def _self_validate(
    run: _Run,
    target: str,
    layer: _MaskLayer,
    guides: Sequence[str],
    scalings: Sequence[BandScaling],
    window: Window,
    share: float,
) -> Validation:
    """Self-validation on one cloudy tile: its clear pixels hidden under synthetic clouds, fitted as the run would.

    The tile is normalised with the scene's ``scalings``, as the run's tiles are.
    """
    run.say(
        f"self-validation: hiding clear pixels of the tile at row {window.row}, column {window.col} under synthetic "
        "clouds and filling them (one extra fit)"
    )
    values = read_window(target, window)
    guide_values = [read_window(path, window) for path in guides]

    def fill(masked: np.ndarray, cloud: np.ndarray) -> np.ndarray:
        known = np.isfinite(masked) & ~cloud
        sample = Sample.prepare(masked, known, guide_values, masked.shape[1:], run.sar, scalings)
        progress = _fraction(run.progress, 0.0, share)
        fitted, _ = fit_with_fallback(sample.problem(), run.settings, select_device(run.device), progress, run.cancel)
        return np.where(known, masked, sample.scaling.invert(fitted.output))

    validation = validate(values, layer.read(window), fill, seed=run.settings.seed)
    run.say(
        f"self-validation on {validation.hidden_pixels} hidden pixels: MCPN SSIM {validation.mcpn_ssim:.3f}, "
        f"RMSE {validation.mcpn_rmse:.4g}; GDAL Fill nodata SSIM {validation.gdal_ssim:.3f}, "
        f"RMSE {validation.gdal_rmse:.4g}"
    )
    if run.progress is not None:
        run.progress = _fraction(run.progress, share, 1.0 - share)
    return validation


def _fraction(progress: Progress | None, start: float, share: float) -> Progress | None:
    """Progress of a part that runs from ``start`` to ``start + share`` of the whole (0..1)."""
    if progress is None:
        return None
    return lambda step, total: progress(round(1000 * (start + share * step / max(total, 1))), 1000)


@gdal_exceptions()
def super_resolve_raster(
    low_res: str,
    guides: Sequence[str],
    output: str,
    *,
    method: str = "direct",
    stopping: str = "fixed",
    steps: int = 4000,
    device: str = "auto",
    seed: int = 0,
    sar_guides: Sequence[int] = (),
    tile_size: int = TILE_SIZE,
    tile_overlap: int | None = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
    **options,
) -> SceneResult:
    """Super-resolve the raster file ``low_res`` onto the first guide's grid and write ``output`` (GeoTIFF).

    The scale factor (any, not only integers) comes from the grids: ``low_res``
    is read over the first guide's extent at its own pixel size. Tiles of
    ``tile_size`` output pixels are cut at low-resolution pixel boundaries, all
    fitted and blended. The output keeps the input's data type, nodata and band
    names; where the input has no data (nodata, or outside its extent), so has
    the output (in bands with a nodata value). Other arguments as for
    :func:`inpaint_raster`.
    """
    started = time.perf_counter()
    run = _Run.make(
        method, stopping, steps, device, seed, sar=sar_guides, tile_size=tile_size, tile_overlap=tile_overlap,
        scheduler=scheduler, members=1, batch_size=batch_size, progress=progress, cancel=cancel, log=log,
        options=options,
    )  # fmt: skip
    if not guides:
        raise InputError("super-resolution needs at least one high-resolution guide")
    grid = grid_of(guides[0])
    bands, meta = writer_profile(low_res)
    low_grid = low_res_grid(low_res, grid)
    if low_grid.width >= grid.width or low_grid.height >= grid.height:
        raise InputError(
            f"the low-resolution raster ({low_grid.width} x {low_grid.height} px over the guides' extent) must be "
            f"coarser than the first guide ({grid.width} x {grid.height} px): choose high-resolution guides"
        )
    scale = (grid.height / low_grid.height, grid.width / low_grid.width)
    run.say(f"scale factor {scale[1]:.3g} x {scale[0]:.3g}; output grid {grid.width} x {grid.height} px")
    with tempfile.TemporaryDirectory(prefix="mcpn-", dir=_scratch_parent([output], [low_res, *guides])) as scratch:
        low_path = _low_res_path(low_res, low_grid, scratch)
        guide_paths = tuple(aligned_path(p, grid, scratch, "bilinear", "guide") for p in guides)
        pairs = _low_res_tiles(low_grid, grid, scale, run.tile_size, run.tile_overlap)
        scalings = _scalings(low_path, None, guide_paths, run.sar)
        jobs = [
            TileJob(i, high, low_path, low, guide_paths, None, scalings, run.sar, run.settings, run.device)
            for i, (low, high) in enumerate(pairs)
        ]
        run.say(f"fitting MCPN {run.settings.method} for up to {run.settings.steps} steps in {len(jobs)} tile(s)")
        overlap = max(1, run.tile_overlap) if len(jobs) > 1 else 0
        # Where the input has no data (nodata, or outside it), so has the output: each output pixel
        # takes the validity of the input pixel it lies in. A band without a nodata value cannot mark
        # missing pixels, so it keeps the fitted values everywhere.
        footprint = aligned_path(low_res, grid, scratch, "near", "low-resolution raster")
        no_flag = np.array([value is None for value in meta["nodata"]])[:, None, None]
        with _Blend(scratch, grid.height, grid.width, bands, spread=False) as blend:
            fits = _fit_and_blend(run, jobs, blend, overlap, len(jobs) > 1)
            with RasterWriter(output, grid, bands, **meta) as writer:
                for window in tile_windows(grid.height, grid.width, _WRITE_BLOCK, 0):
                    run.check_cancel()
                    valid = np.isfinite(read_window(footprint, window)) | no_flag
                    writer.write(window, np.where(valid, blend.read(window)[0], np.nan))
                writer.commit()
    return _result(run, output, pairs, fits, started)


def _low_res_path(path: str, low_grid: Grid, scratch: str) -> str:
    """``path`` itself when it lies on ``low_grid``, else a VRT averaging it onto that grid."""
    if grid_of(path).same_as(low_grid, tolerance=1e-3):
        return path
    return aligned_path(path, low_grid, scratch, "average", "low-resolution raster")


def _low_res_tiles(
    low: Grid, high: Grid, scale: tuple[float, float], tile: int, overlap: int
) -> list[tuple[Window, Window]]:
    """Pairs of (low-resolution window, output window) cut at low-resolution pixel boundaries."""
    low_tile = max(4, math.floor(tile / max(scale)))
    low_overlap = (
        min(low_tile // 2 - 1, math.ceil(overlap / min(scale))) if low_tile < max(low.height, low.width) else 0
    )
    pairs = []
    for window in tile_windows(low.height, low.width, low_tile, max(0, low_overlap)):
        top, left = round(window.row * scale[0]), round(window.col * scale[1])
        bottom = round((window.row + window.height) * scale[0])
        right = round((window.col + window.width) * scale[1])
        pairs.append((window, Window(top, left, min(bottom, high.height) - top, min(right, high.width) - left)))
    return pairs


def _uncertainty_writer(path: str | None, grid: Grid, bands: int) -> AbstractContextManager:
    """A float32 writer for the uncertainty layer, or a no-op context when none is asked for."""
    if path is None:
        return nullcontext(None)
    return RasterWriter(path, grid, bands, gdal.GDT_Float32, None, [f"spread of band {i + 1}" for i in range(bands)])


def _dilation(pixels: int) -> int:
    if int(pixels) < 0:
        raise InputError("the mask dilation must be zero or a positive number of pixels")
    return int(pixels)


def _scratch_parent(outputs: Sequence[str | None], inputs: Sequence[str | None]) -> str:
    """The first output's folder, where scratch files go (same disk, removed at the end).

    Every output folder must be writable, and no output may be an input or another output.
    """
    outputs = [str(o) for o in outputs if o]
    for index, output in enumerate(outputs):
        if any(source and same_file(output, str(source)) for source in inputs):
            raise RasterError(f"The output '{output}' is also an input: choose another file name for the output.")
        if any(same_file(output, other) for other in outputs[:index]):
            raise RasterError(f"'{output}' is given for two outputs: choose a different file name for each.")
        folder = os.path.dirname(os.path.realpath(output))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise RasterError(f"Cannot write the output raster '{output}': {exc}") from None
        if not os.access(folder, os.W_OK):
            raise RasterError(f"Cannot write the output raster '{output}': the folder '{folder}' is not writable.")
    return os.path.dirname(os.path.realpath(outputs[0]))
