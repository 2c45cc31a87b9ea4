"""Keeping the best checked step, and stopping early (the rules themselves: :class:`core.choices.Stopping`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..choices import Stopping


@dataclass
class StoppingRule:
    """Keeps track of the best checked step.

    A rule that keeps the last step (``fixed``) keeps it; the others keep the
    step with the lowest :meth:`Stopping.score` and ask to stop once
    ``patience`` steps have passed without a better one. A missing score
    (``None``: the metric could not be computed) is skipped, or keeps the
    latest step while no score has been seen. While step 0 (the anchor, when
    the fit has one) is the best, a better step replaces it only when its gain
    is ``significant`` (:func:`core.model.evidence.gain_lower_bound`).
    """

    rule: Stopping = Stopping.FIXED
    patience: int = 1000
    best_score: float = math.inf
    best_step: int = 0

    def __post_init__(self) -> None:
        self.rule = Stopping.of(self.rule)

    def update(self, step: int, score: float | None, significant: bool = True) -> bool:
        """Record the score of ``step``; True if this step is the new best."""
        if self.rule.keeps_last:
            score = -float(step)
        elif score is None or math.isnan(score):
            if math.isfinite(self.best_score):
                return False
            self.best_step = step
            return True
        if score < self.best_score and (significant or self.best_step != 0):
            self.best_score, self.best_step = score, step
            return True
        return False

    def should_stop(self, step: int) -> bool:
        """True once ``patience`` steps passed since the best step (never for a rule that keeps the last)."""
        return not self.rule.keeps_last and step - self.best_step >= self.patience
