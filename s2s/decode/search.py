"""Greedy and batched beam search over `AttentionDecoder.step`.

Both work on a whole batch of sentences at once; a sentence that is finished leaves the
batch, so late steps only pay for the sentences still being decoded. Shapes: B
sentences still alive, K beam size, V vocabulary.
"""

from __future__ import annotations

import torch

from s2s.data.vocab import BOS, EOS
from s2s.models.decoder import AttentionDecoder, DecoderState, Memory
from s2s.models.lm import LSTMLM
from s2s.models.seq2seq import Seq2Seq

__all__ = [
    "greedy_search",
    "greedy_decode",
    "beam_search",
    "length_penalty",
    "topk_rows",
    "Hypothesis",
]

Hypothesis = tuple[list[int], float]  # (tokens without BOS/EOS, score)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT (Wu et al., 2016): ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def topk_rows(
    x: torch.Tensor, k: int, block: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """`x.topk(k, dim=-1)` for rows as wide as a vocabulary, x (N, V): values and
    indices, best first. Values equal torch.topk's; among equal values the indices
    may differ.

    The k best of a row lie in the k blocks (of `block` columns) with the highest
    maxima, so one cheap max over blocks narrows the search to k * block values,
    which pays on a CPU, where topk over a whole 8k row is slow.
    """
    N, V = x.shape
    nb = V // block
    if nb < 4 * k or x.device.type != "cpu":
        return x.topk(k, dim=-1)
    blocks = x[:, : nb * block].unflatten(1, (nb, block))  # (N, nb, block), a view
    pick = blocks.amax(dim=-1).topk(k, dim=-1).indices  # (N, k)
    vals = blocks[torch.arange(N, device=x.device)[:, None], pick].flatten(1)
    cols = (pick[:, :, None] * block + torch.arange(block, device=x.device)).flatten(1)
    if nb * block < V:  # the last, partial block is always a candidate
        vals = torch.cat([vals, x[:, nb * block :]], dim=1)
        tail = torch.arange(nb * block, V, device=x.device).expand(N, -1)
        cols = torch.cat([cols, tail], dim=1)
    top, pos = vals.topk(k, dim=-1)  # (N, k)
    return top, cols.gather(1, pos)


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
    for t in range(int(max_len.max())):
        logp, state, _ = decoder.step(tokens, state, mem)  # (B, V)
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
    """All sentences x beams advance as one (B * K, ...) tensor.

    Each step takes the top 2K continuations of every sentence: EOS ones among the
    first K are finished (score / length_penalty), and the best K others go on. A
    sentence is done when K hypotheses have finished (or at its max_len, when its
    live beams are finished as they are). Returns the `nbest` best per sentence,
    scores length-normalised.

    Shallow fusion: with an `lm` (sharing the target vocabulary), every token's
    log-probability gains `lm_weight * log P_lm(token | prefix)`, EOS included, so
    a hypothesis ends with the LM's end-of-sentence score; LM states follow their
    beams.
    """
    K = beam
    mem, state = model.encode(src, src_lens)
    B, device = src.size(0), src.device
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,)
    state = state.select(rows)  # the memory keeps one row per sentence (`step`)
    alive = torch.arange(B, device=device)  # original sentence of each row group
    max_len = max_len.to(device)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start equal: keep one so they don't duplicate
    tokens = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    seqs = torch.empty(B * K, 0, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    n_done = torch.zeros(B, dtype=torch.long, device=device)  # finished per row group
    if lm is not None:
        lm_state = lm.init_state(B * K, device)  # (h, c), each (B*K, L, H)

    for t in range(int(max_len.max())):
        n = alive.numel()
        logp, state, _ = model.decoder.step(tokens, state, mem)  # (n*K, V)
        if lm is not None:
            lm_logp, lm_state = lm.step(tokens, lm_state)  # (n*K, V)
            logp = logp + lm_weight * lm_logp
        # A sentence's best 2K candidates are among each beam's best 2K tokens (a
        # beam adds one score to all its tokens): top-k per row first, then over
        # the K x 2K survivors, instead of adding scores to all n*K x V.
        R = min(2 * K, logp.size(-1))
        row_s, row_tok = topk_rows(logp, R)  # (n*K, R)
        cand = (scores.view(-1, 1) + row_s).view(n, K * R)
        top_s, top_i = cand.topk(min(2 * K, K * R), dim=-1)  # (n, 2K)
        top_beam = top_i // R
        top_tok = row_tok.view(n, K * R).gather(1, top_i)
        is_eos = top_tok == EOS
        lp = length_penalty(t + 1, lenpen)

        # Finish EOS candidates ranked within the top K of their sentence.
        ends = (is_eos[:, :K] & (top_s[:, :K] > float("-inf"))).nonzero().tolist()
        for i, j in ends:
            sent = finished[int(alive[i])]
            if len(sent) < K:
                seq = seqs[i * K + int(top_beam[i, j])].tolist()
                sent.append((seq, float(top_s[i, j]) / lp))
                n_done[i] += 1

        # The best K non-EOS candidates continue.
        go_s, go_pos = top_s.masked_fill(is_eos, float("-inf")).topk(K, dim=-1)
        go_beam, go_tok = top_beam.gather(1, go_pos), top_tok.gather(1, go_pos)
        flat = (torch.arange(n, device=device)[:, None] * K + go_beam).view(-1)
        seqs = torch.cat([seqs[flat], go_tok.view(-1, 1)], dim=1)  # (n*K, t+1)
        state, tokens, scores = state.select(flat), go_tok.view(-1), go_s
        if lm is not None:
            lm_state = tuple(s.index_select(0, flat) for s in lm_state)

        # At its length limit a sentence finishes its live beams as they are.
        at_limit = t + 1 >= max_len[alive]  # (n,)
        for i in at_limit.nonzero()[:, 0].tolist():
            sent = finished[int(alive[i])]
            for j in range(K - len(sent)):
                if scores[i, j] > float("-inf"):
                    sent.append((seqs[i * K + j].tolist(), float(scores[i, j]) / lp))
        done_t = (n_done >= K) | at_limit
        if done_t.all():
            break
        if done_t.any():
            keep = (~done_t).nonzero()[:, 0]
            keep_rows = (keep[:, None] * K + torch.arange(K, device=device)).view(-1)
            alive, scores, n_done = alive[keep], scores[keep], n_done[keep]
            seqs, tokens = seqs[keep_rows], tokens[keep_rows]
            mem, state = mem.select(keep), state.select(keep_rows)
            if lm is not None:
                lm_state = tuple(s.index_select(0, keep_rows) for s in lm_state)
    return [sorted(h, key=lambda x: -x[1])[:nbest] for h in finished]
