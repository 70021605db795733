"""Tiny checkpoints with random weights for the export tests: what a search does
with a model does not depend on the model being trained, and equality with the
torch search is the property under test."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_TEXT = [
    "model.emb_dim=16",
    "model.enc_hidden_size=16",
    "model.hidden_size=32",
    "model.param_init=0.3",  # peaked distributions: EOS comes before max_len
    "decode.batch_tokens=40",  # several batches in a test
]
TINY_SPEECH = [
    "model.num_mels=20",
    "model.emb_dim=16",
    "model.enc_hidden_size=16",
    "model.hidden_size=24",
    "model.enc_layers=1",
    "model.param_init=0.3",
    "model.specaugment=false",
]


def random_checkpoint(
    path: Path,
    overrides: list[str],
    vocab: dict[str, bytes],
    extras: dict | None = None,
    seed: int = 0,
) -> Path:
    """Save a checkpoint of `build_model` under `overrides`, its weights drawn
    with `seed`, sized to `vocab` ({'src'?, 'tgt'} SentencePiece protos)."""
    from s2s.checkpoint import save_checkpoint
    from s2s.config import load_config
    from s2s.data.vocab import Vocab
    from s2s.models.seq2seq import build_model

    cfg = load_config(None, overrides)
    torch.manual_seed(seed)
    src = len(Vocab(vocab["src"])) if "src" in vocab else 0
    model = build_model(cfg.model, src, len(Vocab(vocab["tgt"])))
    payload = {"config": cfg.to_dict(), "model": model.state_dict(), "vocab": vocab}
    save_checkpoint(path, {**payload, **(extras or {})})
    return path
