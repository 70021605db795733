"""Initialisation (s2s.models.seq2seq._init): the default `model.param_init=0.1`
must not leave a small model's layers below their own scale, and a small model with
the defaults must learn a synthetic task in a few dozen steps (with uniform 0.1 on
everything it did not: issue 20, part 1)."""

import io

import pytest
import torch
from rich.console import Console

from s2s.config import ModelConfig, load_config
from s2s.data.prep_text import PrepOptions, prep_text
from s2s.models.seq2seq import build_model
from s2s.train.trainer import Trainer
from toy import write_task_corpus


@pytest.mark.parametrize(
    ("emb", "hidden", "lstm_bound", "row_norm"),
    [
        (16, 32, 32**-0.5, 1.0),  # small: each layer's own scale
        (64, 128, 0.1, 1.0),  # the issue's size: the embeddings' own scale
        (512, 512, 0.1, 0.1 * (512 / 3) ** 0.5),  # large: param_init everywhere
    ],
)
def test_param_init_never_shrinks_a_layer_below_its_own_scale(
    emb, hidden, lstm_bound, row_norm
):
    torch.manual_seed(0)
    cfg = ModelConfig(emb_dim=emb, enc_hidden_size=hidden // 2, hidden_size=hidden)
    assert cfg.param_init == 0.1 and cfg.tie_embeddings  # the defaults under test
    model = build_model(cfg, 500, 500)
    dec = model.decoder
    assert dec.output.weight is dec.embed.weight  # still tied
    rows = dec.embed.weight[1:]  # (V - 1, emb); row 0 is padding
    assert torch.equal(dec.embed.weight[0], torch.zeros(emb))
    norm = float(rows.detach().pow(2).sum(1).mean().sqrt())
    assert norm == pytest.approx(row_norm, rel=0.05)
    w = dec.lstm.weight_hh_l0.detach()
    assert float(w.abs().max()) == pytest.approx(lstm_bound, rel=0.01)
    combine = dec.combine.weight.detach()  # fan-in: context and LSTM output
    own = combine.size(1) ** -0.5
    assert float(combine.abs().max()) == pytest.approx(max(0.1, own), rel=0.01)


def test_a_small_model_with_the_defaults_learns_to_reverse(tmp_path):
    """Eight words, 400 pairs, 120 steps: 0.82 validation loss and BLEU 33 with the
    defaults; uniform 0.1 on every parameter stayed at 2.17 and BLEU 0."""
    raw = write_task_corpus(tmp_path, "reverse", 400, 100, words=8, max_len=6)
    bin_dir = tmp_path / "bin"
    train, valid = str(raw / "train"), str(raw / "valid")
    opts = PrepOptions("src", "tgt", train, valid, vocab_size=38)
    prep_text(opts, bin_dir, log=lambda m: None)
    small = [
        "train.device=cpu",
        "train.threads=1",
        "model.emb_dim=16",
        "model.enc_hidden_size=16",
        "model.hidden_size=32",
        "model.enc_layers=1",
        "model.dropout=0",
        "train.batch_tokens=300",
        "train.lr=0.01",
        "train.warmup_steps=20",
        "train.max_steps=120",
        "train.valid_every=120",
        "train.valid_bleu_sents=100",
    ]
    text = io.StringIO()
    cfg = load_config(None, small)
    assert cfg.model.param_init == 0.1  # the default, not the tests' TINY setting
    trainer = Trainer(cfg, bin_dir, tmp_path / "run", console=Console(file=text))
    trainer.run()
    result = trainer.validate()
    assert result["valid_loss"] < 1.3, text.getvalue()
    assert result["valid_bleu"] > 15, text.getvalue()
