"""One sample ready for fitting: every domain normalised, the held-out pixels and the anchor the network corrects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..anchors import inpainting_anchor
from ..choices import Stopping
from ..classic import Anchor, as_bands
from ..config import Settings
from ..errors import InputError
from ..model.degradation import Degradation
from ..model.evidence import depth_weights, resampling_units
from ..model.fitting import Problem
from ..sharpening import sensor_blur, super_resolution_anchor
from ..trust.self_validation import holdout_mask
from .normalisation import BandScaling, to_decibels

__all__ = ["Sample", "domain_scalings", "guide_bands"]


def guide_bands(guides: Sequence[np.ndarray], shape: tuple[int, int]) -> list[np.ndarray]:
    """The guides as ``(bands, H, W)`` float64 arrays, or an :class:`InputError` if one is not on the ``shape`` grid."""
    guides = [as_bands(g, f"guide {i + 1}") for i, g in enumerate(guides)]
    for index, guide in enumerate(guides):
        if guide.shape[1:] != tuple(shape):
            found, expected = f"{guide.shape[2]} x {guide.shape[1]}", f"{shape[1]} x {shape[0]}"
            raise InputError(f"the guide {index + 1} is {found} pixels, expected {expected} (the target's grid)")
    return guides


def _guide_in_db(guide: np.ndarray, index: int, radar: Sequence[int]) -> np.ndarray:
    return to_decibels(guide).astype(np.float64) if index in radar else guide


def domain_scalings(
    target: np.ndarray, known: np.ndarray, guides: Sequence[np.ndarray], radar: Sequence[int] = ()
) -> list[BandScaling]:
    """Normalisation of the target (from its ``known`` pixels) and of each guide (from its valid pixels)."""
    scalings = [BandScaling.fit(target, known, "target")]
    for index, guide in enumerate(guides):
        guide = _guide_in_db(guide, index, radar)
        scalings.append(BandScaling.fit(guide, np.isfinite(guide), f"guide {index + 1}"))
    return scalings


@dataclass
class Sample:
    """One sample with every domain normalised (NumPy, no batch dimension)."""

    target: np.ndarray  # (B, h, w) float32, zero where unknown
    known: np.ndarray  # (B, h, w) bool: the pixels the loss uses
    holdout: np.ndarray | None  # (B, h, w) bool: known pixels kept out of the loss to score the steps
    holdout_weight: np.ndarray | None  # (h, w): their weights, as deep as the real gap (core.trust.evidence)
    holdout_labels: np.ndarray | None  # (h, w) int: their resampling units, 0 elsewhere
    guides: list[np.ndarray]  # (Bg, H, W) float32, zero where invalid
    guide_valid: list[np.ndarray]  # (Bg, H, W) bool
    scaling: BandScaling  # of the target
    anchor: Anchor | None  # normalised, on the output grid
    degradation: Degradation | None  # super-resolution only

    @classmethod
    def prepare(
        cls,
        target: np.ndarray,
        known: np.ndarray,
        guides: Sequence[np.ndarray],
        shape: tuple[int, int],
        settings: Settings,
        radar: Sequence[int] = (),
        scalings: Sequence[BandScaling] | None = None,
        estimates: Sequence[str] | None = None,
        cross_fit: bool = True,
    ) -> Sample:
        """Normalise ``target`` and ``guides`` (on the output grid ``shape``), hold out pixels, compute the anchor.

        ``scalings`` default to the sample's own; a target on a coarser grid
        than ``shape`` is super-resolved. ``estimates`` names the inpainting anchor of each band when it was
        chosen elsewhere (over the scene); by default it is chosen here, on a second set of held-out pixels.
        Without ``cross_fit`` (a sample a network is applied to, not fitted on) an interpolation is not
        recomputed on the known pixels it reproduces (:func:`core.anchors.cross_fitted`).
        """
        guides = guide_bands(guides, shape)
        known = np.broadcast_to(known, target.shape) & np.isfinite(target)
        scalings = list(scalings) if scalings is not None else domain_scalings(target, known, guides, radar)
        scaled, valids = [], []
        for index, (guide, scaling) in enumerate(zip(guides, scalings[1:])):
            guide = _guide_in_db(guide, index, radar)
            valid = np.isfinite(guide)
            scaled.append(np.where(valid, scaling.apply(guide), 0).astype(np.float32))
            valids.append(valid)
        normalised = np.where(known, scalings[0].apply(target), 0).astype(np.float64)
        valid_guides = [np.where(v, g, np.nan) for g, v in zip(scaled, valids)]
        degradation = None
        if target.shape[1:] != tuple(shape):
            if settings.stopping not in Stopping.offered(super_resolution=True):
                raise InputError(
                    f"{settings.stopping.label.lower()} stopping needs a cloud mask; use another stopping rule for "
                    "super-resolution"
                )
            blur = settings.sensor_blur
            if blur is None:  # radar speckle does not show a scene's texture: without optical guides, none
                optical = [g for index, g in enumerate(valid_guides) if index not in radar]
                blur = sensor_blur(normalised, known, optical, settings.degradation, shape) if optical else 0.0
            degradation = Degradation(settings.degradation, shape, target.shape[1:], blur=blur)
        holdout = weight = labels = choosing = None
        missing = ~known.all(axis=0)
        if settings.stopping.holds_out:
            # inpainting: a second set, elsewhere, chooses the estimate and is then fitted on like the rest
            hidden = holdout_mask(missing, settings.holdout, settings.seed)
            if hidden is not None:
                holdout = hidden & known
                if degradation is None and estimates is None:
                    choosing = holdout_mask(missing | hidden, settings.holdout, settings.seed + 1)
        fitted = known if holdout is None else known & ~holdout
        if holdout is not None:
            weight = depth_weights(holdout.any(axis=0), fitted.any(axis=0), missing)
            labels = resampling_units(holdout.any(axis=0))
        anchor = None
        if settings.anchored:
            if degradation is None:
                anchor = inpainting_anchor(
                    normalised,
                    fitted,
                    valid_guides,
                    None if choosing is None else choosing & known,
                    estimates,
                    cross_fit,
                )
            else:
                anchor = super_resolution_anchor(normalised, fitted, valid_guides, degradation)
        target_scaled = np.where(known, normalised, 0).astype(np.float32)
        return cls(target_scaled, fitted, holdout, weight, labels, scaled, valids, scalings[0], anchor, degradation)

    def problem(self) -> Problem:
        """The sample as tensors (batch dimension 1)."""

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)[None])

        guides = [tensor(g) for g in self.guides]
        shape = self.degradation.high if self.degradation is not None else self.target.shape[1:]
        return Problem(
            tensor(self.target),
            tensor(self.known),
            guides,
            [tensor(v) for v in self.guide_valid],
            tuple(shape),
            None if self.anchor is None else tensor(self.anchor.image),
            None if self.holdout is None else tensor(self.holdout),
            None if self.holdout_weight is None else tensor(self.holdout_weight[None]),
            self.holdout_labels,
            self.degradation,
        )

    def describe_anchor(self) -> str | None:
        """A sentence naming the anchor of each band, or None without one."""
        if self.anchor is None:
            return None
        names = sorted(set(self.anchor.names))
        return "the network corrects an instant estimate: " + ", ".join(names)
