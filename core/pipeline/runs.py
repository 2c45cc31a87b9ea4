"""What the two raster pipelines share: the scene's normalisation, the scratch folder, the result.

Both pipelines read whole rasters tile by tile: guides and masks on other
grids are warped lazily (GDAL VRTs) onto the working grid; every tile is read
by window and fitted with the scene's global normalisation (from a subsampled
read of the whole raster); overlapping tiles are blended with feathered
weights in an on-disk accumulator and the output is written window by window,
so peak memory depends on the tile size, not on the scene.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..callbacks import Callbacks
from ..config import Settings
from ..model.fitting import TIME_NOTE, TracePoint
from ..raster.checks import output_problem
from ..raster.io import RasterError, read_decimated
from ..raster.masks import MaskLayer
from ..raster.tiling import Window
from ..trust.self_validation import Validation
from .normalisation import BandScaling
from .sample import domain_scalings
from .stages import describe, merged
from .tiles import FittedTile

__all__ = ["RunResult", "finish", "scalings_of", "scratch_folder", "summarised"]

WRITE_BLOCK = 512
NOTE_VARIANTS = 3  # distinct tile notes with the same opening listed one by one; more are summed up
PREVIEW_SIDE = 256


@dataclass
class RunResult:
    """What a file-to-file run did."""

    output: str
    tiles: int  # tiles covering the output grid
    fitted: int  # tiles fitted
    device: str
    seconds: float  # wall time of the whole run
    chosen_steps: list[int]  # per fitted tile; 0 where the anchor was kept
    trace: list[TracePoint]  # of the first fitted tile (the only one when the raster fits in one tile)
    notes: list[str] = field(default_factory=list)
    uncertainty: str | None = None
    validation: Validation | None = None
    previews: dict[str, np.ndarray] = field(default_factory=dict)  # caption -> image or mask, <= 256 px a side
    stages: dict[str, float] = field(default_factory=dict)  # seconds by stage (:mod:`core.pipeline.stages`)


def scalings_of(
    target: str, mask: MaskLayer | None, guides: Sequence[str], radar: Sequence[int]
) -> tuple[BandScaling, ...]:
    """Global normalisation of every domain from a subsampled read of the whole grid."""
    values = read_decimated(target)
    known = np.isfinite(values)
    if mask is not None:
        known &= ~mask.read_decimated()
    return tuple(domain_scalings(values, known, [read_decimated(path) for path in guides], radar))


def finish(
    settings: Settings,
    output: str,
    windows: Sequence[Window],
    fits: list[FittedTile],
    started: float,
    callbacks: Callbacks,
    times: dict[str, float],
    **extra,
) -> RunResult:
    """The run's result: tiles, devices, the kept steps, every distinct note and the time by stage (the run's
    ``times`` and its tiles'); the tiles' warnings logged."""
    fits = sorted(fits, key=lambda f: f.index)
    seconds = time.perf_counter() - started
    times = merged([times, *(f.times for f in fits)])
    notes = summarised(n for fitted in fits for n in fitted.notes if not n.startswith(TIME_NOTE))
    for fitted in fits:
        for warning in fitted.warnings:
            callbacks.say(f"warning: {warning}")
    if len(windows) > 1:
        notes.append(f"tiled: {len(fits)} of {len(windows)} tiles of {settings.tile_size} px were fitted")
    kept_anchor = sum(f.chosen_step == 0 for f in fits)
    if kept_anchor and settings.anchored:
        notes.append(
            f"{kept_anchor} of {len(fits)} fitted tile(s) kept the instant estimate: the network did not beat it "
            "on the held-out pixels"
        )
    if settings.time_limit:
        stopped = sum(any(n.startswith(TIME_NOTE) for n in f.notes) for f in fits)
        notes.append(
            f"time limit {settings.time_limit:g} min: the run took {seconds / 60:.1f} min; {stopped} of {len(fits)} "
            "tile(s) stopped at their share of it: with their best step so far, or their instant estimate"
        )
    notes.append(describe(times, seconds))
    devices = sorted({f.device for f in fits}) or ["none"]
    return RunResult(
        output,
        len(windows),
        len(fits),
        ", ".join(devices),
        seconds,
        [f.chosen_step for f in fits],
        fits[0].trace if fits else [],
        notes,
        stages=times,
        **extra,
    )


def summarised(notes: Iterable[str]) -> list[str]:
    """The distinct notes of the tiles, in order; where more than :data:`NOTE_VARIANTS` differ after the same
    opening (the text before ``": "``), one line for them: how many, and the first."""
    variants: dict[str, list[str]] = {}
    for note in notes:
        found = variants.setdefault(note.split(": ")[0], [])
        if note not in found:
            found.append(note)
    lines = []
    for opening, found in variants.items():
        if len(found) > NOTE_VARIANTS:
            lines.append(f"{opening}: {len(found)} variants over the tiles, the first: {found[0][len(opening) + 2 :]}")
        else:
            lines += found
    return lines


def scratch_folder(outputs: Sequence[str | None], inputs: Sequence[tuple[str, str | None]]) -> str:
    """The first output's folder, where scratch files go (same disk, removed at the end).

    Each output is checked by :func:`core.raster.checks.output_problem` against the
    ``inputs`` (label, path) and the other outputs; its folder is made if missing.
    """
    outputs = [str(o) for o in outputs if o]
    files = [(label, str(path)) for label, path in inputs if path]
    for index, output in enumerate(outputs):
        problem = output_problem(output, "output raster" if index == 0 else "output", files, outputs[:index])
        if problem:
            raise RasterError(problem)
        folder = os.path.dirname(os.path.realpath(output))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise RasterError(f"Cannot write the output raster '{output}': {exc}") from None
    return os.path.dirname(os.path.realpath(outputs[0]))
