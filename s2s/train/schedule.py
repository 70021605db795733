"""Learning-rate schedule: linear warmup, then inverse-sqrt decay, plateau halving or
a constant rate. One small class whose whole state is two numbers, so checkpoints
resume it exactly."""

from __future__ import annotations

import math

from s2s.config import TrainConfig

__all__ = ["LRSchedule"]


class LRSchedule:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.factor = 1.0  # plateau reductions so far
        self.bad = 0  # validations since the last improvement (plateau only)
        self.best: float | None = None

    def lr(self, step: int) -> float:
        """The learning rate of optimizer step `step` (1-based)."""
        c = self.cfg
        if c.warmup_steps and step <= c.warmup_steps:
            return c.lr * step / c.warmup_steps
        decay = 1.0
        if c.schedule == "inverse_sqrt" and c.warmup_steps:
            decay = math.sqrt(c.warmup_steps / step)
        return max(c.min_lr, c.lr * self.factor * decay)

    def on_validation(self, loss: float) -> None:
        if self.cfg.schedule != "plateau":
            return
        if self.best is None or loss < self.best:
            self.best, self.bad = loss, 0
            return
        self.bad += 1
        if self.bad >= self.cfg.plateau_patience:
            self.factor *= self.cfg.plateau_factor
            self.bad = 0

    def state_dict(self) -> dict:
        return {"factor": self.factor, "bad": self.bad, "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.factor, self.bad, self.best = state["factor"], state["bad"], state["best"]
