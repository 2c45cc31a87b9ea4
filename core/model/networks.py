"""Networks of MCPN: the Deep Image Prior skip network, domain heads and variants.

All convolutions use reflection padding (as Deep Image Prior's inpainting
set-up), batch normalisation and LeakyReLU. Down-sampling is done by strided
convolutions and up-sampling by bilinear interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..choices import Method

CORE_CHANNELS_DOWN = (16, 32, 64, 128, 128, 128)
CORE_CHANNELS_SKIP = (4, 4, 4, 4, 4, 4)
HEAD_CHANNELS = 32  # the width of both levels of a domain head (the paper's)


def _conv_block(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, padding_mode="reflect"),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(0.2, inplace=True),
    ]


def _channels_last(gradient: torch.Tensor) -> torch.Tensor:
    """The gradient as a dense channels-last tensor.

    The up-sampled signal is concatenated with the skip branch, so its gradient
    arrives as a channel slice of the concatenation's: not dense, which sends
    the bilinear backward pass on CPU to a generic path instead of its
    channels-last kernel.
    """
    return gradient.contiguous(memory_format=torch.channels_last)


class _Level(nn.Module):
    """One level of the skip network: skip branch, down branch, deeper levels, up branch."""

    def __init__(
        self,
        in_ch: int,
        down_ch: int,
        up_ch: int,
        skip_ch: int,
        deeper: _Level | None,
        kernel_down: int,
        kernel_up: int,
        stride: int,
    ) -> None:
        super().__init__()
        self.skip = nn.Sequential(*_conv_block(in_ch, skip_ch, 1)) if skip_ch else None
        self.down = nn.Sequential(
            *_conv_block(in_ch, down_ch, kernel_down, stride), *_conv_block(down_ch, down_ch, kernel_down)
        )
        self.deeper = deeper
        self.stride = stride
        merged = skip_ch + (deeper.out_channels if deeper else down_ch)
        self.up = nn.Sequential(
            nn.BatchNorm2d(merged), *_conv_block(merged, up_ch, kernel_up), *_conv_block(up_ch, up_ch, 1)
        )
        self.out_channels = up_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.deeper is not None:
            y = self.deeper(y)
        if self.stride > 1:
            y = nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            if y.requires_grad and y.is_contiguous(memory_format=torch.channels_last):
                y.register_hook(_channels_last)
        if self.skip is not None:
            y = torch.cat([self.skip(x), y], dim=1)
        return self.up(y)


class SkipNetwork(nn.Module):
    """Encoder-decoder with skip connections, as in Deep Image Prior.

    ``channels_down[i]``/``channels_up[i]``/``channels_skip[i]`` give the widths
    of level ``i``; with ``stride=2`` each level halves the resolution, with
    ``stride=1`` every layer keeps the input's shape.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels_down: Sequence[int] = CORE_CHANNELS_DOWN,
        channels_up: Sequence[int] | None = None,
        channels_skip: Sequence[int] = CORE_CHANNELS_SKIP,
        kernel_down: int = 3,
        kernel_up: int = 3,
        stride: int = 2,
    ) -> None:
        super().__init__()
        channels_up = channels_up or channels_down
        if not len(channels_down) == len(channels_up) == len(channels_skip):
            raise ValueError("channels_down, channels_up and channels_skip must have the same length")
        level: _Level | None = None
        for i in reversed(range(len(channels_down))):
            level_in = in_channels if i == 0 else channels_down[i - 1]
            level = _Level(
                level_in,
                channels_down[i],
                channels_up[i],
                channels_skip[i],
                level,
                kernel_down,
                kernel_up,
                stride,
            )
        self.body = level
        self.head = nn.Conv2d(channels_up[0], out_channels, 1)
        self.in_channels = in_channels
        self.depth = len(channels_down)
        self.stride = stride

    @property
    def min_size(self) -> int:
        """The smallest input height and width: the deepest level keeps 2 px (reflection padding needs them).

        Any larger size works; each level up-samples to its input's exact size.
        """
        return self.stride**self.depth + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def domain_head(in_channels: int, out_channels: int, stride: int, width: int = HEAD_CHANNELS) -> SkipNetwork:
    """A small two-level skip network mapping one signal to another (3x3 kernels, ``width`` channels per level)."""
    widths = (width, width)
    return SkipNetwork(in_channels, out_channels, widths, widths, widths, 3, 3, stride)


@dataclass
class Outputs:
    """What one forward pass of an MCPN model produces (all at the working grid)."""

    target: torch.Tensor
    guides: list[torch.Tensor]
    core: torch.Tensor | None = None
    cycles: list[torch.Tensor] | None = None


class MCPN(nn.Module):
    """Multi-modal Convolutional Parameterisation Network, or the Stacked baseline.

    ``method`` is a :class:`core.choices.Method`:

    - ``emergent``: the core network outputs a learned ``core_channels`` signal;
      one head per domain (target first, then guides) maps it to that domain,
      one cycle head per domain maps the domain back to the core signal.
    - ``direct``: the core network outputs the target itself; heads (stride 1)
      map it to every guide and cycle heads map each guide back to the target.
    - ``stacked``: the core network alone outputs all domains stacked.

    ``up_kernel`` is the kernel size of the core network's up-sampling
    convolutions: 3 by default; the Stacked network of Czerkawski et al.'s
    reference code uses 5. ``head_channels`` is the width of the domain and
    cycle heads (Emergent and Direct).
    """

    def __init__(
        self,
        input_channels: int,
        target_bands: int,
        guide_bands: Sequence[int],
        method: Method = Method.EMERGENT,
        core_channels: int = 8,
        up_kernel: int = 3,
        head_channels: int = HEAD_CHANNELS,
    ) -> None:
        super().__init__()
        method = self.method = Method.of(method)
        self.target_bands = target_bands
        self.guide_bands = list(guide_bands)
        if method is Method.STACKED:
            self.core = SkipNetwork(input_channels, target_bands + sum(self.guide_bands), kernel_up=up_kernel)
            self.heads = self.cycle_heads = nn.ModuleList()
            return
        if method is Method.EMERGENT:
            core_out, head_stride, domains = core_channels, 2, [target_bands, *self.guide_bands]
        else:
            core_out, head_stride, domains = target_bands, 1, self.guide_bands
        self.core = SkipNetwork(input_channels, core_out, kernel_up=up_kernel)
        self.heads = nn.ModuleList(domain_head(core_out, bands, head_stride, head_channels) for bands in domains)
        self.cycle_heads = nn.ModuleList(domain_head(bands, core_out, head_stride, head_channels) for bands in domains)

    @property
    def min_size(self) -> int:
        """The smallest working-grid height and width (see :attr:`SkipNetwork.min_size`)."""
        return self.core.min_size

    def start_from_anchor(self) -> None:
        """Zero the convolution that makes the target, so that the first output is the anchor itself.

        With an anchor the network learns a correction of it (see :meth:`forward`);
        the zeroed layer receives gradients at once and the others from the second step.
        """
        last = self.heads[0].head if self.method is Method.EMERGENT else self.core.head
        with torch.no_grad():
            last.weight[: self.target_bands].zero_()
            last.bias[: self.target_bands].zero_()

    def forward(self, z: torch.Tensor, anchor: torch.Tensor | None = None) -> Outputs:
        """All domains from the input ``z``; with an ``anchor``, the target is the anchor plus the network's part."""
        core = self.core(z)
        if self.method is Method.STACKED:
            parts = torch.split(core, [self.target_bands, *self.guide_bands], dim=1)
            target = parts[0] if anchor is None else parts[0] + anchor
            return Outputs(target=target, guides=list(parts[1:]))
        if self.method is Method.DIRECT and anchor is not None:
            core = core + anchor
        domains = [head(core) for head in self.heads]
        cycles = [cycle(domain) for cycle, domain in zip(self.cycle_heads, domains)]
        if self.method is Method.EMERGENT:
            target = domains[0] if anchor is None else domains[0] + anchor
            return Outputs(target=target, guides=domains[1:], core=core, cycles=cycles)
        return Outputs(target=core, guides=domains, core=core, cycles=cycles)
