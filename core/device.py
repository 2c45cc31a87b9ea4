"""Choice of the compute device."""

from __future__ import annotations

import torch

from .errors import DeviceError, InputError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def select_device(name: str = "auto") -> torch.device:
    """Resolve ``auto`` (CUDA, then Apple MPS, then CPU) or check a named device.

    A named device that is not usable raises :class:`DeviceError` instead of
    silently running somewhere else.
    """
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise InputError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(
            f"device 'cuda' was requested but no CUDA GPU is usable (PyTorch {torch.__version__} is {build}); "
            "choose 'auto' or 'cpu'"
        )
    if kind == "mps" and not _mps_available():
        raise DeviceError("device 'mps' was requested but Apple Metal is not available; choose 'auto' or 'cpu'")
    return torch.device(name)
