"""Training when things go wrong: non-finite steps, out of memory, a full disk, a
killed process. And determinism: the same seed gives the same weights."""

import errno
import io
import json

import pytest
import torch
from rich.console import Console

from conftest import TINY
from s2s.checkpoint import load_checkpoint
from s2s.config import load_config
from s2s.errors import S2SError
from s2s.train.trainer import Trainer


def _trainer(data, out, steps, extra=(), resume=False):
    cfg = load_config(
        None, [*TINY, f"train.max_steps={steps}", "train.log_every=1", *extra]
    )
    text = io.StringIO()
    console = Console(file=text, width=200)
    return Trainer(cfg, data, out, resume=resume, console=console), text


def _inject(trainer, steps, fault):
    """Make the forward/backward of `steps` go wrong: "nan" poisons the loss and
    the gradients, "inf_grad" only the gradients, "oom" runs out of memory."""
    clean = trainer.task.forward_backward

    def forward_backward(model, batch, scale, backward, autocast):
        if trainer.state.step not in steps:
            return clean(model, batch, scale, backward, autocast)
        if fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        loss, counts = clean(model, batch, scale * float("inf"), backward, autocast)
        return (float("nan") if fault == "nan" else loss), counts

    trainer.task.forward_backward = forward_backward


def _records(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_nonfinite_step_is_skipped_and_reported(toy_bin, tmp_path):
    trainer, text = _trainer(toy_bin, tmp_path, 5)
    _inject(trainer, {3}, "nan")
    st = trainer.run()
    assert (st.step, st.skipped_steps, st.nonfinite_in_a_row) == (5, 1, 0)
    assert "step 3: non-finite gradient, skipped" in text.getvalue()
    assert "skipped_steps 1" in text.getvalue()  # the progress line
    assert [r["skipped_steps"] for r in _records(tmp_path) if "loss" in r] == [
        0,
        0,
        1,
        1,
        1,
    ]
    weights = load_checkpoint(tmp_path / "last.pt")["model"]
    assert all(v.isfinite().all() for v in weights.values())


def test_too_many_nonfinite_steps_stop_with_the_last_good_checkpoint(toy_bin, tmp_path):
    extra = ["train.max_bad_steps=3", "train.save_every=2"]
    trainer, _ = _trainer(toy_bin, tmp_path, 20, extra)
    _inject(trainer, set(range(5, 21)), "nan")
    with pytest.raises(S2SError, match=r"3 steps in a row \(to step 7\) had non-fin"):
        trainer.run()
    # Steps 5 and 6 changed nothing: last.pt (step 6) holds step 4's weights.
    last = load_checkpoint(tmp_path / "last.pt")
    good = load_checkpoint(tmp_path / "step-4.pt")
    assert last["state"]["step"] == 6
    for k, v in good["model"].items():
        assert torch.equal(v, last["model"][k]), k


def test_non_finite_weights_are_not_saved(toy_bin, tmp_path):
    trainer, _ = _trainer(toy_bin, tmp_path, 2)
    trainer.run()
    with torch.no_grad():
        next(trainer.model.parameters())[0] = float("nan")
    with pytest.raises(S2SError, match="weights are not finite"):
        trainer.save()
    assert load_checkpoint(tmp_path / "last.pt")["state"]["step"] == 2


def test_fp16_overflow_lowers_the_scale_and_is_not_a_bad_step(toy_bin, tmp_path):
    trainer, text = _trainer(toy_bin, tmp_path, 4, ["train.max_bad_steps=1"])
    # fp16 autocast needs CUDA; the scaler's bookkeeping runs on the CPU too.
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    _inject(trainer, {2}, "inf_grad")
    st = trainer.run()
    assert (st.step, st.skipped_steps, st.scale_drops) == (4, 1, 1)
    assert "loss scale lowered to 512" in text.getvalue()
    steps = [r for r in _records(tmp_path) if "loss" in r]
    assert [r["scale_drops"] for r in steps] == [0, 1, 1, 1]
    assert steps[-1]["loss_scale"] == 512


def test_out_of_memory_skips_the_batch(toy_bin, tmp_path):
    trainer, text = _trainer(toy_bin, tmp_path, 4)
    _inject(trainer, {2}, "oom")
    st = trainer.run()
    assert (st.step, st.oom_skipped, st.oom_in_a_row) == (4, 1, 0)
    assert "lower train.batch_tokens (now 120)" in text.getvalue()
    assert [r["oom_skipped"] for r in _records(tmp_path) if "loss" in r] == [0, 1, 1, 1]
    assert not any(p.grad is not None for p in trainer.model.parameters())


def test_out_of_memory_every_step_is_an_error(toy_bin, tmp_path):
    trainer, _ = _trainer(toy_bin, tmp_path, 10, ["train.max_bad_steps=2"])
    _inject(trainer, set(range(1, 11)), "oom")
    with pytest.raises(S2SError, match="2 steps in a row .* ran out of memory"):
        trainer.run()


def test_output_dir_must_be_writable_with_room(toy_bin, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(S2SError, match="cannot write checkpoints here"):
        _trainer(toy_bin, tmp_path / "file" / "run", 1)

    class Usage:
        free = 1000

    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage)
    with pytest.raises(S2SError, match=r"0 MiB free, but training needs about \d+ MiB"):
        _trainer(toy_bin, tmp_path / "run", 1)


def test_failed_save_keeps_last_checkpoint(toy_bin, tmp_path, monkeypatch):
    """ENOSPC halfway through writing: last.pt keeps the previous save, the
    temporary file goes, and the CLI reports one line."""
    from typer.testing import CliRunner

    from s2s.cli import app

    real_save, calls = torch.save, []

    def save(obj, f):
        calls.append(1)
        if len(calls) == 3:  # step 4's last.pt (step 2 wrote last.pt, step-2.pt)
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    args = ["train", "--data", str(toy_bin), "--out", str(out)]
    sets = [*TINY, "train.max_steps=6", "train.save_every=2"]
    result = CliRunner().invoke(app, args + [a for kv in sets for a in ("--set", kv)])
    assert result.exit_code == 1
    assert "No space left on device" in result.output
    assert "last.pt holds step 2" in result.output
    assert "Traceback" not in result.output
    assert load_checkpoint(out / "last.pt")["state"]["step"] == 2
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".*.s2s-tmp"))


def test_same_seed_same_weights(toy_bin, tmp_path):
    runs = []
    try:
        for name, extra in (("a", []), ("b", []), ("c", ["train.deterministic=true"])):
            trainer, _ = _trainer(toy_bin, tmp_path / name, 6, extra)
            trainer.run()
            runs.append(load_checkpoint(tmp_path / name / "last.pt")["model"])
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    for k, v in runs[0].items():
        assert torch.equal(v, runs[1][k]) and torch.equal(v, runs[2][k]), k


def test_sigkill_then_resume_ends_like_an_uninterrupted_run(toy_bin, tmp_path):
    """`s2s train` killed (SIGKILL: no handler runs) at three points, each time
    resumed with --resume, then finished in this process: the weights end
    bit-for-bit as in one straight run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from s2s.checkpoint import numbered_checkpoints

    extra = ["train.save_every=2"]
    straight, _ = _trainer(toy_bin, tmp_path / "straight", 24, extra)
    straight.run()
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "s2s", "train", "--data", str(toy_bin)]
    args += ["--out", str(out), "--resume"]
    sets = [*TINY, "train.max_steps=24", "train.log_every=1", *extra]
    args += [a for kv in sets for a in ("--set", kv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for kill_at in (4, 10, 16):
        proc = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            saved = numbered_checkpoints(out) if out.exists() else []
            if saved and int(saved[-1].stem.removeprefix("step-")) >= kill_at:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, "finished before it could be killed"
    resumed, _ = _trainer(toy_bin, out, 24, extra, resume=True)
    resumed.run()
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(out / "last.pt")
    assert a["state"]["step"] == b["state"]["step"] == 24
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    # The log holds every step once: what a kill left after its last save is gone.
    logged = [r["step"] for r in _records(out) if "loss" in r]
    assert logged == list(range(1, 25))
