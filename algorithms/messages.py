# SPDX-License-Identifier: GPL-2.0-or-later
"""What the algorithms say: translation, the log, progress with the time left, the result's summary."""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable

from qgis.core import QgsMessageLog, QgsProcessingFeedback
from qgis.PyQt.QtCore import QCoreApplication

from . import compat

LOG_TAG = "MCPN"
# The engine's progress (its tile fits) spans 0-99 %; the end of the run (output written) is 100 %.
FIT_END = 99.0
_LOG_EVERY = 0.05  # a progress line in the log every 5 % of the steps


def tr(text: str) -> str:
    return QCoreApplication.translate("MCPN", text)


def log_exception(message: str) -> None:
    """Put the current traceback in the QGIS message log (tab "MCPN") for developers."""
    QgsMessageLog.logMessage(f"{message}\n{traceback.format_exc()}", LOG_TAG, compat.MESSAGE_CRITICAL)


def duration(seconds: float) -> str:
    """ "45 s", "12 min 05 s", "2 h 03 min"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class ProgressReporter:
    """The engine's progress callback: the bar moves from the first step, and a log line every 5 % of the steps
    gives the steps done, the time elapsed and an estimate of the time left (from the steps after the first, so the
    start-up, reading the inputs and building the network, does not count as a step)."""

    def __init__(self, feedback: QgsProcessingFeedback, clock: Callable[[], float] = time.monotonic) -> None:
        self.feedback = feedback
        self.clock = clock
        self.start = clock()
        self.next_log = 0.0  # fraction of the steps at which the next line is logged
        self.first: tuple[int, float] | None = None  # the first step reported, and when

    def __call__(self, step: int, total: int) -> None:
        if total <= 0 or step <= 0:
            return
        done = min(step, total) / total
        now = self.clock()
        self.first = self.first or (step, now)
        self.feedback.setProgress(max(1.0, FIT_END * done))  # 1 % from the first step: the bar shows it runs
        if done < self.next_log:
            return
        self.next_log = (int(done / _LOG_EVERY + 1e-9) + 1) * _LOG_EVERY
        line = tr("Step {} of {} ({:.0f} %), {} elapsed").format(
            min(step, total), total, 100 * done, duration(now - self.start)
        )
        first_step, first_time = self.first
        if first_step < step < total:
            per_step = (now - first_time) / (step - first_step)
            line += tr(", about {} left").format(duration(per_step * (total - step)))
        self.feedback.pushInfo(line + ".")


def report_result(result: Any, feedback: QgsProcessingFeedback) -> None:
    """Push the engine result's device, tiles, chosen steps, time and notes to the Processing log."""
    feedback.pushInfo(tr("Device: {}; {} of {} tile(s) fitted.").format(result.device, result.fitted, result.tiles))
    if result.chosen_steps:
        steps = sorted(set(result.chosen_steps))
        feedback.pushInfo(
            tr("Chosen step(s): {}; the run took {:.1f} s.").format(", ".join(map(str, steps)), result.seconds)
        )
    for note in getattr(result, "notes", None) or []:
        feedback.pushInfo(str(note))
