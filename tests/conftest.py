"""Shared fixtures: a tiny generated corpus, prepared once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from toy import write_toy_corpus  # noqa: E402

# One thread: tests are tiny, and spare threads only contend on a 2-core machine.
torch.set_num_threads(1)

TINY = [
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
