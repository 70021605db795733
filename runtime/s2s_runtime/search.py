"""Greedy and batched beam search around the exported decoder step: numpy ports of
`s2s.decode.search`, step for step, so both give the same hypotheses.

Shapes: B sentences still alive, K beam size, V vocabulary, N = B * K rows.
"""

from __future__ import annotations

import numpy as np

from s2s_runtime.model import (
    BOS,
    EOS,
    LM,
    PAD,
    DecoderState,
    ExportedModel,
    Memory,
)

__all__ = [
    "Hypothesis",
    "beam_search",
    "greedy_decode",
    "length_penalty",
    "step_top",
    "topk",
]

Hypothesis = tuple[list[int], float]  # (tokens without BOS/EOS, score)
NEG_INF = float("-inf")


def length_penalty(length: int, alpha: float) -> float:
    """GNMT (Wu et al., 2016): ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def topk(x: np.ndarray, k: int, block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The k largest values of each row of x (..., V) and their indices, best
    first (among equal values, the lower index first).

    For rows as wide as a vocabulary the k best lie in the k blocks of `block`
    columns with the highest maxima (as `s2s.decode.search.topk_rows`): one max
    over blocks narrows the selection to k * block values."""
    V = x.shape[-1]
    nb = V // block
    if x.ndim == 2 and nb >= 4 * k:
        N = x.shape[0]
        blocks = x[:, : nb * block].reshape(N, nb, block)
        pick = _topk_small(blocks.max(axis=-1), k)[1]  # (N, k) best blocks
        vals = blocks[np.arange(N)[:, None], pick].reshape(N, k * block)
        cols = (pick[:, :, None] * block + np.arange(block)).reshape(N, k * block)
        if nb * block < V:  # the last, partial block is always a candidate
            vals = np.concatenate([vals, x[:, nb * block :]], axis=1)
            tail = np.broadcast_to(np.arange(nb * block, V), (N, V - nb * block))
            cols = np.concatenate([cols, tail], axis=1)
        top, pos = _topk_small(vals, k)
        return top, np.take_along_axis(cols, pos, axis=1)
    return _topk_small(x, k)


def _topk_small(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    V = x.shape[-1]
    if x.ndim == 2:  # row-wise gathers by index: cheaper than take_along_axis
        rows = np.arange(x.shape[0])[:, None]
        take = lambda a, i: a[rows, i]  # noqa: E731
    else:
        take = lambda a, i: np.take_along_axis(a, i, axis=-1)  # noqa: E731
    if k < V:
        part = np.argpartition(-x, k - 1, axis=-1)[..., :k]
        vals = take(x, part)
    else:
        part, vals = np.broadcast_to(np.arange(V), x.shape), x
    order = np.lexsort((part, -vals), axis=-1)
    idx = take(part, order)
    return take(x, idx), idx


def step_top(
    model: ExportedModel,
    tokens: np.ndarray,
    state: DecoderState,
    mem: Memory,
    k: int,
) -> tuple[np.ndarray, np.ndarray, DecoderState]:
    """One decoder step, each row's k best tokens (PAD and BOS never emitted, as
    in s2s.decode.beam): values (N, k), ids (N, k), state. Chosen inside the graph
    when the export has its top-k outputs, else from the log-probs here."""
    if model.top_k_in_graph:
        return model.step_top(tokens, state, mem, k)
    logp, state = model.step(tokens, state, mem)  # (N, V)
    logp[:, [PAD, BOS]] = NEG_INF
    vals, ids = topk(logp, k)
    return vals, ids, state


def greedy_decode(
    model: ExportedModel, mem: Memory, state: DecoderState, max_len: np.ndarray
) -> list[Hypothesis]:
    """One hypothesis per sentence of an encoded batch (B memory rows), max_len
    (B,); the score is the summed log-probability.

    Finished rows stay in the batch (their steps are ignored) until a quarter of
    it has finished: copying the memory for every finished sentence cost more
    than stepping a few idle rows."""
    B = mem.values.shape[0]
    alive = np.arange(B)  # original index of each row
    live = np.ones(B, bool)  # rows still decoding
    tokens = np.full(B, BOS, np.int64)
    seqs = np.empty((B, 0), np.int64)
    scores = np.zeros(B, np.float32)
    out: list[Hypothesis | None] = [None] * B
    for t in range(int(max_len.max())):
        best, ids, state = step_top(model, tokens, state, mem, 1)  # (B, 1)
        tokens = ids[:, 0]
        scores = scores + best[:, 0]
        seqs = np.concatenate([seqs, tokens[:, None]], axis=1)
        done = live & ((tokens == EOS) | (t + 1 >= max_len[alive]))
        if not done.any():
            continue
        for row in np.flatnonzero(done):
            seq = seqs[row].tolist()
            if seq[-1] == EOS:
                seq = seq[:-1]
            out[int(alive[row])] = (seq, float(scores[row]))
        live &= ~done
        if not live.any():
            break
        if (~live).sum() * 4 >= len(live):
            keep = np.flatnonzero(live)
            alive, tokens, seqs, scores = (
                alive[keep],
                tokens[keep],
                seqs[keep],
                scores[keep],
            )
            live = np.ones(keep.size, bool)
            mem, state = mem.select(keep), state.select(keep)
    return out  # type: ignore[return-value]


def beam_search(
    model: ExportedModel,
    mem: Memory,
    state: DecoderState,
    max_len: np.ndarray,
    beam: int,
    lenpen: float = 0.6,
    nbest: int = 1,
    lm: LM | None = None,
    lm_weight: float = 0.0,
) -> list[list[Hypothesis]]:
    """`s2s.decode.search.beam_search` from an encoded batch: all sentences x beams
    advance as one (B * K) batch; EOS candidates among a sentence's top K finish
    (score / length penalty); a sentence is done once K have finished or at its
    max_len. With an `lm`, every token's log-probability gains
    `lm_weight * log P_lm`. Returns the `nbest` best per sentence."""
    K = beam
    B = mem.values.shape[0]
    state = state.select(np.repeat(np.arange(B), K))
    alive = np.arange(B)
    scores = np.full((B, K), NEG_INF, np.float32)
    scores[:, 0] = 0.0
    tokens = np.full(B * K, BOS, np.int64)
    seqs = np.empty((B * K, 0), np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    n_done = np.zeros(B, np.int64)
    lm_state = lm.init_state(B * K) if lm is not None else None
    V = len(model.tgt_vocab)
    for t in range(int(max_len.max())):
        n = alive.size
        R = min(2 * K, V)
        if lm is None:
            row_s, row_tok, state = step_top(model, tokens, state, mem, R)
        else:
            logp, state = model.step(tokens, state, mem)  # (n*K, V)
            lm_logp, lm_state = lm.step(tokens, lm_state)
            logp = logp + np.float32(lm_weight) * lm_logp
            logp[:, [PAD, BOS]] = NEG_INF  # never emitted (as in s2s.decode.beam)
            row_s, row_tok = topk(logp, R)  # (n*K, R)
        cand = (scores.reshape(-1, 1) + row_s).reshape(n, K * R)
        top_s, top_i = topk(cand, min(2 * K, K * R))  # (n, 2K)
        top_beam = top_i // R
        top_tok = np.take_along_axis(row_tok.reshape(n, K * R), top_i, axis=1)
        is_eos = top_tok == EOS
        lp = length_penalty(t + 1, lenpen)

        for i, j in np.argwhere(is_eos[:, :K] & (top_s[:, :K] > NEG_INF)):
            sent = finished[int(alive[i])]
            if len(sent) < K:
                seq = seqs[i * K + int(top_beam[i, j])].tolist()
                sent.append((seq, float(top_s[i, j]) / lp))
                n_done[i] += 1

        go_s, go_pos = topk(np.where(is_eos, NEG_INF, top_s), K)
        go_beam = np.take_along_axis(top_beam, go_pos, axis=1)
        go_tok = np.take_along_axis(top_tok, go_pos, axis=1)
        flat = (np.arange(n)[:, None] * K + go_beam).reshape(-1)
        seqs = np.concatenate([seqs[flat], go_tok.reshape(-1, 1)], axis=1)
        state, tokens, scores = state.select(flat), go_tok.reshape(-1), go_s
        if lm is not None:
            lm_state = tuple(s[:, flat] for s in lm_state)

        at_limit = t + 1 >= max_len[alive]  # (n,)
        for i in np.flatnonzero(at_limit):
            sent = finished[int(alive[i])]
            for j in range(K - len(sent)):
                if scores[i, j] > NEG_INF:
                    sent.append((seqs[i * K + j].tolist(), float(scores[i, j]) / lp))
        done = (n_done >= K) | at_limit
        if done.all():
            break
        if done.any():
            keep = np.flatnonzero(~done)
            keep_rows = (keep[:, None] * K + np.arange(K)).reshape(-1)
            alive, scores, n_done = alive[keep], scores[keep], n_done[keep]
            seqs, tokens = seqs[keep_rows], tokens[keep_rows]
            mem, state = mem.select(keep), state.select(keep_rows)
            if lm is not None:
                lm_state = tuple(s[:, keep_rows] for s in lm_state)
    return [sorted(h, key=lambda x: -x[1])[:nbest] for h in finished]
