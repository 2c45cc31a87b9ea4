"""Tiles of a raster run: the job of one tile, its fit, and the on-disk blend of the fitted tiles."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
from osgeo import gdal

from ..anchors import scene_choice
from ..callbacks import Callbacks
from ..choices import Scope
from ..config import Settings
from ..model.device import fit_on_device, fit_scene_on_device
from ..model.fitting import TIME_NOTE, TracePoint
from ..model.scene import Checkpoints, application_seconds, apply_checkpoints, refine
from ..raster.gdal_exceptions import gdal_exceptions
from ..raster.io import read_window
from ..raster.masks import MaskLayer
from ..raster.tiling import Window, feather
from .distributed import run_tiles
from .normalisation import BandScaling
from .sample import Sample
from .stages import timed

__all__ = ["Blend", "FittedTile", "TileJob", "apply_scene", "fit_all", "fit_scene", "fit_tiles"]

SCENE_TILES = 8  # tiles a scene network is fitted on, spread over the scene
APPLICATION_MARGIN = 1.1  # the time kept for applying a scene network, over its measured cost (blend, write)


@dataclass(frozen=True)
class TileJob:
    """Everything the fit of one tile needs (picklable, for Dask workers)."""

    index: int
    window: Window  # on the output grid
    target: str  # raster the target is read from
    target_window: Window  # its window there (the same as ``window`` for inpainting)
    guides: tuple[str, ...]  # rasters on the output grid
    mask: MaskLayer | None  # inpainting only
    scalings: tuple[BandScaling, ...]  # target, then each guide
    radar: tuple[int, ...]  # guides given in linear backscatter
    settings: Settings
    estimates: tuple[str, ...] | None = None  # the inpainting anchor of each band, when chosen for the scene
    fitted_on: bool = True  # False: the scene network is only applied to the tile (its anchor is not cross-fitted)

    def read(self, times: dict[str, float]) -> tuple[Sample, list[str]]:
        """The tile's normalised sample, read by window, and the warnings about it; the time read and
        the instant estimates took is added to ``times``."""
        with timed(times, "read"):
            target = read_window(self.target, self.target_window)
            known = np.isfinite(target)
            if self.mask is not None:
                known &= ~self.mask.read(self.window)
            guides = [read_window(path, self.window) for path in self.guides]
        warnings = []
        if not known.any():
            warnings.append(
                f"the tile at row {self.window.row}, column {self.window.col} has no clear pixel: its fill comes "
                "from the guides alone; larger tiles give it clear pixels to learn from"
            )
        shape = (self.window.height, self.window.width)
        with timed(times, "estimates"):
            sample = Sample.prepare(
                target, known, guides, shape, self.settings, self.radar, self.scalings, self.estimates, self.fitted_on
            )
        return sample, warnings


@dataclass
class FittedTile:
    """The fitted tile in the target's units: mean over the ensemble and its spread."""

    index: int
    mean: np.ndarray | None  # (B, h, w); None once blended (:meth:`Blend.add`)
    spread: np.ndarray | None  # (B, h, w) standard deviation over the members, None for one member
    device: str
    chosen_step: int
    trace: list[TracePoint]
    notes: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)  # by stage (:mod:`core.pipeline.stages`)


@gdal_exceptions()
def fit_tiles(jobs: Sequence[TileJob], callbacks: Callbacks | None = None) -> list[FittedTile]:
    """Fit the tiles: together in one vectorised fit where their shapes agree, each member of an ensemble alone."""
    callbacks = callbacks or Callbacks()
    started = time.perf_counter()
    settings = jobs[0].settings
    times = [{} for _ in jobs]
    samples, warnings = zip(*(job.read(tile_times) for job, tile_times in zip(jobs, times)))
    if settings.ensemble == 1 and len({s.problem().signature() for s in samples}) == 1:
        fitting = time.perf_counter()
        fits, device = fit_on_device([s.problem() for s in samples], settings, callbacks)
        seconds = (time.perf_counter() - started) / len(jobs)
        for tile_times in times:
            tile_times["fit"] = (time.perf_counter() - fitting) / len(jobs)
        return [
            _tile_fit(job, sample, [run.output], str(device), run, seconds, tile_warnings, tile_times)
            for job, sample, run, tile_warnings, tile_times in zip(jobs, samples, fits, warnings, times)
        ]
    results = []
    members = settings.ensemble
    for index, (job, sample, tile_warnings, tile_times) in enumerate(zip(jobs, samples, warnings, times)):
        outputs = []
        for member in range(members):
            part = callbacks.part(index * members + member, len(jobs) * members)
            member_settings = replace(settings, seed=settings.seed + member)
            with timed(tile_times, "fit"):
                (run,), device = fit_on_device([sample.problem()], member_settings, part)
            outputs.append(run.output)
        seconds = time.perf_counter() - started
        results.append(_tile_fit(job, sample, outputs, str(device), run, seconds, tile_warnings, tile_times))
        started = time.perf_counter()
    return results


def fit_all(
    jobs: Sequence[TileJob], add: Callable[[FittedTile], None], times: dict[str, float], callbacks: Callbacks
) -> None:
    """Fit every job and ``add`` each fitted tile: each tile on its own, or, with ``Scope.SCENE``, several tiles
    and no ensemble, one network for the scene (its fit timed in ``times``) applied to every tile; here or on
    Dask."""
    if not jobs:
        return
    settings = jobs[0].settings
    fit_group: Callable[..., list[FittedTile]] = fit_tiles
    if settings.scope is Scope.SCENE and settings.ensemble > 1 and len(jobs) > 1:
        callbacks.say("the uncertainty needs several fits of every tile: one network per tile, not for the scene")
    elif settings.scope is Scope.SCENE and len(jobs) > 1:
        with timed(times, "fit"):  # three quarters of the progress bar; its deadline is set by fit_scene
            checkpoints, estimates = fit_scene(jobs, replace(callbacks.part(0, 4, 3), deadline=callbacks.deadline))
        fit_group = partial(apply_scene, checkpoints)
        # without refinement no tile is fitted on: no need to cross-fit their estimates (NSPI's folds cost most)
        jobs = [replace(job, estimates=estimates, fitted_on=bool(settings.refine_steps)) for job in jobs]
        callbacks = callbacks.part(3, 4)
    run_tiles(jobs, fit_group, add, settings.batch_size, settings.scheduler, callbacks)


def fit_scene(jobs: Sequence[TileJob], callbacks: Callbacks) -> tuple[Checkpoints, tuple[str, ...] | None]:
    """The scene network (:mod:`core.model.scene`), fitted on up to :data:`SCENE_TILES` full-size tiles spread
    evenly over the jobs, and the instant estimate of each band for every tile, chosen on those tiles' held-out
    pixels together (:func:`core.anchors.scene_choice`; None for super-resolution, whose tiles choose their own).

    With a deadline (the run's), the fit stops early enough to leave the time that applying the network to
    every job takes (:func:`_application_reserve`); with refinement, a quarter of what is left is the tiles'.
    """
    settings = jobs[0].settings
    full = [j for j in jobs if (j.window.height, j.window.width) == (settings.tile_size,) * 2] or list(jobs)
    count = min(SCENE_TILES, len(full))
    picks = [full[i] for i in sorted({round(i * (len(full) - 1) / max(1, count - 1)) for i in range(count)})]
    samples = [job.read({})[0] for job in picks]  # timed as part of the scene fit
    estimates = scene_choice([s.anchor for s in samples if s.anchor is not None and s.degradation is None])
    if estimates is not None:  # the network learns to correct the estimate every tile will get
        estimates = tuple(estimates)
        callbacks.say(
            f"instant estimate for every tile, chosen on the held-out pixels of {len(samples)} tiles: "
            + ", ".join(f"band {band} {name}" for band, name in enumerate(estimates, 1))
        )
        samples = [replace(job, estimates=estimates).read({})[0] for job in picks]
    if callbacks.deadline is not None:
        reserve = _application_reserve(jobs, estimates, callbacks)
        left = callbacks.deadline - reserve - time.monotonic()
        left *= 3 / 4 if settings.refine_steps else 1
        callbacks = replace(callbacks, deadline=time.monotonic() + left)
        callbacks.say(f"time limit: the scene network gets {max(0.0, left):.1f} s")
    callbacks.say(f"fitting one network for the scene on {len(samples)} of {len(jobs)} tiles")
    return fit_scene_on_device([s.problem() for s in samples], settings, callbacks), estimates


def _application_reserve(jobs: Sequence[TileJob], estimates: tuple[str, ...] | None, callbacks: Callbacks) -> float:
    """Seconds to keep for applying the scene network to every job: one job's read, instant estimates and
    network passes (:func:`core.model.scene.application_seconds`), measured, times the jobs, plus
    :data:`APPLICATION_MARGIN` for the blend and the write."""
    settings = jobs[0].settings
    job = replace(jobs[len(jobs) // 2], estimates=estimates, fitted_on=bool(settings.refine_steps))
    started = time.perf_counter()
    sample = job.read({})[0]
    seconds = time.perf_counter() - started + application_seconds(sample.problem(), settings, settings.device.torch())
    reserve = APPLICATION_MARGIN * seconds * len(jobs)
    callbacks.say(
        f"time limit: {reserve:.1f} s kept for the instant estimates and the network's passes over "
        f"{len(jobs)} tiles ({seconds:.2f} s a tile, measured on one)"
    )
    return reserve


def apply_scene(
    checkpoints: Checkpoints, jobs: Sequence[TileJob], callbacks: Callbacks | None = None
) -> list[FittedTile]:
    """Each tile's output from the scene network: a forward pass per checkpoint, the one its held-out pixels
    choose (its instant estimate when none is clearly better)."""
    callbacks = callbacks or Callbacks()
    results = []
    for index, job in enumerate(jobs):
        callbacks.check_cancel()
        started, times = time.perf_counter(), {}
        sample, warnings = job.read(times)
        device = job.settings.device.torch()
        if callbacks.out_of_time() and sample.anchor is not None:  # behind time: the estimate, as it is
            with timed(times, "prediction"):
                run = apply_checkpoints(sample.problem(), job.settings, [], device)
            run.notes.append(f"{TIME_NOTE}: the instant estimate kept, without the network's passes")
        elif job.settings.refine_steps:
            with timed(times, "refinement"):
                run = refine(sample.problem(), job.settings, checkpoints, device, callbacks.part(index, len(jobs)))
        else:
            with timed(times, "prediction"):
                run = apply_checkpoints(sample.problem(), job.settings, checkpoints, device)
        if run.chosen_step > checkpoints[-1][0]:
            run.notes.append(f"refined on this tile: step {run.chosen_step} kept")
        elif run.chosen_step:
            run.notes.append(f"scene network checkpoint kept: step {run.chosen_step}")
        seconds = time.perf_counter() - started
        results.append(_tile_fit(job, sample, [run.output], str(device), run, seconds, warnings, times))
        if not job.settings.refine_steps:
            callbacks.report(index + 1, len(jobs))
    return results


def _tile_fit(
    job: TileJob, sample: Sample, outputs: list, device: str, run, seconds: float, warnings, times: dict[str, float]
) -> FittedTile:
    """The tile's outputs in the target's units: their mean and, for an ensemble, their spread."""
    stack = np.stack([sample.scaling.invert(output).astype(np.float32) for output in outputs])
    spread = stack.std(axis=0) if len(outputs) > 1 else None
    notes = [n for n in [sample.describe_anchor(), *run.notes] if n]
    return FittedTile(
        job.index, stack.mean(axis=0), spread, device, run.chosen_step, run.trace, notes, seconds, list(warnings), times
    )


class Blend:
    """Feather-weighted sums of the fitted tiles, on disk (a float32 GeoTIFF in a scratch folder).

    ``windows`` are the tiles' windows by job index, each feathered over
    ``overlap`` pixels (0: not feathered). :meth:`add` keeps every fitted tile in :attr:`fits`, without its
    pixels: memory stays flat however many tiles a scene has.
    """

    def __init__(
        self, folder: str, height: int, width: int, bands: int, spread: bool, windows: Sequence[Window], overlap: int
    ) -> None:
        self.bands, self.spread = bands, spread
        self.windows, self.overlap = list(windows), overlap
        self.fits: list[FittedTile] = []
        count = bands * (2 if spread else 1) + 1
        creation = ["TILED=YES", "SPARSE_OK=TRUE", "BIGTIFF=IF_SAFER"]
        driver = gdal.GetDriverByName("GTiff")
        self.ds = driver.Create(f"{folder}/blend.tif", width, height, count, gdal.GDT_Float32, options=creation)

    def __enter__(self) -> Blend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ds = None  # closed before its scratch folder is removed, also on errors (Windows keeps open files)

    def _read(self, window: Window) -> np.ndarray:
        return self.ds.ReadAsArray(window.col, window.row, window.width, window.height).reshape(
            self.ds.RasterCount, window.height, window.width
        )

    def add(self, fitted: FittedTile) -> None:
        """Blend a fitted tile into the sums."""
        window = self.windows[fitted.index]
        weight = feather(window, self.overlap)
        sums = self._read(window)
        sums[: self.bands] += fitted.mean * weight
        if self.spread and fitted.spread is not None:
            sums[self.bands : 2 * self.bands] += fitted.spread * weight
        sums[-1] += weight
        for i in range(self.ds.RasterCount):
            self.ds.GetRasterBand(i + 1).WriteArray(sums[i], window.col, window.row)
        self.ds.FlushCache()  # to disk and out of GDAL's block cache, which would otherwise grow with the scene
        self.fits.append(replace(fitted, mean=None, spread=None))

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """The blended mean (NaN where no tile was fitted) and spread of a window (read once, in order: its blocks
        leave GDAL's block cache at once)."""
        sums = self._read(window).astype(np.float64)
        self.ds.FlushCache()
        weight = sums[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(weight > 0, sums[: self.bands] / weight, np.nan)
            spread = np.where(weight > 0, sums[self.bands : 2 * self.bands] / weight, 0.0) if self.spread else None
        return mean, spread
