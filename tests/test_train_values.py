"""Training with settings at their edges: non-finite weights never become best.pt,
keep_last=0, a model too large for the machine."""

import io
import math
import sys

import pytest
import torch
from rich.console import Console

from conftest import TINY
from s2s.checkpoint import load_checkpoint, numbered_checkpoints
from s2s.config import load_config
from s2s.errors import S2SError
from s2s.train.trainer import Trainer


def _trainer(data, out, extra=()):
    cfg = load_config(None, [*TINY, *extra])
    console = Console(file=io.StringIO(), width=200)
    return Trainer(cfg, data, out, console=console)


def test_non_finite_weights_never_become_best(toy_bin, tmp_path):
    """What `train.lr=inf` did: weights NaN at the first validation were written
    to best.pt. Now training stops with an error and best.pt is not written."""
    trainer = _trainer(toy_bin, tmp_path, ["train.max_steps=4", "train.valid_every=2"])
    validate = trainer.validate

    def poisoned():
        with torch.no_grad():
            next(trainer.model.parameters()).fill_(float("nan"))
        return validate()

    trainer.validate = poisoned
    with pytest.raises(S2SError, match="step 2: the weights are not finite, not sav"):
        trainer.run()
    assert not (tmp_path / "best.pt").exists()


def test_a_nan_validation_score_is_not_an_improvement(toy_bin, tmp_path):
    trainer = _trainer(toy_bin, tmp_path, ["train.max_steps=4", "train.valid_every=2"])
    validate = trainer.validate
    calls = []

    def first_nan():
        result = validate()
        calls.append(1)
        return {**result, "valid_loss": math.nan} if len(calls) == 1 else result

    trainer.validate = first_nan
    trainer.run()
    # Step 2 scored NaN: not kept. Step 4's finite score is the best.
    assert load_checkpoint(tmp_path / "best.pt")["state"]["step"] == 4


def test_keep_last(toy_bin, tmp_path):
    extra = ["train.max_steps=6", "train.save_every=1", "train.valid_every=100"]
    _trainer(toy_bin, tmp_path / "two", [*extra, "train.keep_last=2"]).run()
    assert [p.name for p in numbered_checkpoints(tmp_path / "two")] == [
        "step-5.pt",
        "step-6.pt",
    ]
    _trainer(toy_bin, tmp_path / "none", [*extra, "train.keep_last=0"]).run()
    assert numbered_checkpoints(tmp_path / "none") == []
    assert load_checkpoint(tmp_path / "none" / "last.pt")["state"]["step"] == 6


def test_a_model_too_large_names_its_size_before_allocating(
    toy_bin, tmp_path, monkeypatch
):
    """model.hidden_size=100000: 40 billion parameters in the decoder alone. It is
    counted on the meta device; nothing is allocated, no directory is made."""
    from s2s.train import sizing

    if sys.platform.startswith("linux"):
        assert sizing.available_bytes(torch.device("cpu")) > 0
    # As on a machine with 100 GB free, whatever this one has.
    monkeypatch.setattr(sizing, "available_bytes", lambda device: 100 * 10**9)
    with pytest.raises(S2SError) as e:
        _trainer(toy_bin, tmp_path / "run", ["model.hidden_size=100000"])
    message = str(e.value)
    assert "model.hidden_size=100000" in message
    assert "G parameters: " in message and " GB of weights, at least " in message
    assert " GB to train, but cpu has 100.0 GB free" in message
    assert not (tmp_path / "run").exists()


def test_counting_on_meta_matches_the_real_model():
    from s2s.models.seq2seq import build_model
    from s2s.train.sizing import count_parameters

    for task in ("translation", "lm", "joint"):
        mc = load_config(None, [*TINY, f"model.task={task}"]).model
        real = sum(p.numel() for p in build_model(mc, 50, 60).parameters())
        assert count_parameters(lambda mc=mc: build_model(mc, 50, 60)) == real


def test_a_huge_learning_rate_keeps_no_best(toy_bin, tmp_path):
    """train.lr=inf is refused by the config; a finite but absurd rate leaves the
    weights huge and the validation loss NaN, which is never kept as best.pt."""
    extra = ["train.lr=1e30", "train.warmup_steps=0", "train.max_steps=6"]
    st = _trainer(toy_bin, tmp_path, [*extra, "train.valid_every=3"]).run()
    assert st.best is None and st.skipped_steps >= 4
    assert not (tmp_path / "best.pt").exists()


def test_a_config_built_in_python_is_checked_too(toy_bin, tmp_path):
    cfg = load_config(None, [*TINY, "train.max_steps=2"])
    cfg.train.lr = float("inf")
    with pytest.raises(S2SError, match="train.lr must be a finite number, got inf"):
        Trainer(cfg, toy_bin, tmp_path / "run")
