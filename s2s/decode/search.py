"""Greedy and batched beam search over `AttentionDecoder.step`.

Both work on a whole batch of sentences at once; a sentence that is finished leaves the
batch, so late steps only pay for the sentences still being decoded. Shapes: B
sentences still alive, K beam size, V vocabulary.
"""

from __future__ import annotations

import torch

from s2s.data.vocab import BOS, EOS, PAD
from s2s.decode.beam import DecoderScorer, GNMTPenalty, Hypothesis, topk_rows
from s2s.decode.beam import beam_search as core_beam_search
from s2s.decode.fusion import LMScorer
from s2s.models.decoder import AttentionDecoder, DecoderState, Memory
from s2s.models.lm import LSTMLM
from s2s.models.seq2seq import Seq2Seq

__all__ = ["greedy_search", "greedy_decode", "beam_search"]


@torch.inference_mode()
def greedy_search(
    model: Seq2Seq, src: torch.Tensor, src_lens: torch.Tensor, max_len: torch.Tensor
) -> list[Hypothesis]:
    """src (B, S), src_lens (B,), max_len (B,) -> one hypothesis per sentence; the
    score is the summed log-probability. `model` is anything with `encode` and
    `decoder` (a `Seq2Seq`, or a `SpeechJoint` given features and frame counts)."""
    mem, state = model.encode(src, src_lens)
    return greedy_decode(model.decoder, mem, state, max_len)


@torch.inference_mode()
def greedy_decode(
    decoder: AttentionDecoder, mem: Memory, state: DecoderState, max_len: torch.Tensor
) -> list[Hypothesis]:
    """`greedy_search` from an encoded batch: the decoder's memory and initial
    state (B rows), max_len (B,)."""
    B, device = mem.values.size(0), mem.values.device
    alive = torch.arange(B, device=device)  # original index of each row
    tokens = torch.full((B,), BOS, dtype=torch.long, device=device)
    seqs = torch.empty(B, 0, dtype=torch.long, device=device)  # (B, t)
    scores = torch.zeros(B, device=device)
    max_len = max_len.to(device)
    out: list[Hypothesis | None] = [None] * B
    never = torch.tensor([PAD, BOS], device=device)
    for t in range(int(max_len.max())):
        logp, state, _ = decoder.step(tokens, state, mem)  # (B, V)
        logp[:, never] = float("-inf")  # BOS, PAD never emitted (a fresh tensor)
        best, tokens = (v[:, 0] for v in topk_rows(logp, 1))  # (B,)
        scores = scores + best
        seqs = torch.cat([seqs, tokens[:, None]], dim=1)
        done = (tokens == EOS) | (t + 1 >= max_len[alive])
        if done.any():
            for row in done.nonzero()[:, 0].tolist():
                seq = seqs[row].tolist()
                if seq[-1] == EOS:
                    seq = seq[:-1]
                out[int(alive[row])] = (seq, float(scores[row]))
            keep = (~done).nonzero()[:, 0]
            if keep.numel() == 0:
                break
            alive, tokens, seqs, scores = (
                alive[keep],
                tokens[keep],
                seqs[keep],
                scores[keep],
            )
            mem, state = mem.select(keep), state.select(keep)
    return out  # type: ignore[return-value]


@torch.inference_mode()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lens: torch.Tensor,
    max_len: torch.Tensor,
    beam: int,
    lenpen: float = 0.6,
    nbest: int = 1,
    lm: LSTMLM | None = None,
    lm_weight: float = 0.0,
) -> list[list[Hypothesis]]:
    """Translation beam search: `s2s.decode.beam.beam_search` with the attention
    decoder (and an LM) as scorers and the GNMT length penalty.

    A sentence is done when K hypotheses have finished (or at its max_len, when its
    live beams are finished as they are). Returns the `nbest` best per sentence,
    scores length-normalised.

    Shallow fusion: with an `lm` (sharing the target vocabulary), every token's
    log-probability gains `lm_weight * log P_lm(token | prefix)`, EOS included, so
    a hypothesis ends with the LM's end-of-sentence score.
    """
    mem, state = model.encode(src, src_lens)
    scorers: list = [DecoderScorer(model.decoder, mem, state)]
    if lm is not None:
        scorers.append(LMScorer(lm, lm_weight))
    return core_beam_search(
        scorers,
        max_len.to(src.device),
        beam,
        model.decoder.embed.num_embeddings,
        GNMTPenalty(lenpen),
        nbest=nbest,
    )
