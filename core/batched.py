"""Several samples fitted at once: one independent network per sample, vectorised with ``torch.func.vmap``.

Every member has its own weights and Adam state (Adam works element by element,
so one optimiser over the stacked weights is N independent ones); batch
normalisation uses each member's own statistics, as in training mode alone.
Members start like :func:`core.fitting.fit` with the same settings, so a batch
gives the fits one by one would (up to floating-point order). On a GPU one step
of N small networks costs little more than one; on a CPU it costs about N steps,
so batching pays on GPUs. Each member keeps its own stopping rule: a member
whose patience has run out keeps the step it chose and stops recording, while
the others go on. Patch-consistency stopping, input noise (``reg_noise``),
coarse-to-fine steps, compilation and snapshots are not batched.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from .errors import Cancelled, InputError
from .fitting import (
    CancelCheck,
    Fit,
    OutputAverage,
    Problem,
    Progress,
    Settings,
    TracePoint,
    _autocast,
    _pad_to,
    build_model,
    downsample,
    make_optimiser,
    network_input,
)
from .networks import MCPN
from .stopping import StoppingRule

__all__ = ["batchable", "fit_batch"]


def batchable(problems: Sequence[Problem], settings: Settings) -> bool:
    """Whether the problems can share one vectorised fit: same shapes and settings :func:`fit_batch` reproduces."""
    first = problems[0]

    def signature(p: Problem) -> tuple:
        return (tuple(p.target.shape), p.shape, tuple(tuple(g.shape) for g in p.guides))

    same = all(signature(p) == signature(first) for p in problems)
    unbatched = (settings.coarse_steps, settings.reg_noise, settings.compile, settings.record_every)
    return settings.stopping != "patch_consistency" and not any(unbatched) and same


def _member(problem: Problem, settings: Settings) -> MCPN:
    """The network a single fit would start from, with batch-norm running statistics off (training mode only)."""
    model = build_model(problem, settings)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.track_running_stats = False
            module.running_mean = module.running_var = module.num_batches_tracked = None
    return model.train()


def _masked_mse(pred: torch.Tensor, ref: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-member masked MSE of (N, 1, C, H, W) tensors: shape (N,)."""
    weight = weight.expand_as(pred)
    dims = tuple(range(1, pred.dim()))
    return ((pred - ref).square() * weight).sum(dims) / weight.sum(dims).clamp_min(1.0)


def fit_batch(
    problems: Sequence[Problem],
    settings: Settings,
    device: torch.device,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> list[Fit]:
    """Fit one network per problem in one vectorised loop; the same :class:`Fit` list as fitting them one by one."""
    if not problems or not batchable(problems, settings):
        raise InputError(
            "a batch needs samples of one shape, a stopping rule other than patch consistency, and no input noise, "
            "coarse steps, compilation or snapshots"
        )
    settings.validate()
    started = time.perf_counter()
    first = problems[0]
    members = [_member(p, settings) for p in problems]
    channels = members[0].core.in_channels
    height, width = first.shape
    working = (max(height, members[0].min_size), max(width, members[0].min_size))
    params, buffers = stack_module_state(members)
    params = {name: value.to(device).detach().requires_grad_() for name, value in params.items()}
    buffers = {name: value.to(device) for name, value in buffers.items()}
    template = copy.deepcopy(members[0]).to("meta")

    def forward(weights: dict, state: dict, z: torch.Tensor) -> tuple:
        out = functional_call(template, (weights, state), (z,))
        core = out.core if out.core is not None else out.target  # Stacked has no core (and no cycles)
        return out.target, tuple(out.guides), core, tuple(out.cycles or ())

    batched = vmap(forward, in_dims=(0, 0, None))
    z = network_input(settings.input_kind, channels, working, torch.Generator().manual_seed(settings.seed))
    z = z.to(device)

    def stacked(tensors: Sequence[torch.Tensor], pad: bool) -> torch.Tensor:
        return torch.stack([_pad_to(t, working) if pad else t for t in tensors]).to(device)

    sr = first.super_resolution
    target = stacked([p.target for p in problems], not sr)
    known = stacked([p.target_known for p in problems], not sr)
    guides = [stacked([p.guides[i] for p in problems], True) for i in range(len(first.guides))]
    valid = [stacked([p.guide_valid[i] for p in problems], True) for i in range(len(first.guides))]

    def target_error(output: torch.Tensor) -> torch.Tensor:
        """Per-member masked MSE of target outputs against the known target pixels (after downsampling, for SR)."""
        if not sr:
            return _masked_mse(output, target, known)
        flat = output[..., :height, :width].flatten(0, 1)
        low = downsample(flat, tuple(first.target.shape[-2:])).unflatten(0, output.shape[:2])
        return _masked_mse(low, target, known)

    optimiser, schedule = make_optimiser(params.values(), settings, device)
    rules = [StoppingRule(settings.stopping, settings.patience) for _ in problems]
    traces: list[list[TracePoint]] = [[] for _ in problems]
    best: list[torch.Tensor | None] = [None] * len(problems)
    stopped = [False] * len(problems)
    average = OutputAverage(settings.output_average)
    for step in range(1, settings.steps + 1):
        if cancel is not None and cancel():
            raise Cancelled("cancelled by the user")
        with _autocast(device, settings.precision):
            out_target, out_guides, core, cycles = batched(params, buffers, z)
        output = out_target.float()
        target_loss = target_error(output)
        loss = settings.target_weight * target_loss
        for guide_out, guide, guide_valid in zip(out_guides, guides, valid):
            loss = loss + settings.guide_weight * _masked_mse(guide_out.float(), guide, guide_valid)
        for cycle in cycles:
            dims = tuple(range(1, cycle.dim()))
            loss = loss + settings.cycle_weight * F.mse_loss(cycle.float(), core.float(), reduction="none").mean(dims)
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        kept = average.update(output)
        if step % settings.check_every == 0 or step == settings.steps:
            current = kept[..., :height, :width]
            error = target_error(kept)  # the kept output: the average, or this step's
            for index, rule in enumerate(rules):
                if stopped[index]:
                    continue
                point = TracePoint(step, loss[index].item(), math.sqrt(error[index].item()))
                traces[index].append(point)
                if rule.update(step, point.known_rmse):
                    best[index] = current[index].clone()
                stopped[index] = rule.should_stop(step)
            if all(stopped):
                break
        if progress is not None:
            progress(step, settings.steps)
    seconds = time.perf_counter() - started
    return [
        Fit(output=b[0].float().cpu().numpy(), chosen_step=r.best_step, trace=t, seconds=seconds)
        for b, r, t in zip(best, rules, traces)
    ]
