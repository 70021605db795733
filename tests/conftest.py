"""Shared fixtures: a tiny generated text corpus and a sine-tone speech corpus,
prepared (and for speech, trained on) once per session."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
# The torch-free runtime is its own distribution (runtime/); tests import it in place.
sys.path.insert(0, str(Path(__file__).parent.parent / "runtime"))
from toy import write_tone_corpus, write_toy_corpus  # noqa: E402

# Caches (the word-list tries of s2s.decode.lexicon) go to a fresh directory, not
# the user's; subprocesses inherit it.
os.environ["S2S_CACHE_DIR"] = tempfile.mkdtemp(prefix="s2s-test-cache-")
atexit.register(shutil.rmtree, os.environ["S2S_CACHE_DIR"], ignore_errors=True)

# One thread: tests are tiny, and spare threads only contend on a 2-core machine.
torch.set_num_threads(1)

# train.device=cpu: the suite tests the same thing on any machine (tests/test_cuda.py
# takes the GPU where there is one).
TINY = [
    "train.device=cpu",
    "model.param_init=0",  # per-layer defaults, as the tests were written
    "model.emb_dim=16",
    "model.enc_hidden_size=16",
    "model.hidden_size=32",
    "model.dropout=0.1",
    "train.batch_tokens=120",
    "train.lr=0.003",
    "train.warmup_steps=10",
    "train.valid_every=1000",
    "train.save_every=1000",
    "train.log_every=2",
    "train.threads=1",
    "train.valid_bleu_sents=10",
]


@pytest.fixture(scope="session")
def toy_raw(tmp_path_factory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("raw"), 300, 20, 20)


@pytest.fixture(scope="session")
def toy_bin(toy_raw, tmp_path_factory) -> Path:
    from s2s.data.prep_text import PrepOptions, prep_text

    out = tmp_path_factory.mktemp("bin")
    opts = PrepOptions(
        src="de",
        tgt="en",
        train=str(toy_raw / "train"),
        valid=str(toy_raw / "valid"),
        test=str(toy_raw / "test"),
        vocab_size=60,
    )
    prep_text(opts, out, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def lm_bin(toy_raw, tmp_path_factory) -> Path:
    """The English side of the toy corpus as monolingual LM data, its own 40-piece
    vocabulary."""
    from s2s.data.prep_mono import MonoPrepOptions, prep_mono

    out = tmp_path_factory.mktemp("lm-bin")
    opts = MonoPrepOptions(
        lang="en",
        train=str(toy_raw / "train"),
        valid=str(toy_raw / "valid"),
        test=str(toy_raw / "test"),
        vocab_size=40,
    )
    prep_mono(opts, out, log=lambda m: None)
    return out


TINY_CTC = [
    "train.device=cpu",
    "model.param_init=0",  # per-layer defaults, as the tests were written
    "model.task=ctc",
    "model.num_mels=20",
    "model.emb_dim=32",
    "model.enc_hidden_size=32",
    "model.enc_layers=1",
    "model.subsample=stack",
    "model.dropout=0.0",
    "model.specaugment=false",
    "train.batch_tokens=1500",
    "train.lr=0.01",
    "train.warmup_steps=10",
    "train.valid_every=1000",
    "train.save_every=1000",
    "train.log_every=5",
    "train.threads=1",
]


@pytest.fixture(scope="session")
def tone_raw(tmp_path_factory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="session")
def tone_bin(tone_raw, tmp_path_factory) -> Path:
    """The tone corpus through the real `s2s prep speech` command."""
    from typer.testing import CliRunner

    from s2s.cli import app

    out = tmp_path_factory.mktemp("tone-bin")
    args = ["prep", "speech", "--train", str(tone_raw / "train.tsv")]
    args += ["--valid", str(tone_raw / "valid.tsv"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--chars", "--num-mels", "20"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tone_run(tone_bin, tmp_path_factory) -> Path:
    """A tiny CTC model trained on the tone corpus until it transcribes it."""
    from s2s.config import load_config
    from s2s.train.trainer import Trainer

    out = tmp_path_factory.mktemp("tone-run")
    cfg = load_config(None, [*TINY_CTC, "train.max_steps=80", "train.valid_every=40"])
    Trainer(cfg, tone_bin, out).run()
    return out


def _joint_run(tone_bin, out: Path, *more: str) -> Path:
    from s2s.config import load_config
    from s2s.train.trainer import Trainer

    joint = ["model.task=joint", "model.hidden_size=32", "train.select_by=wer"]
    cfg = load_config(
        None,
        [*TINY_CTC, *joint, "train.max_steps=200", "train.valid_every=100", *more],
    )
    Trainer(cfg, tone_bin, out).run()
    return out


@pytest.fixture(scope="session")
def joint_run(tone_bin, tmp_path_factory) -> Path:
    """A tiny joint CTC/attention model trained on the tone corpus."""
    return _joint_run(tone_bin, tmp_path_factory.mktemp("joint-run"))


@pytest.fixture(scope="session")
def location_run(tone_bin, tmp_path_factory) -> Path:
    """The same with location-aware attention."""
    out = tmp_path_factory.mktemp("location-run")
    return _joint_run(
        tone_bin, out, "model.attention=location", "model.att_conv_width=5"
    )
