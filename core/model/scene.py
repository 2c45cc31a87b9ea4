"""One network for a whole scene: fitted on tiles sampled across it, then applied to every tile.

The network corrects the instant estimate from the local context of the
estimate and the guides (its input), which holds across a scene, so it is
fitted once, on a few tiles in turn, and kept at evenly spaced checkpoints.
Each tile then gets a forward pass per checkpoint and keeps, by its own held-out
pixels and the same rule as a tile's own fit (:class:`core.model.fitting.Checks`),
the best checkpoint, or its instant estimate when no checkpoint's gain is above
the held-out spread. The noise input of a per-tile fit is zero here: the
network is a function of the estimate and the guides.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import List, Tuple

import torch

from ..callbacks import Callbacks
from ..config import Settings
from .fitting import NOISE_CHANNELS, TIME_NOTE, Checks, Fit, Networks, Problem, Stacked, autocast, build_model, loss_of

__all__ = ["Checkpoints", "application_seconds", "apply_checkpoints", "fit_shared", "refine"]

CHECKPOINTS = 10  # weights kept over a scene fit, evenly spaced
PACE_STEPS = 10  # steps timed before a fit with a deadline spaces its checkpoints over the steps it has time for

Checkpoints = List[Tuple[int, dict]]  # (step, the network's weights)


def _prepared(
    problem: Problem, settings: Settings, device: torch.device, min_size: int
) -> tuple[Stacked, torch.Tensor]:
    """The problem's tensors on its working grid (at least the network's ``min_size``) and the network's input
    (zero noise, the anchor, the guides)."""
    working = (max(problem.shape[0], min_size), max(problem.shape[1], min_size))
    data = Stacked([problem], working, device)
    z = data.with_inputs(torch.zeros(1, NOISE_CHANNELS, *working, device=device))
    return data, z[0].contiguous(memory_format=settings.memory_format.torch())[None]


def fit_shared(
    problems: Sequence[Problem],
    settings: Settings,
    device: torch.device,
    callbacks: Callbacks,
    start: tuple[int, dict] | None = None,
) -> Checkpoints:
    """One network fitted on the ``problems`` in turn (a step each) for ``settings.steps`` steps, or until the
    callbacks' deadline; its weights at :data:`CHECKPOINTS` evenly spaced steps (with a deadline, spaced over the
    steps its first :data:`PACE_STEPS` say there is time for) and at the step the deadline stopped it.

    With ``start`` (a step number and weights) the network starts from those weights and counts its steps on
    from that number: a refinement of an earlier fit.
    """
    model = build_model(problems[0], settings)
    first = 0
    if start is not None:
        first, weights = start
        model.load_state_dict(weights)
    networks = Networks([model], device, settings.memory_format.torch())
    prepared = [_prepared(p, settings, device, model.min_size) for p in problems]
    optimiser = torch.optim.Adam(networks.weights, lr=settings.lr, fused=device.type in ("cpu", "cuda"))
    order = torch.randperm(len(problems), generator=torch.Generator().manual_seed(settings.seed)).tolist()
    every = max(1, math.ceil(settings.steps / CHECKPOINTS))
    checkpoints: Checkpoints = []
    clock = time.monotonic()
    for step in range(1, settings.steps + 1):
        callbacks.check_cancel()
        data, z = prepared[order[step % len(problems)]]
        with autocast(device, settings.precision):
            out = networks(z, data.anchor)
        loss = loss_of(out, data, settings)
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
        if callbacks.deadline is not None and step in (1, 1 + PACE_STEPS):  # paced after the first (slower) step
            now = time.monotonic()
            if step > 1:  # checkpoints over the steps it has time for
                reachable = step + (callbacks.deadline - now) * PACE_STEPS / max(now - clock, 1e-9)
                every = max(1, math.ceil(min(settings.steps, reachable) / CHECKPOINTS))
            clock = now
        out_of_time = callbacks.out_of_time()
        if step % every == 0 or step == settings.steps or out_of_time:
            checkpoints.append((first + step, copy.deepcopy(model.state_dict())))
        if out_of_time:
            callbacks.say(f"scene network: {TIME_NOTE} after {step} steps")
            break
        callbacks.report(step, settings.steps)
    return checkpoints


def apply_checkpoints(problem: Problem, settings: Settings, checkpoints: Checkpoints, device: torch.device) -> Fit:
    """The tile's output from the checkpoint its held-out pixels choose (its instant estimate when none is better)."""
    model = build_model(problem, settings)
    networks = Networks([model], device, settings.memory_format.torch())
    data, z = _prepared(problem, settings, device, model.min_size)
    checks = Checks([problem], replace(settings, patience=len(checkpoints) * settings.steps + 1), data, device)
    nan = torch.full((1,), math.nan)
    if data.anchor is not None:
        checks.record(0, data.anchor, nan)
    with torch.no_grad():
        for step, weights in checkpoints:
            model.load_state_dict(weights)
            with autocast(device, settings.precision):
                output = networks(z, data.anchor).target.float()
            checks.record(step, output, nan)
    image = data.final(checks.best[0], 0, data.anchor is not None)
    return Fit(image, checks.rules[0].best_step, checks.traces[0], {}, checks.notes[0])


def application_seconds(problem: Problem, settings: Settings, device: torch.device) -> float:
    """What applying a scene network to one tile costs: :func:`apply_checkpoints` timed with :data:`CHECKPOINTS`
    copies of an unfitted network's weights (the same passes and held-out checks as the fitted network's)."""
    weights = build_model(problem, settings).state_dict()
    started = time.perf_counter()
    apply_checkpoints(problem, settings, [(step, weights) for step in range(1, CHECKPOINTS + 1)], device)
    return time.perf_counter() - started


def refine(
    problem: Problem, settings: Settings, checkpoints: Checkpoints, device: torch.device, callbacks: Callbacks
) -> Fit:
    """The tile's output from the scene network or from that network fitted further on this tile alone for
    ``settings.refine_steps`` steps, starting from the checkpoint the tile chose (the last one when it kept its
    estimate): whichever its held-out pixels choose, by the same rule (:func:`apply_checkpoints`)."""
    chosen = apply_checkpoints(problem, settings, checkpoints, device).chosen_step
    weights = next((w for step, w in checkpoints if step == chosen), checkpoints[-1][1])
    start = (checkpoints[-1][0], weights)  # steps counted on after the scene fit's, so that they come later
    refined = fit_shared([problem], replace(settings, steps=settings.refine_steps), device, callbacks, start)
    return apply_checkpoints(problem, settings, checkpoints + refined, device)
