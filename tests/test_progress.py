"""What training reports: log lines under a pipe, the time budget, train.log,
config.yaml, TensorBoard scalars."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import TINY
from s2s.config import TrainConfig, load_config
from s2s.errors import S2SError
from s2s.train.progress import Budget, format_seconds, window_line
from s2s.train.trainer import Trainer

# step 10/20 | epoch 1 | loss 3.783 | ppl 43.96 | 6134 tok/s | lr 3.00e-03 |
# gnorm 0.26 | 0:00:00 elapsed | 0:00:01 left
LINE = re.compile(
    r"^step (\d+)(/~?\d+)? \| epoch \d+ \| loss \d+\.\d{3} \| ppl \d+\.\d{2} \| "
    r"\d+ tok/s \| lr \d\.\d{2}e[-+]\d{2} \| gnorm (\d+\.\d{2}|\?)"
    r"( \| [a-z_]+ \d+)* \| \d+:\d{2}:\d{2} elapsed \| (\d+:\d{2}:\d{2}|\?) left$"
)


def test_format_seconds():
    assert format_seconds(0) == "0:00:00"
    assert format_seconds(3725.4) == "1:02:05"
    assert format_seconds(None) == "?"


def test_budget_steps_minutes_and_epochs(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    tc = TrainConfig(max_steps=100)
    budget = Budget(tc, start_step=0, start_time=1000.0)
    assert budget.estimate(0, 0.0, 50, 0.0) == (None, 100, True)  # no speed yet
    clock[0] = 1010.0  # 20 steps in 10 s: 2 steps/s
    assert budget.estimate(20, 0.4, 50, 10.0) == (40.0, 100, True)
    # Under a time budget that ends first, the total is an estimate.
    tc = TrainConfig(max_steps=100, max_minutes=0.5)
    left, total, exact = Budget(tc, 0, 1000.0).estimate(20, 0.4, 50, 10.0)
    assert (left, total, exact) == (20.0, 60.0, False)
    # Epochs: 1.6 epochs of 50 steps left at 2 steps/s.
    tc = TrainConfig(max_epochs=2)
    left, total, exact = Budget(tc, 0, 1000.0).estimate(20, 0.4, 50, 10.0)
    assert (left, total, exact) == (40.0, 100.0, False)
    # A resumed run: speed counts the steps of this process only.
    tc = TrainConfig(max_minutes=1.0)
    left, total, _ = Budget(tc, 500, 1000.0).estimate(520, 3.0, 50, 40.0)
    assert (left, total) == (20.0, 560.0)
    assert Budget(TrainConfig(patience=3), 0, 1000.0).estimate(20, 0, 50, 10) == (
        None,
        None,
        False,
    )


def test_window_line_format():
    record = {
        "epoch": 2,
        "loss": 3.41234,
        "ppl": 30.33,
        "tok_per_s": 2345.6,
        "lr": 0.001,
        "grad_norm": 1.234,
        "elapsed": 312.0,
        "_left": 408.0,
    }
    line = window_line(200, 1830.4, False, record, " | skipped_steps 1")
    assert line == (
        "step 200/~1830 | epoch 2 | loss 3.412 | ppl 30.33 | 2346 tok/s | "
        "lr 1.00e-03 | gnorm 1.23 | skipped_steps 1 | 0:05:12 elapsed | "
        "0:06:48 left"
    )
    assert LINE.match(line)


def test_log_lines_under_a_pipe(toy_bin, tmp_path):
    """`s2s train ... 2> log`: a plain line every log_every steps (no bar, no
    control characters), the same lines in train.log, the config in config.yaml."""
    out = tmp_path / "run"
    sets = [*TINY, "train.max_steps=12", "train.log_every=4", "train.valid_every=6"]
    args = [sys.executable, "-m", "s2s", "train", "--data", str(toy_bin)]
    args += ["--out", str(out)] + [x for s in sets for x in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "60"}
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "\x1b" not in r.stderr and "\r" not in r.stderr
    lines = r.stderr.splitlines()
    steps = [int(m.group(1)) for m in map(LINE.match, lines) if m]
    assert steps == [4, 8, 12]
    # Lines are never wrapped at the terminal width (COLUMNS=60).
    assert all(len(x) > 60 for x in lines if LINE.match(x))
    assert [x for x in lines if x.startswith("step 12/12 ")]
    assert "step 6: valid loss" in r.stderr
    log = (out / "train.log").read_text().splitlines()
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
    assert all(stamp.match(x) for x in log)
    assert [x[20:] for x in log] == lines
    # The records behind the lines: ppl, grad norm, elapsed training time.
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [x for x in records if "loss" in x]
    assert [x["step"] for x in train] == [4, 8, 12]
    for x in train:
        assert x["ppl"] == pytest.approx(2.718281828 ** x["loss"], rel=1e-3)
        assert x["grad_norm"] > 0 and x["elapsed"] >= 0
    valid = [x for x in records if "valid_loss" in x]
    assert [x["step"] for x in valid] == [6, 12] and all("elapsed" in x for x in valid)
    # config.yaml reads back as the run's config.
    again = load_config(out / "config.yaml")
    assert again == load_config(None, sets)


def test_resumed_run_appends_to_train_log(toy_bin, tmp_path):
    from rich.console import Console

    def run(steps, resume):
        cfg = load_config(
            None, [*TINY, f"train.max_steps={steps}", "train.log_every=2"]
        )
        console = Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115
        Trainer(cfg, toy_bin, tmp_path, resume=resume, console=console).run()

    run(4, False)
    run(6, True)
    log = (tmp_path / "train.log").read_text()
    assert log.count("training ") == 2 and "resumed" in log
    assert [int(m) for m in re.findall(r" step (\d+)/6 ", log)] == [6]
    assert "max_steps: 6" in (tmp_path / "config.yaml").read_text()


def test_tensorboard_scalars(toy_bin, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    sets = [*TINY, "train.max_steps=6", "train.log_every=2", "train.valid_every=3"]
    cfg = load_config(None, [*sets, "train.tensorboard=true"])
    Trainer(cfg, toy_bin, tmp_path).run()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("train/loss", "train/ppl", "train/lr", "train/tok_per_s"):
        assert tag in tags
    assert {"train/grad_norm", "train/skipped_steps", "valid/loss"} <= tags
    assert {"valid/bleu", "valid/chrf"} <= tags
    records = [
        json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    loss = [(x["step"], x["loss"]) for x in records if "loss" in x]
    got = [(e.step, e.value) for e in events.Scalars("train/loss")]
    assert [s for s, _ in got] == [s for s, _ in loss] == [2, 4, 6]
    assert [v for _, v in got] == pytest.approx([v for _, v in loss], rel=1e-6)
    assert [e.step for e in events.Scalars("valid/loss")] == [3, 6]


def test_tensorboard_missing_is_a_clear_error(toy_bin, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    cfg = load_config(None, [*TINY, "train.max_steps=2", "train.tensorboard=true"])
    with pytest.raises(S2SError, match=r"pip install 's2s\[tensorboard\]'"):
        Trainer(cfg, toy_bin, tmp_path)  # before training starts
    assert not (tmp_path / "last.pt").exists()


def test_terminal_bar_has_a_total_and_time_left(toy_bin, tmp_path):
    """In a terminal the bar replaces the lines; under max_minutes it shows an
    estimated total (~N) and the time left, and train.log still gets the lines."""
    import io

    from rich.console import Console

    text = io.StringIO()
    console = Console(file=text, width=200, force_terminal=True)
    sets = [*TINY, "train.max_minutes=0.03", "train.log_every=5"]
    Trainer(load_config(None, sets), toy_bin, tmp_path, console=console).run()
    shown = text.getvalue()
    assert re.search(r" \d+/~\d+ ", shown) and " left" in shown
    assert not [x for x in shown.splitlines() if LINE.match(x)]
    log = (tmp_path / "train.log").read_text().splitlines()
    lines = [x[20:] for x in log if LINE.match(x[20:])]
    assert lines and all(re.match(r"step \d+/~\d+ ", x) for x in lines)
    assert log[-1].endswith("train.max_minutes=0.03 reached")
