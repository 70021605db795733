"""Training loop: resume exactness, checkpoint contents, learning the toy task."""

import torch

from conftest import TINY
from s2s.checkpoint import load_checkpoint, load_model
from s2s.config import load_config
from s2s.train.trainer import Trainer


def _train(data, out, steps, resume=False, extra=()):
    cfg = load_config(
        None,
        [
            *TINY,
            f"train.max_steps={steps}",
            "train.valid_every=4",
            "train.save_every=3",
            *extra,
        ],
    )
    Trainer(cfg, data, out, resume=resume).run()
    return load_checkpoint(out / "last.pt")


def test_resume_continues_exactly(toy_bin, tmp_path):
    # ~4 batches an epoch at 800 tokens: 9 steps cross epoch borders.
    big = ["train.batch_tokens=800"]
    straight = _train(toy_bin, tmp_path / "a", 9, extra=big)
    _train(toy_bin, tmp_path / "b", 5, extra=big)
    resumed = _train(toy_bin, tmp_path / "b", 9, resume=True, extra=big)
    assert straight["state"]["step"] == resumed["state"]["step"] == 9
    assert straight["state"]["epoch"] >= 1
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_checkpoint_is_self_contained(toy_bin, tmp_path):
    ckpt = _train(toy_bin, tmp_path / "r", 3)
    assert {"config", "vocab", "model", "optimizer", "schedule", "rng", "state"} <= set(
        ckpt
    )
    assert ckpt["config"]["model"]["emb_dim"] == 16
    model, cfg, src_vocab, tgt_vocab = load_model(tmp_path / "r" / "last.pt")
    assert cfg.model.hidden_size == 32 and len(tgt_vocab) > 4
    assert (tmp_path / "r" / "best.pt").exists()
    assert (tmp_path / "r" / "metrics.jsonl").read_text().count("valid_loss") >= 1


def test_existing_run_needs_resume(toy_bin, tmp_path):
    import pytest

    from s2s.errors import S2SError

    _train(toy_bin, tmp_path / "r", 1)
    with pytest.raises(S2SError, match="pass --resume"):
        _train(toy_bin, tmp_path / "r", 2)
    with pytest.raises(S2SError, match="model.hidden_size 32 -> 64"):
        _train(toy_bin, tmp_path / "r", 2, resume=True, extra=["model.hidden_size=64"])


def test_accumulation_and_tbptt_train(toy_bin, tmp_path):
    ckpt = _train(
        toy_bin,
        tmp_path / "r",
        4,
        extra=["train.accum_steps=2", "train.bptt=3", "train.precision=bf16"],
    )
    assert ckpt["state"]["step"] == 4
    assert ckpt["state"]["batch"] in range(0, 12)


def test_sigterm_saves_and_resume_continues(toy_bin, tmp_path):
    """SIGTERM mid-run: the step under way finishes, last.pt is written, exit 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "s2s",
        "train",
        "--data",
        str(toy_bin),
        "--out",
        str(out),
        "--set",
        "train.max_steps=100000",
        *[a for kv in TINY for a in ("--set", kv)],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (
        metrics.exists() and metrics.read_text().count("\n") >= 2
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "SIGTERM received" in err
    step = load_checkpoint(out / "last.pt")["state"]["step"]
    assert step >= 4
    resumed = _train(toy_bin, out, step + 2, resume=True)
    assert resumed["state"]["step"] == step + 2


def test_checkpoints_carry_training_time_for_max_minutes(toy_bin, tmp_path):
    first = _train(toy_bin, tmp_path / "r", 3)
    seconds = first["state"]["seconds"]
    assert seconds > 0  # this run's time is in last.pt, not only in memory
    # A budget the earlier run already used up: the resumed run stops at once.
    budget = [f"train.max_minutes={seconds / 60 / 2}", "train.max_steps=0"]
    again = _train(toy_bin, tmp_path / "r", 0, resume=True, extra=budget)
    assert again["state"]["step"] == 3
    assert again["state"]["seconds"] >= seconds
