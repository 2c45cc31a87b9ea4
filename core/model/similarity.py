"""Errors and structural similarity of tensors over chosen pixels, per sample: the loss and the steps' score."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["masked_mean", "masked_mse", "ssim_map"]


def masked_mse(pred: torch.Tensor, ref: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error over the pixels where ``weight`` is 1: ``(N, ...)`` tensors to ``(N,)``."""
    weight = weight.expand_as(pred)
    dims = tuple(range(1, pred.dim()))
    return ((pred - ref).square() * weight).sum(dims) / weight.sum(dims).clamp_min(1.0)


def masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of ``values`` over the pixels where ``weight`` is 1: ``(N, ...)`` to ``(N,)``."""
    weight = weight.expand_as(values)
    dims = tuple(range(1, values.dim()))
    return (values * weight).sum(dims) / weight.sum(dims).clamp_min(1.0)


def ssim_map(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per-pixel structural similarity of normalised images (data range 1), as :func:`core.metrics.ssim_map`.

    Gaussian window of sigma 1.5 (11 taps), population statistics, edges extended, on the last two axes.
    """
    taps = torch.exp(-0.5 * (torch.arange(-5, 6, dtype=first.dtype, device=first.device) / 1.5) ** 2)
    taps = taps / taps.sum()
    shape = first.shape
    flat = torch.cat([first, second, first * first, second * second, first * second], 1).flatten(0, -3)[None]

    def blur(x: torch.Tensor) -> torch.Tensor:  # every image a channel of one depthwise convolution (15x faster)
        n = x.shape[1]
        x = F.conv2d(F.pad(x, (5, 5, 0, 0), mode="replicate"), taps.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)
        return F.conv2d(F.pad(x, (0, 0, 5, 5), mode="replicate"), taps.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)

    mx, my, xx, yy, xy = blur(flat).view(shape[0], 5, *shape[1:]).unbind(1)
    c1, c2 = 0.01**2, 0.03**2
    vx, vy, cov = xx - mx * mx, yy - my * my, xy - mx * my
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
