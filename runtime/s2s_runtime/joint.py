"""One-pass joint CTC/attention beam search with optional LM fusion: a numpy port
of `s2s.decode.joint` (its docstring explains the scores and the end detection).
With ctc_weight 0 it is the attention-only search of `s2s transcribe --mode
attention`.

Shapes: B utterances, T frames, V vocabulary, K beam, N = B * K hypothesis rows,
C candidates per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from s2s_runtime.ctc import logsumexp
from s2s_runtime.model import BOS, EOS, LM, PAD, DecoderState, ExportedModel, Memory
from s2s_runtime.search import Hypothesis, topk

__all__ = ["joint_beam_search"]

NEG_INF = float("-inf")


@dataclass
class _Prefix:
    r: np.ndarray  # (T, 2, N) log r_t^n, r_t^b
    prefix: np.ndarray  # (N,)
    last: np.ndarray  # (N,)
    length: int

    def select(self, idx: np.ndarray) -> _Prefix:
        return _Prefix(self.r[:, :, idx], self.prefix[idx], self.last[idx], self.length)


def _frames(log_probs: np.ndarray, lengths: np.ndarray, blank: int) -> np.ndarray:
    """(B, T, V) -> (T, B, V); frames past an end emit blank with probability 1."""
    T = log_probs.shape[1]
    past = np.arange(T)[None, :] >= lengths[:, None]
    x = np.where(past[:, :, None], NEG_INF, log_probs).astype(np.float32)
    x[:, :, blank] = np.where(past, 0.0, x[:, :, blank])
    return np.ascontiguousarray(x.transpose(1, 0, 2))


def _prefix_init(x: np.ndarray, rows: np.ndarray, blank: int) -> _Prefix:
    T, N = x.shape[0], rows.size
    r = np.full((T, 2, N), NEG_INF, np.float32)
    r[:, 1] = np.cumsum(x[:, rows, blank], axis=0)
    return _Prefix(r, np.zeros(N, np.float32), np.full(N, -1, np.int64), 0)


def _prefix_scores(
    x: np.ndarray, rows: np.ndarray, state: _Prefix, cand: np.ndarray, blank: int
) -> tuple[np.ndarray, np.ndarray]:
    """Extensions of every prefix by its candidates: prefix (N, C), r (T, 2, N, C)."""
    T = x.shape[0]
    N, C = cand.shape
    xc = x[:, rows[:, None], cand]  # (T, N, C)
    xb = x[:, rows, blank][:, :, None]  # (T, N, 1)
    r_prev = state.r
    whole = np.logaddexp(r_prev[:, 0], r_prev[:, 1])  # (T, N)
    repeat = cand == state.last[:, None]
    phi = np.where(repeat, r_prev[:, 1, :, None], whole[:, :, None])  # (T, N, C)
    r = np.full((T, 2, N, C), NEG_INF, np.float32)
    start = max(state.length, 1)
    if state.length == 0:
        r[0, 0] = xc[0]
    for t in range(start, T):
        r[t, 0] = np.logaddexp(r[t - 1, 0], phi[t - 1]) + xc[t]
        r[t, 1] = np.logaddexp(r[t - 1, 0], r[t - 1, 1]) + xb[t]
    if start < T:
        prefix = logsumexp(phi[start - 1 : T - 1] + xc[start:], axis=0)
    else:
        prefix = np.full((N, C), NEG_INF, np.float32)
    if state.length == 0:
        prefix = np.logaddexp(prefix, r[0, 0])
    prefix = np.where(cand == EOS, whole[-1, :, None], prefix).astype(np.float32)
    return prefix, r


def joint_beam_search(
    model: ExportedModel,
    mem: Memory,
    state: DecoderState,
    log_probs: np.ndarray,
    lengths: np.ndarray,
    beam: int,
    ctc_weight: float = 0.3,
    length_bonus: float = 0.0,
    candidates: int = 0,
    nbest: int = 1,
    lm: LM | None = None,
    lm_weight: float = 0.0,
    blank: int = PAD,
    end_margin: float = 10.0,
) -> list[list[Hypothesis]]:
    """Joint CTC/attention beam search over a batch; see `s2s.decode.joint`."""
    B, T, V = log_probs.shape
    K, lam = beam, np.float32(ctc_weight)
    use_ctc, use_lm = ctc_weight > 0, lm is not None and lm_weight != 0
    C = candidates or max(2, math.ceil(1.5 * K))
    all_tokens = not use_ctc or ctc_weight == 1 or C >= V - 1

    rows = np.repeat(np.arange(B), K)
    state = state.select(rows)
    max_len = np.maximum(lengths, 1)
    x = _frames(log_probs, lengths, blank) if use_ctc else None
    ctc = _prefix_init(x, rows, blank) if use_ctc else None
    lm_state = lm.init_state(B * K) if use_lm else None
    alive = np.arange(B)
    scores = np.full((B, K), NEG_INF, np.float32)
    scores[:, 0] = 0.0
    tokens = np.full(B * K, BOS, np.int64)
    seqs = np.empty((B * K, 0), np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    n_done = np.zeros(B, np.int64)
    best_done = np.full(B, NEG_INF, np.float32)
    bonus_left = max(length_bonus, 0.0)

    for t in range(int(max_len.max()) + 1):
        n = alive.size
        last_step = np.repeat(t >= max_len[alive], K)  # (n*K,)
        logp, state = model.step(tokens, state, mem)  # (n*K, V)
        tok = (1 - lam) * logp if ctc_weight < 1 else np.zeros_like(logp)
        if use_lm:
            lm_logp, lm_state = lm.step(tokens, lm_state)
            tok = tok + np.float32(lm_weight) * lm_logp
        tok[:, [PAD, BOS]] = NEG_INF
        if all_tokens:
            cand = np.broadcast_to(np.arange(V), (n * K, V))
        else:
            best = tok.copy()
            best[:, EOS] = NEG_INF
            cand = np.concatenate(
                [topk(best, C)[1], np.full((n * K, 1), EOS, np.int64)], axis=1
            )
        cand_s = np.take_along_axis(tok, cand, axis=1)
        if use_ctc:
            utt = np.repeat(alive, K)
            prefix, r = _prefix_scores(x, utt, ctc, cand, blank)
            old = ctc.prefix[:, None]
            with np.errstate(invalid="ignore"):
                gain = np.where(old > NEG_INF, prefix - old, NEG_INF)
            cand_s = cand_s + lam * gain
        cand_s = cand_s + np.where(cand == EOS, 0.0, np.float32(length_bonus))
        cand_s = np.where(last_step[:, None] & (cand != EOS), NEG_INF, cand_s)
        cand_s = cand_s.astype(np.float32)
        Cn = cand.shape[1]
        total = (scores.reshape(-1, 1) + cand_s).reshape(n, K * Cn)
        top_s, top_i = topk(total, min(2 * K, K * Cn))
        top_beam, top_col = top_i // Cn, top_i % Cn
        top_tok = np.take_along_axis(cand.reshape(n, K * Cn), top_i, axis=1)
        is_eos = top_tok == EOS

        for i, j in np.argwhere(is_eos[:, :K] & (top_s[:, :K] > NEG_INF)):
            seq = seqs[i * K + int(top_beam[i, j])].tolist()
            finished[int(alive[i])].append((seq, float(top_s[i, j])))
            n_done[i] += 1
            best_done[i] = max(float(best_done[i]), float(top_s[i, j]))

        go_s, go_pos = topk(np.where(is_eos, NEG_INF, top_s), K)
        go_beam = np.take_along_axis(top_beam, go_pos, axis=1)
        go_tok = np.take_along_axis(top_tok, go_pos, axis=1)
        flat = (np.arange(n)[:, None] * K + go_beam).reshape(-1)
        seqs = np.concatenate([seqs[flat], go_tok.reshape(-1, 1)], axis=1)
        state, tokens, scores = state.select(flat), go_tok.reshape(-1), go_s
        if use_lm:
            lm_state = tuple(s[:, flat] for s in lm_state)
        if use_ctc:
            col = np.take_along_axis(top_col, go_pos, axis=1).reshape(-1)
            ctc = _Prefix(r[:, :, flat, col], prefix[flat, col], tokens, ctc.length + 1)

        left = np.maximum(max_len[alive] - t - 1, 0)
        live = scores[:, 0]
        behind = (live + bonus_left * left <= best_done) | (
            live < best_done - end_margin
        )
        done = last_step.reshape(n, K)[:, 0] | (live == NEG_INF)
        done |= (n_done >= nbest) & behind
        if done.all():
            break
        if done.any():
            keep = np.flatnonzero(~done)
            keep_rows = (keep[:, None] * K + np.arange(K)).reshape(-1)
            alive, scores = alive[keep], scores[keep]
            n_done, best_done = n_done[keep], best_done[keep]
            seqs, tokens = seqs[keep_rows], tokens[keep_rows]
            mem, state = mem.select(keep), state.select(keep_rows)
            if use_lm:
                lm_state = tuple(s[:, keep_rows] for s in lm_state)
            if use_ctc:
                T_alive = int(lengths[alive].max())
                x = x[:T_alive]
                ctc = ctc.select(keep_rows)
                ctc.r = ctc.r[:T_alive]
    return [sorted(h, key=lambda hyp: -hyp[1])[:nbest] for h in finished]
