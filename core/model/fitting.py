"""The fitting loop: one network per sample, for one sample or several fitted together.

Everything here works on normalised tensors; :mod:`core.pipeline.sample` prepares them.
Several samples of one shape are fitted in one vectorised loop
(``torch.func.vmap``): every sample has its own weights, Adam state, batch
statistics and stopping rule, and gets the fit it would get alone (up to
floating-point order). On a GPU one step of N small networks costs little more
than one; on a CPU it costs about N steps.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from ..callbacks import Callbacks
from ..choices import InputKind, Precision
from ..config import Settings
from .degradation import Degradation
from .evidence import gain_lower_bound
from .networks import MCPN, Outputs
from .patch_consistency import PatchConsistency
from .similarity import masked_mean, masked_mse, ssim_map
from .stopping import StoppingRule

__all__ = [
    "TIME_NOTE",
    "Checks",
    "Fit",
    "Networks",
    "OutputAverage",
    "Problem",
    "Stacked",
    "TracePoint",
    "fit",
    "loss_of",
]

NOISE_CHANNELS = 32
TIME_NOTE = "stopped at its share of the time limit"
_GLOBAL_SEED = threading.Lock()


@dataclass
class Problem:
    """Normalised tensors of one sample (batch dimension 1)."""

    target: torch.Tensor  # (1, B, h, w); zero where unknown
    target_known: torch.Tensor  # (1, B, h, w); 1 = known pixel the loss uses
    guides: list[torch.Tensor]  # (1, Bg, H, W); zero where invalid
    guide_valid: list[torch.Tensor]  # (1, Bg, H, W); 1 = valid pixel
    shape: tuple[int, int]  # (H, W) of the output grid
    anchor: torch.Tensor | None = None  # (1, B, H, W): the instant estimate the network corrects
    holdout: torch.Tensor | None = None  # (1, B, h, w); 1 = known pixel hidden from the loss to score steps
    holdout_weight: torch.Tensor | None = None  # (1, 1, h, w): each held-out pixel's weight in the score
    holdout_labels: np.ndarray | None = None  # (h, w): the held-out resampling units (1..U), to bound a gain
    degradation: Degradation | None = None  # super-resolution: the output grid to the target's

    @property
    def super_resolution(self) -> bool:
        return self.degradation is not None

    def signature(self) -> tuple:
        """What samples fitted together must share."""
        return (
            tuple(self.target.shape),
            self.shape,
            tuple(tuple(g.shape) for g in self.guides),
            self.anchor is not None,
            self.holdout is not None,
        )


@dataclass
class TracePoint:
    """Convergence record at one checked step (metrics in normalised units)."""

    step: int
    loss: float
    known_rmse: float
    patch_consistency: float | None = None
    holdout_ssim: float | None = None  # structural similarity on the held-out pixels (higher is better)
    gain_lower: float | None = None  # while the anchor is kept: the lower bound of this step's held-out gain over it


@dataclass
class Fit:
    """Output of the kept step, normalised, on the output grid ``(B, H, W)``."""

    output: np.ndarray
    chosen_step: int
    trace: list[TracePoint]
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


class OutputAverage:
    """Exponential moving average of the network's output over the steps (Deep Image Prior's smoothing).

    Its window, ``1 / (1 - decay)`` steps, is at most a tenth of the steps so
    far, so that the first, poor outputs weigh nothing in a short fit. ``decay``
    0 keeps the last output.
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.value: torch.Tensor | None = None

    def update(self, output: torch.Tensor) -> torch.Tensor:
        """Add one step's output; return the current average (``output`` itself when averaging is off)."""
        output = output.detach()
        if not self.decay:
            return output
        self.steps += 1
        decay = min(self.decay, max(0.0, 1 - 10 / self.steps))
        if self.value is None:
            self.value = output.clone()
        else:
            self.value.lerp_(output, 1 - decay)
        return self.value


def network_input(kind: InputKind, channels: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Fixed network input: uniform noise in [0, 0.1) or a 2-channel [0, 1] coordinate grid."""
    if kind is InputKind.NOISE:
        return torch.rand((1, channels, *size), generator=generator) * 0.1
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size[0]), torch.linspace(0, 1, size[1]), indexing="ij")
    return torch.stack([xs, ys])[None]


def build_model(problem: Problem, settings: Settings) -> MCPN:
    """The network for ``problem``, initialised from ``settings.seed`` (reproducibly, also from threads)."""
    channels = NOISE_CHANNELS if settings.input_kind is InputKind.NOISE else 2
    if problem.anchor is not None:  # the network also sees the anchor and the guides (core.config.Settings.anchor)
        channels += problem.anchor.shape[1] + sum(g.shape[1] for g in problem.guides)
    with _GLOBAL_SEED:  # layers initialise from torch's global generator, shared by threads fitting at once
        torch.manual_seed(settings.seed)
        model = MCPN(
            channels,
            problem.target.shape[1],
            [g.shape[1] for g in problem.guides],
            settings.method,
            settings.core_channels,
            settings.up_kernel,
            settings.head_channels,
        )
    if problem.anchor is not None:
        model.start_from_anchor()
    return model


class Networks:
    """One network per sample, called on the shared input: outputs with a leading sample axis ``(N, 1, ...)``."""

    def __init__(self, models: list[MCPN], device: torch.device, memory_format: torch.memory_format) -> None:
        if len(models) == 1:
            self.module = models[0].to(device=device, memory_format=memory_format).train()
            self.weights = list(self.module.parameters())
            return
        self.module = None
        for model in models:  # batch statistics of each sample only, as in training mode alone
            for layer in model.modules():
                if isinstance(layer, nn.BatchNorm2d):
                    layer.track_running_stats = False
                    layer.running_mean = layer.running_var = layer.num_batches_tracked = None
        params, buffers = stack_module_state([m.train() for m in models])
        self.params = {name: value.to(device).detach().requires_grad_() for name, value in params.items()}
        self.buffers = {name: value.to(device) for name, value in buffers.items()}
        self.weights = list(self.params.values())
        template = copy.deepcopy(models[0]).to("meta")

        def one(weights: dict, state: dict, z: torch.Tensor, anchor: torch.Tensor | None) -> tuple:
            out = functional_call(template, (weights, state), (z, anchor))
            core = out.core if out.core is not None else out.target  # Stacked has no core (and no cycles)
            return out.target, tuple(out.guides), core, tuple(out.cycles or ())

        self.one = one

    def __call__(self, z: torch.Tensor, anchor: torch.Tensor | None) -> Outputs:
        if self.module is not None:
            out = self.module(z[0], None if anchor is None else anchor[0])
            add = lambda t: t[None]  # noqa: E731
            return Outputs(
                add(out.target),
                [add(g) for g in out.guides],
                None if out.core is None else add(out.core),
                None if out.cycles is None else [add(c) for c in out.cycles],
            )
        batched = vmap(self.one, in_dims=(0, 0, 0, None if anchor is None else 0))
        target, guides, core, cycles = batched(self.params, self.buffers, z, anchor)
        return Outputs(target, list(guides), core, list(cycles) or None)


def _pad_to(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.pad(tensor, (0, size[1] - tensor.shape[-1], 0, size[0] - tensor.shape[-2]))


def autocast(device: torch.device, precision: Precision):
    dtype = precision.autocast_dtype()
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


class Stacked:
    """The samples' tensors stacked on a leading sample axis, on the device and the network's working grid."""

    def __init__(self, problems: Sequence[Problem], working: tuple[int, int], device: torch.device) -> None:
        first = problems[0]

        def stack(tensors: Sequence[torch.Tensor], pad: bool = True) -> torch.Tensor:
            return torch.stack([_pad_to(t, working) if pad else t for t in tensors]).to(device)

        full_grid = not first.super_resolution
        self.target = stack([p.target for p in problems], full_grid)
        self.known = stack([p.target_known for p in problems], full_grid)
        self.holdout = stack([p.holdout for p in problems], full_grid) if first.holdout is not None else None
        self.holdout_weight = (
            stack([p.holdout_weight * p.holdout for p in problems], full_grid) if first.holdout is not None else None
        )
        self.holdout_labels = [p.holdout_labels for p in problems]
        self.anchor = stack([p.anchor for p in problems]) if first.anchor is not None else None
        self.guides = [stack([p.guides[i] for p in problems]) for i in range(len(first.guides))]
        self.valid = [stack([p.guide_valid[i] for p in problems]) for i in range(len(first.guides))]
        self.degradation = first.degradation.to(device) if first.degradation is not None else None
        self.height, self.width = first.shape

    def with_inputs(self, z: torch.Tensor) -> torch.Tensor:
        """Each sample's network input ``(N, 1, C, H, W)``: ``z``, and with an anchor the anchor and the guides."""
        z = z.expand(len(self.target), *z.shape)
        if self.anchor is None:
            return z
        return torch.cat([z, self.anchor, *self.guides], dim=2)

    def low(self, output: torch.Tensor) -> torch.Tensor:
        """The output on the target's grid: degraded for super-resolution, as it is for inpainting."""
        if self.degradation is None:
            return output
        return self.degradation(output[..., : self.height, : self.width])

    def final(self, output: torch.Tensor, index: int, anchored: bool) -> np.ndarray:
        """Sample ``index``'s output ``(1, B, ...)`` on the output grid; anchored super-resolution matches its input."""
        image = output[..., : self.height, : self.width].float()
        if anchored and self.degradation is not None:
            known = self.known[index] + (self.holdout[index] if self.holdout is not None else 0)
            image = self.degradation.project(image, self.target[index], known)
        return image[0].cpu().numpy().copy()  # the average is updated in place later


def loss_of(out: Outputs, data: Stacked, settings: Settings) -> torch.Tensor:
    """Each sample's loss ``(N,)``: masked MSE of the target on its known pixels (degraded for super-resolution),
    of each guide on its valid pixels, and the cycles' back to the core."""
    loss = settings.target_weight * masked_mse(data.low(out.target.float()), data.target, data.known)
    for guide_out, guide, valid in zip(out.guides, data.guides, data.valid):
        loss = loss + settings.guide_weight * masked_mse(guide_out.float(), guide, valid)
    for cycle in out.cycles or []:
        loss = loss + settings.cycle_weight * masked_mse(cycle.float(), out.core.float(), torch.ones_like(cycle))
    return loss


def fit(
    problems: Sequence[Problem], settings: Settings, device: torch.device, callbacks: Callbacks | None = None
) -> list[Fit]:
    """Fit one network per problem (all of one :meth:`Problem.signature`) and return each kept output."""
    callbacks = callbacks or Callbacks()
    started = time.perf_counter()
    if any(p.signature() != problems[0].signature() for p in problems):
        raise ValueError("samples fitted together must have the same shapes")
    models = [build_model(p, settings) for p in problems]
    memory_format = settings.memory_format.torch()
    networks = Networks(models, device, memory_format)
    height, width = problems[0].shape
    working = (max(height, models[0].min_size), max(width, models[0].min_size))
    generator = torch.Generator().manual_seed(settings.seed)
    data = Stacked(problems, working, device)
    z = data.with_inputs(network_input(settings.input_kind, NOISE_CHANNELS, working, generator).to(device))
    if len(problems) == 1:  # one network called directly: its input in the memory format its layers use
        z = z[0].contiguous(memory_format=memory_format)[None]
    checks = Checks(problems, settings, data, device)
    optimiser = torch.optim.Adam(networks.weights, lr=settings.lr, fused=device.type in ("cpu", "cuda"))
    average = OutputAverage(settings.output_average)
    if data.anchor is not None:  # step 0: the anchor itself
        checks.record(0, data.anchor, torch.full((len(problems),), math.nan))
        if settings.record_every:
            checks.snapshot(0, data.anchor)
    for step in range(1, settings.steps + 1):
        callbacks.check_cancel()
        with autocast(device, settings.precision):
            out = networks(z, data.anchor)
        output = out.target.float()
        loss = loss_of(out, data, settings)
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
        kept = average.update(output)
        if settings.record_every and step % settings.record_every == 0:
            checks.snapshot(step, kept)
        out_of_time = callbacks.out_of_time()
        checked = step % settings.check_every == 0 or step == settings.steps or out_of_time
        if checked and checks.record(step, kept, loss.detach()):
            break
        if out_of_time:
            checks.say_all(f"{TIME_NOTE} after {step} steps")
            break
        callbacks.report(step, settings.steps)
    callbacks.report(settings.steps, settings.steps)
    seconds = (time.perf_counter() - started) / len(problems)
    anchored = data.anchor is not None
    return [
        Fit(data.final(best, i, anchored), rule.best_step, trace, shots, notes, seconds)
        for i, (best, rule, trace, shots, notes) in enumerate(
            zip(checks.best, checks.rules, checks.traces, checks.snapshots, checks.notes)
        )
    ]


class Checks:
    """The checked steps of every sample: trace, stopping rule, kept output and snapshots."""

    def __init__(self, problems: Sequence[Problem], settings: Settings, data: Stacked, device: torch.device) -> None:
        self.settings, self.data = settings, data
        count = len(problems)
        self.rules = [StoppingRule(settings.stopping, settings.patience) for _ in problems]
        self.judges_anchor = settings.stopping.holds_out and data.anchor is not None and data.holdout is not None
        self.anchor_maps: list[np.ndarray | None] = [None] * count  # the anchor's held-out similarity, per pixel
        self.traces: list[list[TracePoint]] = [[] for _ in problems]
        self.snapshots: list[dict[int, np.ndarray]] = [{} for _ in problems]
        self.notes: list[list[str]] = [[] for _ in problems]
        self.best: list[torch.Tensor] = [torch.empty(0)] * count
        self.stopped = [False] * count
        self.scorers: list[PatchConsistency | None] = [None] * count
        if settings.stopping.scores_texture and not problems[0].super_resolution:
            for index, problem in enumerate(problems):
                known = problem.target_known + (problem.holdout if problem.holdout is not None else 0)
                fill = 1.0 - known.amin(dim=1, keepdim=True)
                scorer = PatchConsistency(problem.target.to(device), fill.to(device))
                self.scorers[index] = scorer
                self.notes[index].append(f"patch consistency features: {scorer.description}")
                if not scorer.usable:
                    self.notes[index].append(
                        "the filled or known region is too small for patch consistency: the last step is kept"
                    )
        if settings.stopping.holds_out and data.holdout is None:
            for notes in self.notes:
                notes.append("no known pixel could be held out to validate the steps: the last step is kept")

    def say_all(self, note: str) -> None:
        for notes in self.notes:
            notes.append(note)

    def snapshot(self, step: int, kept: torch.Tensor) -> None:
        for index, shots in enumerate(self.snapshots):
            shots[step] = self.data.final(kept[index], index, self.data.anchor is not None)

    def record(self, step: int, kept: torch.Tensor, loss: torch.Tensor) -> bool:
        """Score the kept output of every sample at ``step``; True once every sample's rule says stop."""
        data = self.data
        low = data.low(kept)
        known_rmse = masked_mse(low, data.target, data.known).sqrt()
        holdout_ssim = maps = None
        if data.holdout is not None:
            seen = data.known + data.holdout  # the known pixels; elsewhere the output is compared with itself
            reference = torch.where(seen > 0, data.target, low)
            predicted = torch.where(data.known > 0, data.target, low)
            similarity = ssim_map(predicted, reference)
            holdout_ssim = masked_mean(similarity, data.holdout_weight)
            maps = similarity.mean(dim=-3).flatten(0, -3).cpu().numpy() if self.judges_anchor else None
        for index, rule in enumerate(self.rules):
            if self.stopped[index]:
                continue
            point = TracePoint(step, float(loss[index]), float(known_rmse[index]))
            if holdout_ssim is not None:
                point.holdout_ssim = float(holdout_ssim[index])
            scorer = self.scorers[index]
            if scorer is not None:
                point.patch_consistency = scorer(kept[index, ..., : data.height, : data.width])
            significant = True
            if maps is not None and rule.best_step == 0:  # only while the anchor is kept does it matter
                significant = self._beats_anchor(index, step, maps[index], point)
            self.traces[index].append(point)
            if rule.update(step, self.settings.stopping.score(point), significant):
                self.best[index] = kept[index].clone()
            self.stopped[index] = rule.should_stop(step)
        return all(self.stopped)

    def _beats_anchor(self, index: int, step: int, similarity: np.ndarray, point: TracePoint) -> bool:
        """Whether this step's held-out gain over the anchor (step 0) is above the patches' own spread."""
        height, width = self.data.holdout_labels[index].shape
        similarity = similarity[:height, :width]
        if step == 0:
            self.anchor_maps[index] = similarity
            return True
        weight = self.data.holdout_weight[index].amax(dim=(0, 1)).cpu().numpy()[:height, :width]
        point.gain_lower = gain_lower_bound(
            similarity - self.anchor_maps[index], weight, self.data.holdout_labels[index]
        )
        return point.gain_lower > 0
