"""Learning-rate schedule: warmup, inverse-sqrt, and the cooldown to the end of the
budget (train.cooldown), alone and inside the trainer."""

import json
import math

import pytest
import torch

from conftest import TINY
from s2s.checkpoint import load_checkpoint
from s2s.config import TrainConfig, load_config
from s2s.errors import S2SError
from s2s.train.schedule import LRSchedule, budget_used
from s2s.train.stopping import StopRules
from s2s.train.trainer import Trainer


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"lr": 1e-3, "warmup_steps": 10, "min_lr": 1e-6, **kw})


def test_without_cooldown_the_budget_changes_nothing():
    s = LRSchedule(_cfg())
    assert s.lr(5) == pytest.approx(5e-4)  # warmup
    assert s.lr(40) == pytest.approx(1e-3 * math.sqrt(10 / 40))
    assert s.lr(40, used=0.99) == s.lr(40)


def test_cooldown_falls_linearly_over_the_last_part_of_the_budget():
    plain = LRSchedule(_cfg(max_steps=100))
    cool = LRSchedule(_cfg(max_steps=100, cooldown=0.2))
    for step in (5, 20, 50, 80):  # before the last 20%: the schedule as it was
        used = budget_used(cool.cfg, step - 1, 0.0)
        assert cool.lr(step, used) == plain.lr(step)
    # from 80% of the budget: the inverse-sqrt rate times (1 - used) / 0.2
    for used in (0.85, 0.9, 0.95):
        assert cool.lr(90, used) == pytest.approx(plain.lr(90) * (1 - used) / 0.2)
    assert cool.lr(100, 1.0) == 1e-6  # down to min_lr, never below
    steps = [cool.lr(s, budget_used(cool.cfg, s - 1, 0.0)) for s in range(81, 101)]
    assert all(a > b for a, b in zip(steps, steps[1:], strict=False))


def test_cooldown_one_decays_from_the_first_step_and_scales_warmup():
    s = LRSchedule(_cfg(max_steps=100, cooldown=1.0, schedule="constant"))
    assert s.lr(5, 0.04) == pytest.approx(5e-4 * 0.96)  # warmup, already cooling
    assert s.lr(50, 0.49) == pytest.approx(1e-3 * 0.51)


def test_the_budget_is_whichever_limit_is_nearer():
    c = _cfg(max_steps=1000, max_minutes=60.0)
    assert budget_used(c, 100, 30.0) == pytest.approx(0.5)  # the clock
    assert budget_used(c, 900, 30.0) == pytest.approx(0.9)  # the steps
    assert budget_used(c, 2000, 0.0) == 1.0
    assert budget_used(_cfg(max_epochs=3), 500, 10.0) == 0.0


def test_cooldown_needs_a_budget_and_a_fraction():
    with pytest.raises(S2SError, match="needs train.max_steps or train.max_minutes"):
        load_config(None, ["train.cooldown=0.2", "train.max_epochs=3"])
    with pytest.raises(S2SError, match="train.cooldown"):
        load_config(None, ["train.cooldown=1.5", "train.max_steps=10"])
    cfg = load_config(None, ["train.cooldown=0.2", "train.max_minutes=60"])
    assert cfg.train.cooldown == 0.2


class _TwoRanks:
    """A Distributed stand-in whose other rank has `other`'s values."""

    enabled = True

    def __init__(self, other):
        self.other = other

    def max(self, values, device):
        return [max(a, b) for a, b in zip(values, self.other, strict=True)]


def test_the_minutes_the_cooldown_reads_are_agreed_by_all_ranks():
    cfg = _cfg(max_minutes=60.0, cooldown=0.2)
    rules = StopRules(cfg, _TwoRanks([0, 0, 50.0]), torch.device("cpu"), None)
    assert rules.reason(step=10, epoch=0, minutes=49.5) == ""
    assert rules.minutes == 50.0  # the slower clock's, on both ranks


def _run(data, out, steps, resume=False, extra=(), stop_at=0):
    cfg = load_config(
        None,
        [
            *TINY,
            f"train.max_steps={steps}",
            "train.warmup_steps=2",
            "train.valid_every=4",
            "train.save_every=3",
            "train.log_every=1",
            *extra,
        ],
    )
    trainer = Trainer(cfg, data, out, resume=resume)
    if stop_at:  # as a signal would: saved after step `stop_at`, the budget unchanged
        reason = trainer.stop_rules.reason
        trainer.stop_rules.reason = lambda step, *a: (
            "interrupted" if step == stop_at else reason(step, *a)
        )
    trainer.run()
    return load_checkpoint(out / "last.pt")


def test_the_trainer_cools_down_to_the_last_step(toy_bin, tmp_path):
    _run(toy_bin, tmp_path / "r", 10, extra=["train.cooldown=0.5"])
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    lr = {r["step"]: r["lr"] for r in map(json.loads, lines) if "lr" in r}
    assert lr[5] == pytest.approx(0.003 * math.sqrt(2 / 5))  # step 5: used 0.4
    assert lr[8] == pytest.approx(0.003 * math.sqrt(2 / 8) * (1 - 0.7) / 0.5)
    assert lr[10] == pytest.approx(0.003 * math.sqrt(2 / 10) * 0.1 / 0.5)


def test_resume_continues_exactly_through_the_cooldown(toy_bin, tmp_path):
    extra = ["train.batch_tokens=800", "train.cooldown=0.5"]
    straight = _run(toy_bin, tmp_path / "a", 9, extra=extra)
    stopped = _run(toy_bin, tmp_path / "b", 9, extra=extra, stop_at=6)
    assert stopped["state"]["step"] == 6  # inside the cooldown (steps 6 to 9)
    resumed = _run(toy_bin, tmp_path / "b", 9, resume=True, extra=extra)
    assert resumed["state"]["step"] == 9
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
