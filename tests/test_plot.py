"""`s2s plot curves` and `s2s plot attention`: each picture rendered from a tiny
run is a PNG of the expected size, with something drawn in it."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner

from conftest import TINY
from s2s.checkpoint import load_model, load_speech_model
from s2s.cli import app
from s2s.config import load_config
from s2s.decode.alignment import speech_alignment, translation_alignment
from s2s.train.trainer import Trainer
from s2s.viz.attention import speech_size, translation_size
from s2s.viz.curves import CURVES_SIZE, read_run
from s2s.viz.figure import DPI
from toy import RATE, tone_wave

pytest.importorskip("matplotlib")
runner = CliRunner()


def png_size(path):
    """(width, height) from the PNG header; asserts the file is a PNG with more
    than one colour in it."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    from matplotlib.image import imread

    pixels = imread(path)  # (H, W, 4)
    assert pixels.reshape(-1, pixels.shape[-1]).std(axis=0).max() > 0.05
    return struct.unpack(">II", data[16:24])


def pixels(size):
    return (round(size[0] * DPI), round(size[1] * DPI))


@pytest.fixture(scope="module")
def mt_runs(toy_bin, tmp_path_factory):
    """Two tiny translation runs of different learning rates."""
    runs = []
    for lr in ("0.003", "0.01"):
        out = tmp_path_factory.mktemp(f"lr{lr}")
        sets = [*TINY, "train.max_steps=12", "train.valid_every=4", f"train.lr={lr}"]
        Trainer(load_config(None, sets), toy_bin, out).run()
        runs.append(out)
    return runs


def test_plot_curves_of_two_runs(mt_runs, tmp_path):
    out = tmp_path / "curves.png"
    r = runner.invoke(app, ["plot", "curves", *map(str, mt_runs), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert png_size(out) == pixels(CURVES_SIZE)
    run = read_run(mt_runs[0])
    assert run.series["loss"].steps == [2, 4, 6, 8, 10, 12]
    assert run.series["valid_bleu"].steps == [4, 8, 12]
    assert all(t is not None for t in run.series["valid_loss"].seconds)


def test_plot_curves_subprocess(mt_runs, tmp_path):
    out = tmp_path / "sub.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "s2s", "plot", "curves", str(mt_runs[0])]
    r = subprocess.run(
        [*args, "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"wrote {out}\n"
    assert png_size(out) == pixels(CURVES_SIZE)


def test_plot_curves_old_records_and_errors(tmp_path):
    """Records without `elapsed` (an older s2s) fall back to their time stamps."""
    run = tmp_path / "old"
    run.mkdir()
    records = [
        {"step": 50, "loss": 4.0, "time": 100.0},
        {"step": 100, "loss": 3.5, "time": 160.0},
        {"step": 100, "valid_loss": 3.6, "valid_wer": 40.0},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in records))
    curves = read_run(run)
    assert curves.name == "old" == read_run(run / "metrics.jsonl").name
    assert curves.series["loss"].seconds == [0.0, 60.0]
    saved = tmp_path / "old-run.metrics.jsonl"  # as kept in recipes/*/results
    saved.write_text((run / "metrics.jsonl").read_text())
    assert read_run(saved).name == "old-run"
    assert curves.series["valid_wer"].seconds == [60.0]
    out = tmp_path / "c.png"
    r = runner.invoke(app, ["plot", "curves", str(run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert png_size(out) == pixels(CURVES_SIZE)
    (run / "metrics.jsonl").write_text('{"step": 1}\nnot json\n')
    r = runner.invoke(app, ["plot", "curves", str(run), "--out", str(out)])
    assert r.exit_code == 1 and r.output.startswith(f"error: {run}/metrics.jsonl:2:")
    r = runner.invoke(app, ["plot", "curves", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "cannot read metrics" in r.output


def test_plot_curves_metric_option(tmp_path):
    """--metric picks the validation metric drawn (a ctc run logs WER and CER)."""
    from s2s.viz.curves import _metric

    run = tmp_path / "ctc.metrics.jsonl"
    records = [
        {"step": 50, "loss": 4.0, "elapsed": 10.0},
        {"step": 100, "valid_loss": 3.6, "valid_wer": 90.0, "valid_cer": 40.0},
    ]
    run.write_text("".join(json.dumps(x) + "\n" for x in records))
    curves = [read_run(run)]
    assert _metric(curves) == "valid_wer" and _metric(curves, "cer") == "valid_cer"
    out = tmp_path / "c.png"
    args = ["plot", "curves", str(run), "--out", str(out), "--metric"]
    r = runner.invoke(app, [*args, "cer"])
    assert r.exit_code == 0, r.output
    assert png_size(out) == pixels(CURVES_SIZE)
    r = runner.invoke(app, [*args, "bleu"])
    assert r.exit_code == 1 and "no run has validation bleu records" in r.output
    r = runner.invoke(app, [*args, "acc"])
    assert r.exit_code == 1 and "not one of bleu, wer, cer, chrf, ppl" in r.output


def test_plot_attention_translation(mt_runs, tmp_path):
    ckpt = mt_runs[1] / "best.pt"
    sentence = "eins zwei rot haus"
    model, cfg, src_vocab, tgt_vocab = load_model(ckpt)
    cfg.decode.beam = 1
    a = translation_alignment(model, src_vocab, tgt_vocab, cfg.decode, sentence)
    U, S = a.weights.shape
    assert S == len(src_vocab.encode([sentence])[0]) + 1 == len(a.src_pieces)
    assert len(a.tgt_pieces) == U and a.tgt_pieces[-1] == "</s>"
    assert np.allclose(a.weights.sum(axis=1), 1.0, atol=1e-5)  # rows: distributions
    out = tmp_path / "attn.png"
    args = ["plot", "attention", "--checkpoint", str(ckpt), "--input", sentence]
    r = runner.invoke(app, [*args, "--out", str(out), "--beam", "1"])
    assert r.exit_code == 0, r.output
    assert png_size(out) == pixels(translation_size(S, U))
    r = runner.invoke(app, ["plot", "attention", "--checkpoint", str(ckpt)])
    assert r.exit_code == 1 and "give --input TEXT" in r.output


def _write_tone(path, text):
    soundfile.write(path, tone_wave(text), RATE)
    return path


def test_plot_attention_ctc(tone_run, tmp_path):
    wav = _write_tone(tmp_path / "abc.wav", "ab cde")
    ckpt = tone_run / "best.pt"
    model, cfg, vocab, features, cmvn = load_speech_model(ckpt)
    wave = torch.from_numpy(tone_wave("ab cde"))
    a = speech_alignment(model, vocab, features, cmvn, cfg.decode, wave)
    T, F = a.feats.shape
    assert F == 20 and a.weights is None
    assert a.log_probs.shape[1] == len(vocab) and abs(a.log_probs.shape[0] - T / 4) < 1
    assert a.text == "ab cde"  # the trained model hears it
    assert np.allclose(np.exp(a.log_probs).sum(axis=1), 1.0, atol=1e-4)
    out = tmp_path / "ctc.png"
    args = ["plot", "attention", "--checkpoint", str(ckpt), "--audio", str(wav)]
    r = runner.invoke(app, [*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert png_size(out) == pixels(speech_size(joint=False))
    r = runner.invoke(app, ["plot", "attention", "--checkpoint", str(ckpt)])
    assert r.exit_code == 1 and "give --audio FILE" in r.output


def test_plot_attention_joint(joint_run, tmp_path):
    wav = _write_tone(tmp_path / "j.wav", "ba ed")
    ckpt = joint_run / "best.pt"
    model, cfg, vocab, features, cmvn = load_speech_model(ckpt)
    wave = torch.from_numpy(tone_wave("ba ed"))
    a = speech_alignment(model, vocab, features, cmvn, cfg.decode, wave)
    assert a.mode == "joint" and a.weights is not None
    assert a.weights.shape == (len(a.tgt_pieces), a.log_probs.shape[0])
    out = tmp_path / "joint.png"
    args = ["plot", "attention", "--checkpoint", str(ckpt), "--audio", str(wav)]
    r = runner.invoke(app, [*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert png_size(out) == pixels(speech_size(joint=True))


def test_matplotlib_missing_is_a_clear_error(mt_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = runner.invoke(app, ["plot", "curves", str(mt_runs[0])])
    assert r.exit_code == 1
    assert (
        r.output == "error: s2s plot needs matplotlib: pip install 's2s[plot]' "
        "(or pip install matplotlib)\n"
    )
