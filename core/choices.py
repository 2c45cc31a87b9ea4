"""Every choice of a run, one Enum each: its name in Python, its number in the dialogs, its label and behaviour.

A member's ``value`` is the name the Python API, saved settings and the
benchmarks use (``"stacked"``); its :attr:`Choice.number` is its position here,
the number the Processing dialogs, saved models and ``qgis_process`` use (so
new members go at the end); its ``label`` is what the dialogs show. What a
choice does is asked of its member (``settings.stopping.holds_out``), never
by comparing names. Nothing here imports torch.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Sequence, TypeVar

from .errors import DeviceError, InputError

__all__ = ["Choice", "DegradationKind", "Device", "InputKind", "MemoryFormat", "Method", "Precision", "Start",
           "Scope", "Stopping", "TILE_FITS"]  # fmt: skip

C = TypeVar("C", bound="Choice")
TILE_FITS = 16  # auto scope: super-resolution fits each tile up to this many tiles (sr_scope_534, sr_scale_10980)


# how error messages name a choice whose class name does not say it
_WHAT = {"Stopping": "stopping rule", "Start": "anchor", "DegradationKind": "degradation", "InputKind": "input kind",
         "MemoryFormat": "memory format"}  # fmt: skip


class Choice(Enum):
    """A member is declared as ``(value, label, *data)``; subclasses name their data in ``__init__``."""

    label: str

    def __new__(cls, value: str, label: str, *data: Any) -> Choice:
        member = object.__new__(cls)
        member._value_ = value
        member.label = label
        return member

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls: type[C], value: C | str) -> C:
        """The member named ``value`` (or ``value`` itself), or an :class:`InputError` naming the choices."""
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(member.value for member in cls)
            raise InputError(
                f"unknown {_WHAT.get(cls.__name__, cls.__name__.lower())} {value!r}; expected one of {names}"
            ) from None

    @property
    def number(self) -> int:
        """Its position among the members: the option number of the dialogs and ``qgis_process``."""
        return list(type(self)).index(self)


class Method(Choice):
    """The MCPN variant, or the Stacked baseline (:class:`core.model.networks.MCPN`)."""

    EMERGENT = ("emergent", "Emergent")
    DIRECT = ("direct", "Direct")
    STACKED = ("stacked", "Stacked")

    def learning_rate(self, start: Start) -> float:
        """Adam's learning rate when none is given: anchored fits, and fits from noise as in the paper
        (docs/experiments.md, learning-rate sweeps)."""
        return 8e-3 if start is Start.NOISE else 3e-3


class Start(Choice):
    """What the network starts from (``Settings.anchor``)."""

    ESTIMATE = ("auto", "From the best instant estimate (guide regression or interpolation)")
    NOISE = ("none", "From noise (as in Czerkawski et al.'s MCPN)")


class Stopping(Choice):
    """Which checked step is kept, and when the fit stops early (:class:`core.model.stopping.StoppingRule`).

    Data: the label in super-resolution (None: not offered there) and the
    :class:`core.model.fitting.TracePoint` metric it minimises, with its sign
    (None: the last step is kept).
    """

    FIXED = ("fixed", "Fixed number of steps", "Fixed number of steps", None, 1)
    KNOWN_RMSE = ("known_rmse", "Known-region RMSE", "Low-resolution RMSE", "known_rmse", 1)
    PATCH_CONSISTENCY = ("patch_consistency", "Patch consistency", None, "patch_consistency", 1)
    VALIDATED = ("validated", "Held-out clear pixels (default)", "Held-out input pixels (default)", "holdout_ssim", -1)

    def __init__(self, value: str, label: str, super_resolution_label: str | None, metric: str | None, sign: int):
        self.super_resolution_label = super_resolution_label
        self.metric, self.sign = metric, sign

    @classmethod
    def offered(cls, super_resolution: bool) -> list[Stopping]:
        """The rules a pipeline offers, in their option order."""
        return [rule for rule in cls if rule.super_resolution_label or not super_resolution]

    @property
    def keeps_last(self) -> bool:
        return self.metric is None

    @property
    def holds_out(self) -> bool:
        """Whether known pixels are hidden from the loss to score the steps."""
        return self is Stopping.VALIDATED

    @property
    def scores_texture(self) -> bool:
        """Whether the steps are scored by patch consistency (inpainting only: it needs a filled region)."""
        return self is Stopping.PATCH_CONSISTENCY

    def score(self, point: Any) -> float | None:
        """The value to minimise at a checked step (``point``: a TracePoint); None when it is unknown."""
        value = getattr(point, self.metric) if self.metric else None
        return None if value is None else self.sign * value


class Scope(Choice):
    """What one network is fitted to: each tile, or the whole scene (:mod:`core.model.scene`); ``AUTO`` is the
    scene for inpainting and each tile for super-resolution of up to :data:`TILE_FITS` tiles, the scene beyond
    (:meth:`resolve`): each was measured best where it applies, and fits one by one cost days on a whole tile."""

    TILE = ("tile", "One network per tile")
    SCENE = ("scene", "One network for the scene, applied to every tile")
    AUTO = ("auto", f"auto (one for the scene; one per tile when super-resolving up to {TILE_FITS} tiles)")

    def resolve(self, super_resolution: bool, tiles: int = 1) -> Scope:
        if self is Scope.AUTO:
            return Scope.TILE if super_resolution and tiles <= TILE_FITS else Scope.SCENE
        return self


class Device(Choice):
    """Where the network is fitted; ``AUTO`` becomes the first usable of CUDA, MPS and the CPU (:meth:`resolve`)."""

    AUTO = ("auto", "auto (a GPU when there is one, else the CPU)")
    CPU = ("cpu", "CPU")
    CUDA = ("cuda", "CUDA (NVIDIA GPU)")
    MPS = ("mps", "MPS (Apple GPU)")

    def resolve(self) -> Device:
        """The concrete device: ``AUTO`` resolved, a named GPU checked (:class:`DeviceError` when it is missing)."""
        import torch

        cuda = torch.cuda.is_available()
        mps = getattr(torch.backends, "mps", None)
        mps = bool(mps and mps.is_available())
        if self is Device.AUTO:
            return Device.CUDA if cuda else Device.MPS if mps else Device.CPU
        if self is Device.CUDA and not cuda:
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(
                f"device 'cuda' was requested but no CUDA GPU is usable (PyTorch {torch.__version__} is {build}); "
                "choose 'auto' or 'cpu'"
            )
        if self is Device.MPS and not mps:
            raise DeviceError("device 'mps' was requested but Apple Metal is not available; choose 'auto' or 'cpu'")
        return self

    def torch(self) -> Any:
        """The ``torch.device`` (:meth:`resolve` first)."""
        import torch

        return torch.device(self.resolve().value)


class Precision(Choice):
    FP32 = ("fp32", "FP32 (default)")
    BF16 = ("bf16", "bf16 (faster on CPUs with AVX-512 BF16 or AMX)")

    def autocast_dtype(self) -> Any:
        """The dtype of torch's autocast, None for full precision."""
        import torch

        return torch.bfloat16 if self is Precision.BF16 else None


class DegradationKind(Choice):
    """How a low-resolution input was made from the high-resolution image (:mod:`core.model.degradation`)."""

    AREA = ("area", "Area average (a sensor's pixels, GDAL's average resampling)")
    BILINEAR = ("bilinear", "Bilinear resampling (as in Czerkawski et al.'s MCPN)")


class InputKind(Choice):
    """The network's fixed input besides the anchor and the guides."""

    NOISE = ("noise", "Uniform noise")
    MESHGRID = ("meshgrid", "Coordinate grid")


class MemoryFormat(Choice):
    CHANNELS_LAST = ("channels_last", "NHWC")
    CONTIGUOUS = ("contiguous", "NCHW")

    def torch(self) -> Any:
        import torch

        return torch.channels_last if self is MemoryFormat.CHANNELS_LAST else torch.contiguous_format


def labels(members: Sequence[Choice], super_resolution: bool = False) -> list[str]:
    """The dialog's option labels of ``members``, in their order."""
    if super_resolution:
        return [getattr(member, "super_resolution_label", None) or member.label for member in members]
    return [member.label for member in members]
