"""CTC greedy and prefix beam search in numpy: ports of `s2s.decode.ctc`, with the
same batched update per frame over (B, beam, tokens), and `LMScorer` of
`s2s.decode.fusion` for shallow fusion.

Shapes: B utterances, T frames, V vocabulary, K beam, C candidate tokens a frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2s_runtime.model import BOS, EOS, LM
from s2s_runtime.search import topk

__all__ = ["LMScorer", "ctc_greedy", "ctc_prefix_beam_search", "logsumexp"]

_HASHES = ((1_000_003, 2_147_483_647), (999_983, 2_147_483_629))
NEG_INF = float("-inf")


def logsumexp(x: np.ndarray, axis) -> np.ndarray:
    """log(sum(exp(x))) over `axis` (an int or tuple), -inf where all are -inf."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return np.squeeze(s, axis=axis)


def ctc_greedy(
    log_probs: np.ndarray, lengths: np.ndarray, blank: int = 0
) -> list[list[int]]:
    """Best path: most likely symbol per frame, repeats collapsed, blanks dropped."""
    B, T, _ = log_probs.shape
    best = log_probs.argmax(axis=-1)  # (B, T)
    prev = np.pad(best[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    valid = np.arange(T)[None, :] < lengths[:, None]
    keep = (best != prev) & (best != blank) & valid
    return [row[k].tolist() for row, k in zip(best, keep, strict=True)]


class LMScorer:
    """Shallow fusion for prefix beam search: a prefix's state is its LM state and
    the LM's log-probabilities of the next token, {'h', 'c': (L, N, H), 'logp'}."""

    def __init__(self, lm: LM, weight: float):
        self.lm, self.weight = lm, np.float32(weight)

    def init_state(self, n: int) -> dict:
        return self._step(np.full(n, BOS, np.int64), self.lm.init_state(n))

    def score(self, state: dict, tokens: np.ndarray) -> np.ndarray:
        return self.weight * np.take_along_axis(state["logp"], tokens, axis=1)

    def advance(self, state: dict, tokens: np.ndarray) -> dict:
        return self._step(tokens, (state["h"], state["c"]))

    def final(self, state: dict) -> np.ndarray:
        return self.weight * state["logp"][:, EOS]

    def select(self, state: dict, idx: np.ndarray) -> dict:
        return {
            "h": state["h"][:, idx],
            "c": state["c"][:, idx],
            "logp": state["logp"][idx],
        }

    def where(self, mask: np.ndarray, new: dict, old: dict) -> dict:
        return {
            "h": np.where(mask[None, :, None], new["h"], old["h"]),
            "c": np.where(mask[None, :, None], new["c"], old["c"]),
            "logp": np.where(mask[:, None], new["logp"], old["logp"]),
        }

    def _step(self, tokens: np.ndarray, state: tuple) -> dict:
        logp, (h, c) = self.lm.step(tokens, state)
        return {"h": h, "c": c, "logp": logp}


def ctc_prefix_beam_search(
    log_probs: np.ndarray,
    lengths: np.ndarray,
    beam: int,
    blank: int = 0,
    token_beam: int | None = None,
    prefix_scorer: Any = None,
) -> list[list[tuple[list[int], float]]]:
    """CTC prefix beam search over a batch (see `s2s.decode.ctc`): up to `beam`
    (tokens, score) per utterance, best first."""
    B, T, V = log_probs.shape
    if V < 2 or beam < 1:
        raise ValueError(
            f"need a vocabulary of 2 or more and beam >= 1, got {V}, {beam}"
        )
    K, C = beam, min(token_beam or beam, V - 1)
    past_end = np.arange(T)[None, :] >= lengths[:, None]  # (B, T)
    lp = np.where(past_end[:, :, None], NEG_INF, log_probs).astype(np.float32)
    lp[:, :, blank] = np.where(past_end, 0.0, lp[:, :, blank])
    no_blank = lp.copy()
    no_blank[:, :, blank] = NEG_INF
    cand_lp, cand = topk(no_blank, C)  # (B, T, C)

    pb = np.full((B, K), NEG_INF, np.float32)
    pnb = np.full((B, K), NEG_INF, np.float32)
    pb[:, 0] = 0.0
    fused = np.zeros((B, K), np.float32)
    last = np.full((B, K), -1, np.int64)
    hashes = [np.zeros((B, K), np.int64) for _ in _HASHES]
    rows = np.arange(B)[:, None] * K
    bi = np.arange(B)[:, None]
    state = None
    if prefix_scorer is not None:
        state = prefix_scorer.init_state(B)
        state = prefix_scorer.select(state, np.repeat(np.arange(B), K))
    sources, emitted = [], []

    for t in range(T):
        frame = lp[:, t]  # (B, V)
        c_lp, c = cand_lp[:, t], cand[:, t]  # (B, C)
        p_total = np.logaddexp(pb, pnb)
        p_last = np.where(last < 0, NEG_INF, frame[bi, np.maximum(last, 0)])
        stay_pb = p_total + frame[:, blank, None]
        stay_pnb = pnb + p_last
        repeat = c[:, None, :] == last[:, :, None]  # (B, K, C)
        ext = np.where(repeat, pb[:, :, None], p_total[:, :, None]) + c_lp[:, None, :]
        ext_hashes = [
            (h[:, :, None] * mult + c[:, None, :] + 1) % mod
            for h, (mult, mod) in zip(hashes, _HASHES, strict=True)
        ]
        same = (p_total > NEG_INF)[:, None, None, :]  # (B, 1, 1, K)
        for eh, h in zip(ext_hashes, hashes, strict=True):
            same = same & (eh[:, :, :, None] == h[:, None, None, :])  # (B, K, C, K)
        # An extension that equals a prefix already in the beam adds to that
        # prefix (a prefix has one parent and last token, so at most one does).
        mb, mk, mc, mj = np.nonzero(same)
        if mb.size:
            stay_pnb = stay_pnb.copy()
            stay_pnb[mb, mj] = np.logaddexp(stay_pnb[mb, mj], ext[mb, mk, mc])
            ext = ext.copy()
            ext[mb, mk, mc] = NEG_INF

        ext_fused = np.broadcast_to(fused[:, :, None], (B, K, C))
        if prefix_scorer is not None:
            tokens = np.broadcast_to(c[:, None, :], (B, K, C)).reshape(B * K, C)
            ext_fused = ext_fused + prefix_scorer.score(state, tokens).reshape(B, K, C)
        scores = np.concatenate(
            [np.logaddexp(stay_pb, stay_pnb) + fused, (ext + ext_fused).reshape(B, -1)],
            axis=1,
        ).astype(np.float32)  # (B, K + K * C)
        _, pick = topk(scores, K)  # (B, K)

        is_ext = pick >= K
        e = np.maximum(pick - K, 0)
        src = np.where(is_ext, e // C, pick)
        # x[bi, idx]: row-wise gathers (np.take_along_axis costs more in Python
        # than the gather itself at these sizes)
        token = np.where(is_ext, c[bi, e % C], -1)
        pb = np.where(is_ext, NEG_INF, stay_pb[bi, src]).astype(np.float32)
        pnb = np.where(is_ext, ext.reshape(B, -1)[bi, e], stay_pnb[bi, src])
        pnb = pnb.astype(np.float32)
        fused = np.where(is_ext, ext_fused.reshape(B, -1)[bi, e], fused[bi, src])
        fused = fused.astype(np.float32)
        last = np.where(is_ext, token, last[bi, src])
        hashes = [
            np.where(is_ext, eh.reshape(B, -1)[bi, e], h[bi, src])
            for eh, h in zip(ext_hashes, hashes, strict=True)
        ]
        if prefix_scorer is not None:
            state = prefix_scorer.select(state, (rows + src).reshape(-1))
            moved = prefix_scorer.advance(state, np.maximum(token, 0).reshape(-1))
            state = prefix_scorer.where(is_ext.reshape(-1), moved, state)
        sources.append(src)
        emitted.append(token)

    final = np.logaddexp(pb, pnb) + fused
    if prefix_scorer is not None:
        final = final + prefix_scorer.final(state).reshape(B, K)
    order = np.argsort(-final, axis=1, kind="stable")
    final = np.take_along_axis(final, order, axis=1)
    idx, out = order, []
    for src, token in zip(reversed(sources), reversed(emitted), strict=True):
        out.append(np.take_along_axis(token, idx, axis=1))
        idx = np.take_along_axis(src, idx, axis=1)
    toks = np.stack(out[::-1], axis=2) if out else np.empty((B, K, 0), np.int64)
    return [
        [
            ([tok for tok in seq if tok >= 0], float(score))
            for seq, score in zip(b_toks, b_scores, strict=True)
            if score > NEG_INF
        ]
        for b_toks, b_scores in zip(toks.tolist(), final.tolist(), strict=True)
    ]
