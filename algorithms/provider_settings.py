# SPDX-License-Identifier: GPL-2.0-or-later
"""The MCPN provider's settings (*Settings > Options > Processing > Providers > MCPN*), read by both algorithms.

As QGIS's own Python providers do, the provider adds them to Processing's
``ProcessingConfig`` when it loads (:func:`add`) and removes them when it
unloads (:func:`remove`); QGIS keeps their values in the user profile, which
the desktop and ``qgis_process`` both read. Where the Processing plugin is not
importable (plain Python) the defaults apply.

- *Default compute device*: the device of a run whose *Compute device* parameter
  is auto (a parameter set to CPU, CUDA or MPS overrides it).
- *Most CPU threads per fit*: at most this many (0: one per core, as torch chooses;
  fewer while other processes use the CPU, :mod:`core.model.threads`).
- *Default time limit*: the time limit, in minutes, of a run whose *Time limit*
  parameter is 0 (0 here too: none).
"""

from __future__ import annotations

from typing import Any

from ..core.choices import Device, labels
from ..core.config import MAX_TIME_LIMIT
from .messages import tr

DEVICE = "MCPN_DEFAULT_DEVICE"
THREADS = "MCPN_CPU_THREADS"
TIME_LIMIT = "MCPN_DEFAULT_TIME_LIMIT"


def _config() -> Any:
    """Processing's ``ProcessingConfig`` and ``Setting``, or None where the Processing plugin is missing."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return None
    return ProcessingConfig, Setting


def _check_threads(value: Any) -> None:
    """The dialog's check of a thread count: a whole number, at least 0."""
    try:
        ok = int(value) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(tr("The CPU thread count must be a whole number, 0 for one per core: {}").format(value))


def _check_time_limit(value: Any) -> None:
    """The dialog's check of a default time limit: minutes from 0 (none) to a week."""
    try:
        ok = 0 <= float(value) <= MAX_TIME_LIMIT
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(tr("The time limit must be between 0 (none) and {} minutes: {}").format(MAX_TIME_LIMIT, value))


def add(group: str, icon: Any = None) -> None:
    """Add the settings to Processing's options under ``group`` (the provider's name, with its ``icon``) and read
    their saved values."""
    config = _config()
    if config is None:
        return
    processing_config, setting = config
    if icon is not None:
        processing_config.settingIcons[group] = icon
    devices = [tr(label) for label in labels(list(Device))]
    processing_config.addSetting(
        setting(
            group,
            DEVICE,
            tr("Default compute device (used when an algorithm's Compute device is auto)"),
            devices[Device.AUTO.number],
            valuetype=setting.SELECTION,
            options=devices,
        )
    )
    processing_config.addSetting(
        setting(
            group,
            THREADS,
            tr("Most CPU threads per fit (0: one per core)"),
            0,
            valuetype=setting.INT,
            validator=_check_threads,
        )
    )
    processing_config.addSetting(
        setting(
            group,
            TIME_LIMIT,
            tr("Default time limit in minutes (used when an algorithm's Time limit is 0; 0: none)"),
            0,
            valuetype=setting.FLOAT,
            validator=_check_time_limit,
        )
    )
    processing_config.readSettings()


def remove() -> None:
    """Take the settings out of Processing's options (the values stay saved in the profile)."""
    config = _config()
    if config is None:
        return
    for name in (DEVICE, THREADS, TIME_LIMIT):
        if name in config[0].settings:
            config[0].removeSetting(name)


def _value(name: str) -> Any:
    config = _config()
    return None if config is None else config[0].getSetting(name)


def default_device() -> Device:
    """The device that a Compute device of auto stands for (auto itself unless the user chose another)."""
    number = _value(DEVICE)  # a selection's option number
    devices = list(Device)
    return devices[number] if isinstance(number, int) and 0 <= number < len(devices) else Device.AUTO


def cpu_threads() -> int | None:
    """The most CPU threads a fit uses; None for one per core (the setting's 0, or no valid value)."""
    try:
        threads = int(_value(THREADS) or 0)  # a saved value comes back from the profile as text
    except (TypeError, ValueError):
        return None
    return threads if threads > 0 else None


def time_limit() -> float:
    """The time limit in minutes of a run whose Time limit parameter is 0 (0: none, also without a valid value)."""
    try:
        minutes = float(_value(TIME_LIMIT) or 0)  # a saved value comes back from the profile as text
    except (TypeError, ValueError):
        return 0.0
    return minutes if 0 <= minutes <= MAX_TIME_LIMIT else 0.0
