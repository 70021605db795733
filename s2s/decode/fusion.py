"""Shallow fusion with an LSTM language model: loading it safely, and the CTC scorer.

Fusion adds `weight * log P_lm(token | prefix)` to every token a search scores, and
`weight * log P_lm(EOS | hypothesis)` when a hypothesis ends. The LM starts every
hypothesis from BOS with a zero state, as it was trained at the start of each
stream. Its token ids must mean what the model's mean, so `load_lm` refuses an LM
whose vocabulary differs from the model's instead of decoding garbage.

CTC vocabularies (`s2s prep speech`) use the same SentencePiece numbering: blank is
the pad id 0, which never reaches the LM, and every other id is the LM's id.
"""

from __future__ import annotations

from pathlib import Path

import torch

from s2s.data.vocab import BOS, EOS, Vocab
from s2s.errors import S2SError
from s2s.models.lm import LSTMLM

__all__ = ["load_lm", "vocab_difference", "LMScorer"]


def vocab_difference(a: Vocab, b: Vocab) -> str:
    """How vocabulary `a` differs from `b`, in words ('' if they are the same)."""
    if a.proto == b.proto:
        return ""
    if len(a) != len(b):
        return f"{len(a)} pieces vs {len(b)}"
    for i in range(len(a)):
        pa, pb = a.sp.id_to_piece(i), b.sp.id_to_piece(i)
        if pa != pb:
            return f"piece {i} is {pa!r} vs {pb!r}"
    return "same pieces, but other SentencePiece settings (normalization, scores)"


def load_lm(
    path: str | Path,
    vocab: Vocab,
    device: str | torch.device = "cpu",
    model_path: str | Path = "the model",
) -> LSTMLM:
    """The LM of checkpoint `path`, checked to share `vocab` (the vocabulary of the
    model at `model_path`, named in the error)."""
    from s2s.checkpoint import load_lm_model

    lm, _, lm_vocab = load_lm_model(path, device, command="--lm")
    diff = vocab_difference(lm_vocab, vocab)
    if diff:
        raise S2SError(
            f"the vocabulary of LM {path} differs from that of {model_path} ({diff}); "
            f"prepare the LM's text with `s2s prep text --vocab-from {model_path}`"
        )
    return lm


class LMScorer:
    """An `LSTMLM` as a `s2s.decode.beam.Scorer`: shallow fusion in every search
    (translation and joint beam search, CTC prefix beam search).

    The state of a prefix is its LM state and the LM's log-probabilities of the
    next token, so that scoring candidates costs a gather and only `advance` runs
    the LM. State tensors: h, c (N, L, H); logp (N, V).
    """

    def __init__(self, lm: LSTMLM, weight: float):
        self.lm, self.weight = lm, weight

    def init_state(self, batch_size: int, device: torch.device) -> dict:
        bos = torch.full((batch_size,), BOS, dtype=torch.long, device=device)
        return self._step(bos, self.lm.init_state(batch_size, device))

    def score(self, state: dict, tokens: torch.Tensor) -> torch.Tensor:
        return self.weight * state["logp"].gather(1, tokens)  # (N, C)

    def advance(self, state: dict, tokens: torch.Tensor) -> dict:
        return self._step(tokens, (state["h"], state["c"]))

    def select(
        self, state: dict, rows: torch.Tensor, sentences: torch.Tensor | None = None
    ) -> dict:
        """Rows for `s2s.decode.beam.beam_search`, which advances every row right
        after selecting: the spent next-token scores are not copied. (CTC prefix
        search keeps rows that do not advance and selects with `select_rows`.)"""
        return {"h": state["h"][rows], "c": state["c"][rows], "logp": None}

    def final(self, state: dict) -> torch.Tensor:
        """Ending each prefix: weight * log P(EOS | prefix), (N,)."""
        return self.weight * state["logp"][:, EOS]

    def _step(self, tokens: torch.Tensor, state: tuple) -> dict:
        logp, (h, c) = self.lm.step(tokens, state)  # (N, V)
        return {"h": h, "c": c, "logp": logp}
