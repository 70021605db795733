"""Resuming from the run directory alone (s2s/train/resume.py): the config and data
directory come from last.pt, only launch settings may change, the log holds every
step once, and training never starts over another run's files."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY
from s2s.checkpoint import load_checkpoint
from s2s.cli import app
from s2s.config import load_config
from s2s.errors import S2SError
from s2s.train.resume import trim_metrics
from s2s.train.trainer import Trainer

runner = CliRunner()


def _sets(*extra: str) -> list[str]:
    return [a for kv in (*TINY, *extra) for a in ("--set", kv)]


def _run(data, out, steps, resume=False, extra=()):
    cfg = load_config(None, [*TINY, f"train.max_steps={steps}", *extra])
    Trainer(cfg, data, out, resume=resume).run()
    return load_checkpoint(out / "last.pt")


def _records(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_resume_with_the_run_directory_alone(toy_bin, tmp_path):
    """A real `s2s train --out R --resume`: no --data, none of the first launch's
    --set; a larger train.batch_tokens whose epoch has fewer batches than the saved
    position (this spun forever before) keeps the share of the epoch done."""
    out = tmp_path / "run"
    first = _run(toy_bin, out, 12, extra=["train.save_every=12"])
    assert first["data_dir"] == str(toy_bin.resolve())
    assert first["versions"] == {"s2s": "0.1.0", "torch": str(torch.__version__)}
    n_old = first["state"]["epoch_batches"]
    assert first["state"]["batch"] == 12 and n_old > 12
    args = [sys.executable, "-m", "s2s", "train", "--out", str(out), "--resume"]
    args += ["--set", "train.max_steps=14", "--set", "train.batch_tokens=2000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    err = " ".join(proc.stderr.split())  # rich wraps long lines
    assert "with the config it holds" in err
    assert "train.max_steps 12 -> 14" in err and "train.batch_tokens 120 -> 2000" in err
    assert "not bit-for-bit" in err
    last = load_checkpoint(out / "last.pt")
    assert last["state"]["step"] == 14
    assert last["config"]["model"]["emb_dim"] == 16  # TINY, from last.pt
    assert last["config"]["train"]["batch_tokens"] == 2000
    n_new = last["state"]["epoch_batches"]
    assert n_new < 12  # the old position lies beyond the new epoch
    # 12 of n_old done -> 12 * n_new // n_old of n_new, then 2 steps.
    assert (last["state"]["epoch"], last["state"]["batch"]) in {
        (0, 12 * n_new // n_old + 2),
        (1, 12 * n_new // n_old + 2 - n_new),
    }


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ("model.hidden_size=64", "model.hidden_size 32 -> 64"),
        ("train.lr=0.01", "train.lr 0.003 -> 0.01"),
        ("train.seed=2", "train.seed 1 -> 2"),
    ],
)
def test_a_change_that_makes_another_run_is_an_error(toy_bin, tmp_path, change, key):
    out = tmp_path / "run"
    _run(toy_bin, out, 2)
    args = ["train", "--out", str(out), "--resume", "--set", change]
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert key in r.output and "another run" in r.output


def test_the_yaml_may_change_launch_keys_only(toy_bin, tmp_path):
    out = tmp_path / "run"
    _run(toy_bin, out, 2)
    yaml = tmp_path / "c.yaml"
    yaml.write_text("train:\n  max_steps: 3\n  valid_every: 2\n  threads: 1\n")
    r = runner.invoke(app, ["train", str(yaml), "--out", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    last = load_checkpoint(out / "last.pt")
    assert last["state"]["step"] == 3 and last["config"]["train"]["valid_every"] == 2
    yaml.write_text("model:\n  emb_dim: 256\ntrain:\n  max_steps: 4\n")
    r = runner.invoke(app, ["train", str(yaml), "--out", str(out), "--resume"])
    assert r.exit_code == 1 and "model.emb_dim 16 -> 256" in r.output


def test_metrics_after_the_checkpoint_are_dropped(toy_bin, tmp_path):
    """What a run killed after step 4's save but before step 6's wrote: records of
    steps 5 and 6 and a torn line. Resumed to 6, every step is logged once."""
    out = tmp_path / "run"
    _run(toy_bin, out, 4)
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 1.0}\n{"step": 6, "loss": 1.0}\n{"step": 7, "lo')
    _run(toy_bin, out, 6, resume=True)
    steps = [r["step"] for r in _records(out) if "loss" in r]
    assert steps == [2, 4, 6]  # TINY logs every 2 steps


def test_trim_metrics_keeps_the_file_when_nothing_is_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n')
    inode = path.stat().st_ino
    assert trim_metrics(path, 2) == 0 and path.stat().st_ino == inode
    assert trim_metrics(path, 1) == 1
    assert path.read_text() == '{"step": 1}\n'
    assert trim_metrics(tmp_path / "none.jsonl", 0) == 0


@pytest.mark.parametrize("leftover", ["best.pt", "step-2.pt", "avg.pt"])
@pytest.mark.parametrize("resume", [True, False])
def test_never_start_over_another_runs_checkpoints(toy_bin, tmp_path, leftover, resume):
    out = tmp_path / "run"
    _run(toy_bin, out, 2, extra=["train.save_every=2"])
    keep = (out / "step-2.pt").read_bytes()
    for p in out.glob("*.pt"):
        p.unlink()
    (out / leftover).write_bytes(keep)
    with pytest.raises(S2SError, match=f"holds checkpoints \\({leftover}.*no last.pt"):
        _run(toy_bin, out, 4, resume=resume)


def test_a_run_killed_before_its_first_checkpoint(toy_bin, tmp_path):
    """Only metrics.jsonl: --resume starts over (and drops its records), a plain
    launch is refused."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 2, "loss": 9.0}\n')
    with pytest.raises(S2SError, match="metrics.jsonl exists"):
        _run(toy_bin, out, 2)
    _run(toy_bin, out, 2, resume=True)
    assert [r["step"] for r in _records(out) if "loss" in r] == [2]


@pytest.mark.parametrize("copied", ["best.pt", "step-2.pt", "avg.pt"])
def test_a_weights_only_checkpoint_over_last_pt(toy_bin, tmp_path, copied):
    out = tmp_path / "run"
    _run(toy_bin, out, 2, extra=["train.save_every=2"])
    r = runner.invoke(app, ["average", str(out), "--out", str(out / "avg.pt")])
    assert r.exit_code == 0, r.output
    shutil.copy(out / copied, out / "last.pt")
    r = runner.invoke(app, ["train", "--out", str(out), "--resume", *_sets()])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "holds weights without the training state" in r.output
    assert "optimizer" in r.output


@pytest.mark.parametrize("name", ["last.pt", "best.pt", "step-2.pt"])
def test_average_never_overwrites_what_training_writes(toy_bin, tmp_path, name):
    out = tmp_path / "run"
    _run(toy_bin, out, 2, extra=["train.save_every=2"])
    before = (out / "last.pt").read_bytes()
    r = runner.invoke(app, ["average", str(out), "--out", str(out / name)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{name} is written by training" in r.output
    assert (out / "last.pt").read_bytes() == before


def test_fresh_launch_needs_data(tmp_path):
    r = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--resume"])
    assert r.exit_code == 1 and "--data is required" in r.output


def test_the_log_names_other_versions():
    from s2s.train.resume import versions_note

    ours = {"s2s": "0.1.0", "torch": str(torch.__version__)}
    assert versions_note({"versions": ours}) == ""
    note = versions_note({"versions": {"s2s": "0.0.9", "torch": "2.0.0"}})
    assert note.startswith(" (written by s2s 0.0.9, torch 2.0.0; this is s2s 0.1.0")
    assert "written by s2s unknown" in versions_note({})  # before versions were kept
