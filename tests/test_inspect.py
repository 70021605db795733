"""`s2s info CKPT` and `s2s config show CKPT`, through CliRunner and a subprocess."""

import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from conftest import TINY
from s2s.checkpoint import load_checkpoint
from s2s.cli import app
from s2s.config import load_config
from s2s.data.vocab import Vocab
from s2s.info import config_changes
from s2s.train.trainer import Trainer

runner = CliRunner()
SETS = [*TINY, "train.max_steps=8", "train.valid_every=4", "model.attention=mlp"]


@pytest.fixture(scope="module")
def mt_run(toy_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("mt-run")
    Trainer(load_config(None, SETS), toy_bin, out).run()
    return out


def test_info_one_screen(mt_run):
    r = runner.invoke(app, ["info", str(mt_run / "best.pt")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert len(lines) <= 40  # one screen
    text = r.output
    ckpt = load_checkpoint(mt_run / "best.pt")
    n_params = sum(  # the embedding is tied to the output layer: counted once
        v.numel() for k, v in ckpt["model"].items() if k != "decoder.output.weight"
    )
    assert f"parameters   {n_params:,}" in text
    assert "translation: embeddings 16, BiLSTM encoder 2 x 16" in text
    assert "mlp attention" in text
    src, tgt = (len(Vocab(ckpt["vocab"][side])) for side in ("src", "tgt"))
    assert f"vocabulary   source {src} pieces, target {tgt} pieces" in text
    assert "trained      8 steps" in text
    best = ckpt["state"]["best_valid"]
    assert best["step"] in (4, 8)
    assert f"loss {best['valid_loss']:.4g}" in text and "bleu" in text
    assert "model.attention" in text and "(default general)" in text
    assert "train.max_steps" in text and "model.dec_layers" not in text  # default
    assert "written by s2s 0.1.0, torch " in text


def test_info_of_last_and_speech(mt_run, tone_run):
    r = runner.invoke(app, ["info", str(mt_run / "last.pt")])
    assert r.exit_code == 0 and "full (resumable)" in r.output
    r = runner.invoke(app, ["info", str(tone_run / "best.pt")])
    assert r.exit_code == 0, r.output
    assert "speech, CTC: 20 mel bins" in r.output
    assert "model.specaugment      false  (default true)" in r.output
    assert "features     kind fbank, num_mels 20" in r.output
    assert "by loss" in r.output and "wer" in r.output


def test_info_of_a_language_model(lm_bin, tmp_path):
    sets = ["train.device=cpu", "model.task=lm", "model.emb_dim=16"]
    sets += ["model.hidden_size=32", "train.batch_tokens=64", "train.max_steps=2"]
    Trainer(load_config(None, sets), lm_bin, tmp_path).run()
    r = runner.invoke(app, ["info", str(tmp_path / "best.pt")])
    assert r.exit_code == 0, r.output
    assert "language model: embeddings 16, LSTM 1 x 32" in r.output
    assert "vocabulary   " in r.output and "trained      2 steps" in r.output


def test_config_show_checkpoint(mt_run):
    r = runner.invoke(app, ["config", "show", str(mt_run / "best.pt")])
    assert r.exit_code == 0, r.output
    assert "attention: mlp" in r.output and "hidden_size: 32" in r.output
    # What it prints is YAML that trains the same model again.
    assert load_config(None, SETS).to_dict() == _as_config(r.output)
    r = runner.invoke(
        app, ["config", "show", str(mt_run / "best.pt"), "--set", "decode.beam=3"]
    )
    assert r.exit_code == 0 and "beam: 3" in r.output


def _as_config(text):
    data = yaml.safe_load(text)
    return {
        s: {k: tuple(v) if isinstance(v, list) else v for k, v in keys.items()}
        for s, keys in data.items()
    }


def test_config_changes():
    cfg = load_config(None, ["model.hidden_size=64", "decode.beam=1"])
    assert config_changes(cfg) == [
        ("model.hidden_size", 64, 512),
        ("decode.beam", 1, 5),
    ]


def test_bad_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    for args in (["info", str(bad)], ["config", "show", str(bad)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1
        assert r.output.startswith(f"error: {bad}: not a readable checkpoint")
        assert "Traceback" not in r.output
    r = runner.invoke(app, ["info", str(tmp_path / "missing.pt")])
    assert r.exit_code == 1 and "no such checkpoint" in r.output


def test_info_subprocess(mt_run):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "s2s", "info", str(mt_run / "best.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("checkpoint ") and "parameters" in r.stdout
    # matplotlib is for `s2s plot` alone.
    code = "import sys, s2s.cli, s2s.info; assert 'matplotlib' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
