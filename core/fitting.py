"""Fitting one MCPN (or Stacked) network to one sample, with the stopping rules.

Everything here works on normalised tensors; :mod:`core.api` prepares them
from user arrays and converts the result back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from .errors import Cancelled, InputError
from .networks import MCPN, Outputs
from .patch_consistency import PatchConsistency
from .stopping import STOPPING_RULES, StoppingRule

INPUT_KINDS = ("noise", "meshgrid")
PRECISIONS = ("fp32", "bf16", "fp16")
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
LR_SCHEDULES = ("constant", "cosine")
NOISE_CHANNELS = 32
# Default Adam learning rate of each variant (see benchmarks/results/learning_rates.md).
DEFAULT_LEARNING_RATES = {"emergent": 8e-3, "direct": 8e-3, "stacked": 8e-3}

_GLOBAL_SEED = threading.Lock()

Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]
Log = Callable[[str], None]


@dataclass
class Problem:
    """Normalised tensors of one sample (batch dimension 1)."""

    target: torch.Tensor  # (1, B, h, w); zero where unknown
    target_known: torch.Tensor  # (1, B, h, w); 1 = known pixel
    guides: list[torch.Tensor]  # (1, Bg, H, W); zero where invalid
    guide_valid: list[torch.Tensor]  # (1, Bg, H, W); 1 = valid pixel
    shape: tuple[int, int]  # (H, W) of the output grid

    @property
    def super_resolution(self) -> bool:
        return tuple(self.target.shape[-2:]) != self.shape


@dataclass
class Settings:
    """How to fit; every field has a sensible default."""

    method: str = "emergent"
    steps: int = 4000
    learning_rate: float | None = None
    core_channels: int = 8
    up_kernel: int = 3  # kernel of the core network's up-sampling convolutions (5 in the reference Stacked code)
    stopping: str = "fixed"
    check_every: int = 50
    patience: int = 1000
    input_kind: str = "noise"
    reg_noise: float = 0.0
    precision: str = "fp32"
    memory_format: str = "channels_last"  # NHWC: faster convolutions on CPU (benchmarks/speed.py)
    compile: bool = False  # torch.compile the networks; fitted eagerly, with a note, if compiling fails
    lr_schedule: str = "constant"  # or "cosine": decay from the learning rate to 0 over ``steps``
    coarse_steps: int = 0  # inpainting: steps on the sample averaged 2 x 2, before ``steps`` at full resolution
    output_average: float = 0.99  # decay of the moving average of the output kept (0 = the last step's output)
    seed: int = 0
    target_weight: float = 1.0
    guide_weight: float = 1.0
    cycle_weight: float = 1.0
    record_every: int = 0

    def validate(self) -> None:
        """Raise :class:`InputError` on a value out of range."""
        if self.method not in DEFAULT_LEARNING_RATES:
            raise InputError(f"unknown method {self.method!r}; expected one of {', '.join(DEFAULT_LEARNING_RATES)}")
        if self.stopping not in STOPPING_RULES:
            raise InputError(f"unknown stopping rule {self.stopping!r}; expected one of {', '.join(STOPPING_RULES)}")
        if self.input_kind not in INPUT_KINDS:
            raise InputError(f"unknown input kind {self.input_kind!r}; expected one of {', '.join(INPUT_KINDS)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")
        if self.memory_format not in MEMORY_FORMATS:
            formats = ", ".join(MEMORY_FORMATS)
            raise InputError(f"unknown memory format {self.memory_format!r}; expected one of {formats}")
        if self.lr_schedule not in LR_SCHEDULES:
            schedules = ", ".join(LR_SCHEDULES)
            raise InputError(f"unknown learning-rate schedule {self.lr_schedule!r}; expected one of {schedules}")
        if not 0 <= self.output_average < 1:
            raise InputError("the output-averaging decay must be at least 0 and below 1")
        if self.coarse_steps < 0:
            raise InputError("the number of coarse steps cannot be negative")
        if self.steps < 1 or self.check_every < 1 or self.patience < 1:
            raise InputError("steps, check_every and patience must be at least 1")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise InputError("the learning rate must be positive")
        if self.core_channels < 1:
            raise InputError("the core signal needs at least one channel")
        if self.up_kernel not in (1, 3, 5):  # 7 and more: reflection padding wider than the deepest level
            raise InputError("the up-sampling kernel size must be 1, 3 or 5")

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATES[self.method]


@dataclass
class TracePoint:
    """Convergence record at one checked step (metrics in normalised units)."""

    step: int
    loss: float
    known_rmse: float
    patch_consistency: float | None = None


class OutputAverage:
    """Exponential moving average of the network's output over the steps (Deep Image Prior's smoothing).

    The fit's output wanders from step to step around what the network has
    learnt; the average keeps the learnt part. Its window, ``1 / (1 - decay)``
    steps, is at most a tenth of the steps so far, so that the first, poor
    outputs weigh nothing in a short fit. ``decay`` 0 keeps the last output.
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


@dataclass
class Fit:
    """Output of the chosen step, normalised, on the output grid ``(B, H, W)``."""

    output: np.ndarray
    chosen_step: int
    trace: list[TracePoint]
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Level:
    """The tensors one resolution of the fit works on (on the network's working grid)."""

    z: torch.Tensor
    target: torch.Tensor
    known: torch.Tensor
    guides: list[torch.Tensor]
    valid: list[torch.Tensor]

    def coarse(self, minimum: int, memory_format: torch.memory_format) -> _Level:
        """The level averaged 2 x 2 (at least ``minimum`` px): known where all four pixels are; ``z`` subsampled."""

        def halve(values: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            full = (F.avg_pool2d(weight, 2) > 0.999).to(values.dtype)
            return F.avg_pool2d(values, 2) * full, full

        size = tuple(max(n // 2, minimum) for n in self.z.shape[-2:])
        target, known = halve(self.target, self.known)
        halves = [halve(g, v) for g, v in zip(self.guides, self.valid)]
        return _Level(
            _pad_to(self.z[..., ::2, ::2], size).contiguous(memory_format=memory_format),
            _pad_to(target, size),
            _pad_to(known, size),
            [_pad_to(g, size) for g, _ in halves],
            [_pad_to(v, size) for _, v in halves],
        )


def network_input(kind: str, channels: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Fixed network input: uniform noise in [0, 0.1) or a 2-channel [0, 1] coordinate grid."""
    if kind == "noise":
        return torch.rand((1, channels, *size), generator=generator) * 0.1
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size[0]), torch.linspace(0, 1, size[1]), indexing="ij")
    return torch.stack([xs, ys])[None]


def masked_mse(pred: torch.Tensor, ref: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels where ``weight`` is 1."""
    weight = weight.expand_as(pred)
    return ((pred - ref).square() * weight).sum() / weight.sum().clamp_min(1.0)


def build_model(problem: Problem, settings: Settings) -> MCPN:
    """The network for ``problem``, initialised from ``settings.seed`` (reproducibly, also from threads)."""
    channels = NOISE_CHANNELS if settings.input_kind == "noise" else 2
    with _GLOBAL_SEED:  # layers initialise from torch's global generator, shared by threads fitting at once
        torch.manual_seed(settings.seed)
        return MCPN(
            channels,
            problem.target.shape[1],
            [g.shape[1] for g in problem.guides],
            settings.method,
            settings.core_channels,
            settings.up_kernel,
        )


def make_optimiser(
    parameters: Iterable[torch.Tensor], settings: Settings, device: torch.device
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LRScheduler | None]:
    """Adam at the settings' learning rate, and the learning-rate schedule (None for a constant rate).

    The fused Adam kernel updates all parameters in one pass: 3-4x faster than the
    per-tensor loop on CPU (6-12 -> 2-3 ms per step, ``benchmarks/speed.py --adam``).
    """
    optimiser = torch.optim.Adam(parameters, lr=settings.lr, fused=device.type in ("cpu", "cuda"))
    if settings.lr_schedule == "cosine":
        return optimiser, torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.steps)
    return optimiser, None


def downsample(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resampling to ``size`` (any, non-integer, factor)."""
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def _pad_to(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.pad(tensor, (0, size[1] - tensor.shape[-1], 0, size[0] - tensor.shape[-2]))


def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _compiled(
    model: MCPN, losses: Callable[..., tuple[torch.Tensor, ...]], notes: list[str]
) -> Callable[[torch.Tensor], Outputs]:
    """``torch.compile`` of ``model``, tried on one forward and backward pass; ``model`` itself if that fails."""
    compiled = torch.compile(model)
    try:
        losses(compiled)[0].backward()
    except Exception as error:  # a compiler fails in many ways: no C++ compiler, an unsupported operator, ...
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        notes.append(f"torch.compile failed ({type(error).__name__}: {reason}); fitted without compilation")
        return model
    finally:
        model.zero_grad(set_to_none=True)
    return compiled


def fit(
    problem: Problem,
    settings: Settings,
    device: torch.device,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    log: Log | None = None,
) -> Fit:
    """Fit a network to ``problem`` and return the output of the step the stopping rule chose."""
    settings.validate()
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(settings.seed)
    # The input noise's own generator (another stream than z's): reproducible when tiles fit in threads.
    noise = torch.Generator(device=device).manual_seed(settings.seed + 1) if settings.reg_noise else None
    model = build_model(problem, settings)
    channels = model.core.in_channels
    # Reflection padding needs at least 2 pixels at the deepest level: pad small grids.
    height, width = problem.shape
    working = (max(height, model.min_size), max(width, model.min_size))
    memory_format = MEMORY_FORMATS[settings.memory_format]
    model.to(device=device, memory_format=memory_format).train()
    z = network_input(settings.input_kind, channels, working, generator).to(device)
    z = z.contiguous(memory_format=memory_format)
    target = problem.target.to(device)
    known = problem.target_known.to(device)
    if not problem.super_resolution:
        target, known = _pad_to(target, working), _pad_to(known, working)
    full = _Level(
        z,
        target,
        known,
        [_pad_to(g, working).to(device) for g in problem.guides],
        [_pad_to(v, working).to(device) for v in problem.guide_valid],
    )
    low_res_size = tuple(problem.target.shape[-2:])
    if settings.coarse_steps and problem.super_resolution:
        raise InputError("coarse-to-fine fitting is for inpainting; set coarse_steps to 0 for super-resolution")

    def target_error(output: torch.Tensor, level: _Level = full) -> torch.Tensor:
        """Masked MSE of a target output against the known target pixels (after downsampling, for SR)."""
        if problem.super_resolution:
            return masked_mse(downsample(output[..., :height, :width], low_res_size), level.target, level.known)
        return masked_mse(output, level.target, level.known)

    def losses(
        forward: Callable[[torch.Tensor], Outputs], level: _Level = full
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Total loss, target loss and target output of one forward pass."""
        z = level.z
        if noise is not None:
            z = z + settings.reg_noise * torch.randn(z.shape, generator=noise, device=z.device, dtype=z.dtype)
        with _autocast(device, settings.precision):
            out = forward(z)
        output = out.target.float()
        target_loss = target_error(output, level)
        loss = settings.target_weight * target_loss
        for guide_out, guide, guide_valid in zip(out.guides, level.guides, level.valid):
            loss = loss + settings.guide_weight * masked_mse(guide_out.float(), guide, guide_valid)
        for cycle in out.cycles or []:
            loss = loss + settings.cycle_weight * F.mse_loss(cycle.float(), out.core.float())
        return loss, target_loss, output

    scorer = None
    notes: list[str] = []
    if settings.stopping == "patch_consistency":
        if problem.super_resolution:
            raise InputError("patch consistency needs a cloud mask; use fixed steps or known-region RMSE")
        fill = 1.0 - problem.target_known.amin(dim=1, keepdim=True)
        scorer = PatchConsistency(problem.target.to(device), fill.to(device))
        notes.append(f"patch consistency features: {scorer.description}")
        if not scorer.usable:
            notes.append("the filled or known region is too small for patch consistency: the last step is kept")

    forward = _compiled(model, losses, notes) if settings.compile else model
    optimiser, schedule = make_optimiser(model.parameters(), settings, device)
    trace: list[TracePoint] = []
    snapshots: dict[int, np.ndarray] = {}
    rule = StoppingRule(settings.stopping, settings.patience)
    average = OutputAverage(settings.output_average)
    best = None
    coarse = full.coarse(model.min_size, memory_format) if settings.coarse_steps else None
    for _ in range(settings.coarse_steps):  # coarse-to-fine: the same network first learns the sample at half size
        if cancel is not None and cancel():
            raise Cancelled("cancelled by the user")
        optimiser.zero_grad(set_to_none=True)
        losses(forward, coarse)[0].backward()
        optimiser.step()
    for step in range(1, settings.steps + 1):
        if cancel is not None and cancel():
            raise Cancelled("cancelled by the user")
        loss, target_loss, output = losses(forward)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()

        kept = average.update(output)
        current = kept[..., :height, :width].clone()
        if settings.record_every and step % settings.record_every == 0:
            snapshots[step] = current[0].cpu().numpy()
        if step % settings.check_every == 0 or step == settings.steps:
            error = target_error(kept)  # the kept output: the average, or this step's
            point = TracePoint(step, loss.item(), math.sqrt(error.item()))
            if scorer is not None:
                point.patch_consistency = scorer(current)
            trace.append(point)
            score = point.patch_consistency if settings.stopping == "patch_consistency" else point.known_rmse
            if rule.update(step, score):
                best = current
            elif rule.should_stop(step):
                if log:
                    log(f"no improvement for {step - rule.best_step} steps: stopped at step {step}")
                break
        if progress is not None:
            progress(step, settings.steps)
    return Fit(
        output=best[0].float().cpu().numpy(),
        chosen_step=rule.best_step,
        trace=trace,
        snapshots=snapshots,
        notes=notes,
        seconds=time.perf_counter() - started,
    )
