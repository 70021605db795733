"""Learning-rate schedule: linear warmup, then inverse-sqrt decay, plateau halving or
a constant rate; optionally a linear cooldown to `train.min_lr` over the last part
of the budget. One small class whose whole state is three numbers, so checkpoints
resume it exactly (the budget spent comes from the trainer's step and clock)."""

from __future__ import annotations

import math

from s2s.config import TrainConfig

__all__ = ["LRSchedule", "budget_used"]


def budget_used(cfg: TrainConfig, step: int, minutes: float) -> float:
    """The fraction of the run's budget spent after `step` steps and `minutes`
    minutes of training: train.max_steps or train.max_minutes, whichever is nearer
    its end (0 when neither is set), at most 1."""
    used = 0.0
    if cfg.max_steps:
        used = step / cfg.max_steps
    if cfg.max_minutes:
        used = max(used, minutes / cfg.max_minutes)
    return min(used, 1.0)


class LRSchedule:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.factor = 1.0  # plateau reductions so far
        self.bad = 0  # validations since the last improvement (plateau only)
        self.best: float | None = None

    def lr(self, step: int, used: float = 0.0) -> float:
        """The learning rate of optimizer step `step` (1-based), with `used` of the
        budget spent before it (`budget_used`; only train.cooldown reads it)."""
        c = self.cfg
        # 1 until the last `cooldown` of the budget, then linearly down to 0
        cool = min(1.0, (1.0 - used) / c.cooldown) if c.cooldown else 1.0
        if c.warmup_steps and step <= c.warmup_steps:
            return c.lr * step / c.warmup_steps * cool
        decay = 1.0
        if c.schedule == "inverse_sqrt" and c.warmup_steps:
            decay = math.sqrt(c.warmup_steps / step)
        return max(c.min_lr, c.lr * self.factor * decay * cool)

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
