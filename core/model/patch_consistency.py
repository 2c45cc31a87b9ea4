# SPDX-License-Identifier: GPL-2.0-or-later
"""Patch-consistency metric: Fréchet distance of low-level features, filled vs known region.

The features are the first three convolutions of an ImageNet-trained
Inception-v3 (``Conv2d_1a_3x3``, ``Conv2d_2a_3x3``, ``Conv2d_2b_3x3``, 64
channels), as in SIFID. Their weights come from the same file torchvision
uses (about 100 MB), downloaded once into PyTorch's hub cache
(``torch.hub.get_dir()``), so a copy already fetched by torchvision is reused.
The download goes through ``torch.hub.load_state_dict_from_url`` (hash checked
against the sha256 prefix in the file name), or through the function installed
with :func:`set_downloader` (inside QGIS the plugin layer installs one that uses
QGIS's network manager, so the user's proxy settings apply; this module itself
never imports QGIS), checked the same way.
When the file cannot be had (offline, or ``MCPN_OFFLINE=1``; a failed download
is not retried in the same process), a fixed filter bank with the same receptive
fields is used instead (:class:`FilterBankFeatures`) and the result says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

INCEPTION_URL = "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"
# (kernel, stride, padding) of the three layers: the mask is reduced the same way.
LAYERS = ((3, 2, 0), (3, 1, 0), (3, 1, 1))
_INCEPTION_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3")
_INCEPTION_WIDTHS = ((3, 32), (32, 32), (32, 64))
_download_failed = False  # set once a download failed: this process does not try again
_HASH_PREFIX = re.compile(r"-([a-f0-9]*)\.")  # as torch.hub: "name-<sha256 prefix>.pth"

# (url, destination path): writes the file at the url to the path, or raises (OSError...)
Downloader = Callable[[str, str], None]
_downloader: Downloader | None = None


class InceptionFeatures(nn.Module):
    """The first three conv + batch-norm + ReLU layers of Inception-v3."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride=s, padding=p, bias=False) for (i, o), (k, s, p) in zip(_INCEPTION_WIDTHS, LAYERS)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(o, eps=0.001) for _, o in _INCEPTION_WIDTHS)

    def load_inception_state(self, state: dict[str, torch.Tensor]) -> None:
        """Copy the matching tensors of a torchvision Inception-v3 state dict."""
        own = {}
        for index, name in enumerate(_INCEPTION_LAYERS):
            own[f"convs.{index}.weight"] = state[f"{name}.conv.weight"]
            for key in ("weight", "bias", "running_mean", "running_var"):
                own[f"norms.{index}.{key}"] = state[f"{name}.bn.{key}"]
        self.load_state_dict(own, strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
        return x


class FilterBankFeatures(nn.Module):
    """Offline fallback: per channel, local mean, x/y gradients and Laplacian
    (3x3, stride 2), rectified, then two 3x3 binomial smoothings giving local
    energies; same receptive fields as :class:`InceptionFeatures`, 12 features."""

    def __init__(self) -> None:
        super().__init__()
        mean = torch.full((3, 3), 1 / 9)
        dx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
        lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]) / 4
        bank = torch.stack([mean, dx, dx.T, lap])  # 4 filters
        first = torch.zeros(12, 3, 3, 3)
        for channel in range(3):
            first[channel * 4 : channel * 4 + 4, channel] = bank
        self.register_buffer("first", first)
        smooth = torch.outer(torch.tensor([1.0, 2, 1]), torch.tensor([1.0, 2, 1])) / 16
        self.register_buffer("smooth", smooth.expand(12, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (_, s1, p1), (_, s2, p2), (_, s3, p3) = LAYERS
        x = F.conv2d(x, self.first, stride=s1, padding=p1).abs()
        x = F.conv2d(x, self.smooth, stride=s2, padding=p2, groups=12)
        return F.conv2d(x, self.smooth, stride=s3, padding=p3, groups=12)


def set_downloader(function: Downloader | None) -> Downloader | None:
    """Use ``function(url, destination_path)`` to download the weights (None: torch.hub); returns the previous one."""
    global _downloader
    previous, _downloader = _downloader, function
    return previous


def _download_with(function: Downloader, url: str, path: Path) -> bool:
    """Download ``url`` to ``path`` with ``function`` into a temporary file, keeping it only if its hash matches."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    try:
        function(url, temporary)
        digest = hashlib.sha256()
        with open(temporary, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        expected = _HASH_PREFIX.search(path.name)
        if expected is None or not digest.hexdigest().startswith(expected.group(1)):
            return False
        os.replace(temporary, path)
        return True
    except Exception:  # any failure of the installed function (network, disk, ...) means: no weights
        return False
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _cached_inception_state() -> dict[str, torch.Tensor] | None:
    """The Inception-v3 weights from the hub cache, downloading them once; None if unavailable."""
    global _download_failed
    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[1]
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    if os.environ.get("MCPN_OFFLINE") == "1" or _download_failed:
        return None
    if _downloader is not None:
        if _download_with(_downloader, INCEPTION_URL, path):
            return torch.load(path, map_location="cpu", weights_only=True)
        _download_failed = True  # not again for every tile of this run
        return None
    try:
        return torch.hub.load_state_dict_from_url(
            INCEPTION_URL, check_hash=True, map_location="cpu", progress=False, weights_only=True
        )
    except (OSError, RuntimeError, ValueError):  # offline, HTTP error, hash mismatch
        _download_failed = True
        return None


def load_feature_extractor() -> tuple[nn.Module, str]:
    """The feature network (in eval mode) and a sentence naming it."""
    state = _cached_inception_state()
    if state is None:
        return FilterBankFeatures().eval(), "fixed filter bank (Inception-v3 weights unavailable offline)"
    model = InceptionFeatures()
    model.load_inception_state(state)
    return model.eval(), "Inception-v3 first layers (ImageNet weights)"


def feature_mask(mask: torch.Tensor) -> torch.Tensor:
    """Reduce a ``(N, 1, H, W)`` 0/1 mask like the features: 1 where any masked pixel is in the receptive field."""
    for kernel, stride, padding in LAYERS:
        mask = F.max_pool2d(mask, kernel, stride=stride, padding=padding)
    return mask


def _band_triplets(image: torch.Tensor) -> torch.Tensor:
    """``(1, B, H, W)`` in 0..1 -> ``(G, 3, H, W)`` in -1..1, bands grouped in threes."""
    bands = image.shape[1]
    groups = -(-bands // 3)
    order = [min(i, bands - 1) for i in range(groups * 3)]
    return (image[0, order] * 2 - 1).reshape(groups, 3, *image.shape[-2:])


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two ``(N, C)`` feature sets."""
    a, b = a.cpu().double(), b.cpu().double()  # float64 (Apple's MPS has none): on the CPU
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


class PatchConsistency:
    """Scores network outputs against a source image with a fill mask (lower is better)."""

    def __init__(self, source: torch.Tensor, fill: torch.Tensor) -> None:
        """``source``: ``(1, B, H, W)`` normalised image; ``fill``: ``(1, 1, H, W)``, 1 = filled."""
        self.extractor, self.description = load_feature_extractor()
        self.extractor.to(source.device)
        self.filled = feature_mask(fill)[0, 0] > 0
        self.known = ~self.filled
        self.usable = bool(self.filled.sum() > 1 and self.known.sum() > 1)
        self.known_features = self._features(source, self.known) if self.usable else None

    def _features(self, image: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            maps = self.extractor(_band_triplets(image.float()))
        return maps.permute(2, 3, 0, 1)[where].flatten(1)

    def __call__(self, output: torch.Tensor) -> float | None:
        """Distance between the output's filled-region and the source's known-region features."""
        if not self.usable:
            return None
        return frechet_distance(self._features(output, self.filled), self.known_features)
