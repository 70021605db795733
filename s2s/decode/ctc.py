"""CTC decoding: greedy (best path) and prefix beam search.

Both take the whole batch of (B, T, V) log-probabilities with per-utterance lengths.
The prefix beam search keeps, for every utterance, `beam` prefixes with the
log-probability that the frames so far emitted them ending in a blank (``pb``) or in
their last token (``pnb``); both are needed because a repeated token only starts a new
label after a blank. Every frame is one batched update over (B, beam, tokens).

Shallow fusion (e.g. with a language model) plugs in as a `s2s.decode.beam.Scorer`
(the one the attention searches use, `s2s.decode.fusion.LMScorer`): it adds
a log-score whenever a prefix is extended by a token, and that score is part of both
the pruning and the returned score.
"""

from __future__ import annotations

from typing import Any

import torch

from s2s.decode.beam import Scorer, select_rows

__all__ = ["ctc_greedy", "ctc_prefix_beam_search"]

# Two polynomial hashes modulo primes below 2**31 identify a prefix (products stay
# below 2**62, so int64 never overflows); two prefixes collide with probability
# about 2**-62.
_HASHES = ((1_000_003, 2_147_483_647), (999_983, 2_147_483_629))
_NEG_INF = float("-inf")


@torch.no_grad()
def ctc_greedy(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0
) -> list[list[int]]:
    """Best-path decoding: the most likely symbol per frame, repeats collapsed,
    blanks dropped. log_probs (B, T, V), lengths (B,) -> B token lists."""
    B, T, _ = log_probs.shape
    best = log_probs.argmax(dim=-1)  # (B, T)
    prev = torch.nn.functional.pad(best[:, :-1], (1, 0), value=-1)  # (B, T)
    valid = torch.arange(T, device=best.device) < lengths.to(best.device)[:, None]
    keep = (best != prev) & (best != blank) & valid  # (B, T)
    return [row[k].tolist() for row, k in zip(best.cpu(), keep.cpu(), strict=True)]


@torch.no_grad()
def ctc_prefix_beam_search(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    beam: int,
    blank: int = 0,
    token_beam: int | None = None,
    prefix_scorer: Scorer | None = None,
) -> list[list[tuple[list[int], float]]]:
    """CTC prefix beam search over a batch.

    Args:
        log_probs: (B, T, V) log-probabilities.
        lengths: (B,) valid frames per utterance.
        beam: prefixes kept per utterance after every frame.
        blank: index of the blank symbol.
        token_beam: tokens per frame considered for extending prefixes (the
            `token_beam` most likely non-blank ones; default `beam`). Staying on the
            same prefix (blank or repeated last token) is always scored exactly.
        prefix_scorer: optional shallow-fusion scorer (`s2s.decode.beam.Scorer`);
            its optional `final(state) -> (N,)` is added when a prefix ends.

    Returns:
        For each utterance, up to `beam` ``(tokens, score)`` pairs, best first; the
        score is the prefix's CTC log-probability summed over its alignments, plus
        the scorer's scores for its tokens (and its `final` score) when a scorer is
        given.
    """
    B, T, V = log_probs.shape
    if V < 2 or beam < 1:
        raise ValueError(
            f"need a vocabulary of 2 or more and beam >= 1, got {V}, {beam}"
        )
    device = log_probs.device
    K = beam
    C = min(token_beam or beam, V - 1)
    lengths = lengths.to(device)

    # Frames past an utterance's end emit blank with probability 1, which leaves
    # every prefix and score as it is, so the batch can share one time loop.
    past_end = torch.arange(T, device=device) >= lengths[:, None]  # (B, T)
    lp = log_probs.float().masked_fill(past_end[:, :, None], _NEG_INF)  # (B, T, V)
    lp[:, :, blank] = lp[:, :, blank].masked_fill(past_end, 0.0)
    # One topk over batch and time picks the candidate tokens of every frame.
    no_blank = lp.index_fill(2, torch.tensor([blank], device=device), _NEG_INF)
    cand_lp, cand = no_blank.topk(C, dim=2)  # (B, T, C)

    pb = torch.full((B, K), _NEG_INF, device=device)  # ends in blank
    pnb = torch.full((B, K), _NEG_INF, device=device)  # ends in its last token
    pb[:, 0] = 0.0  # slot 0 holds the empty prefix; the others are dead
    fused = torch.zeros(B, K, device=device)  # scorer scores of the prefix's tokens
    last = torch.full((B, K), -1, dtype=torch.long, device=device)  # -1: empty
    hashes = [torch.zeros(B, K, dtype=torch.long, device=device) for _ in _HASHES]
    rows = torch.arange(B, device=device)[:, None] * K  # (B, 1)
    state = None
    if prefix_scorer is not None:
        state = prefix_scorer.init_state(B, device)
        state = select_rows(state, torch.arange(B, device=device).repeat_interleave(K))
    sources, emitted = [], []

    for t in range(T):
        frame = lp[:, t]  # (B, V)
        c_lp, c = cand_lp[:, t], cand[:, t]  # (B, C)
        p_total = torch.logaddexp(pb, pnb)  # (B, K)
        # Staying on the same prefix: a blank, or the last token again (collapsed).
        p_last = frame.gather(1, last.clamp_min(0)).masked_fill(last < 0, _NEG_INF)
        stay_pb = p_total + frame[:, blank, None]  # (B, K)
        stay_pnb = pnb + p_last  # (B, K)
        # Extending by c: after a repeat of the last token only from pb.
        repeat = c[:, None, :] == last[:, :, None]  # (B, K, C)
        ext = torch.where(repeat, pb[:, :, None], p_total[:, :, None])
        ext = ext + c_lp[:, None, :]  # (B, K, C)
        ext_hashes = [
            (h[:, :, None] * mult + c[:, None, :] + 1) % mod
            for h, (mult, mod) in zip(hashes, _HASHES, strict=True)
        ]  # (B, K, C) each
        # An extension equal to a prefix already in the beam merges into its stay.
        alive = (p_total > _NEG_INF)[:, None, None, :]  # (B, 1, 1, K)
        same = alive
        for eh, h in zip(ext_hashes, hashes, strict=True):
            same = same & (eh[:, :, :, None] == h[:, None, None, :])  # (B, K, C, K)
        merged = ext[:, :, :, None].masked_fill(~same, _NEG_INF)  # (B, K, C, K)
        stay_pnb = torch.logaddexp(stay_pnb, merged.logsumexp(dim=(1, 2)))
        ext = ext.masked_fill(same.any(dim=3), _NEG_INF)

        ext_fused = fused[:, :, None].expand(B, K, C)  # (B, K, C)
        if prefix_scorer is not None:
            tokens = c[:, None, :].expand(B, K, C).reshape(B * K, C)  # (N, C)
            extra = prefix_scorer.score(state, tokens).view(B, K, C).float()
            ext_fused = ext_fused + extra
        scores = torch.cat(
            [torch.logaddexp(stay_pb, stay_pnb) + fused, (ext + ext_fused).flatten(1)],
            dim=1,
        )  # (B, K + K * C)
        pick = scores.topk(K, dim=1).indices  # (B, K)

        is_ext = pick >= K  # (B, K)
        e = (pick - K).clamp_min(0)  # index into the flattened (K, C) extensions
        src = torch.where(is_ext, e // C, pick)  # (B, K) source prefix
        token = torch.where(is_ext, c.gather(1, e % C), -1)  # (B, K)
        pb = torch.where(is_ext, _NEG_INF, stay_pb.gather(1, src))
        pnb = torch.where(is_ext, ext.flatten(1).gather(1, e), stay_pnb.gather(1, src))
        fused = torch.where(
            is_ext, ext_fused.flatten(1).gather(1, e), fused.gather(1, src)
        )
        last = torch.where(is_ext, token, last.gather(1, src))
        hashes = [
            torch.where(is_ext, eh.flatten(1).gather(1, e), h.gather(1, src))
            for eh, h in zip(ext_hashes, hashes, strict=True)
        ]
        if prefix_scorer is not None:
            state = select_rows(state, (rows + src).flatten())
            moved = prefix_scorer.advance(state, token.clamp_min(0).flatten())
            state = _where(is_ext.flatten(), moved, state)
        sources.append(src)
        emitted.append(token)

    final = torch.logaddexp(pb, pnb) + fused  # (B, K)
    if prefix_scorer is not None and hasattr(prefix_scorer, "final"):
        final = final + prefix_scorer.final(state).view(B, K).float()
    order = final.argsort(dim=1, descending=True)  # (B, K)
    final = final.gather(1, order)
    tokens = _backtrack(sources, emitted, order)  # (B, K, T)
    results = []
    for b_tokens, b_scores in zip(tokens.tolist(), final.tolist(), strict=True):
        results.append(
            [
                ([tok for tok in seq if tok >= 0], score)
                for seq, score in zip(b_tokens, b_scores, strict=True)
                if score > _NEG_INF
            ]
        )
    return results


def _backtrack(
    sources: list[torch.Tensor], emitted: list[torch.Tensor], slots: torch.Tensor
) -> torch.Tensor:
    """Follow back-pointers from the final `slots` (B, K); returns (B, K, T) tokens
    in time order, -1 where a frame added none."""
    idx = slots
    out = []
    for src, token in zip(reversed(sources), reversed(emitted), strict=True):
        out.append(token.gather(1, idx))  # (B, K)
        idx = src.gather(1, idx)
    if not out:
        return torch.empty(*slots.shape, 0, dtype=torch.long)
    return torch.stack(out[::-1], dim=2).cpu()  # (B, K, T)


def _where(mask: torch.Tensor, new: Any, old: Any) -> Any:
    """Rows of `new` where mask (N,) is true, else of `old`, through a nested state."""
    if isinstance(new, torch.Tensor):
        return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)
    if isinstance(new, dict):
        return {key: _where(mask, new[key], old[key]) for key in new}
    if isinstance(new, list | tuple):
        return type(new)(_where(mask, n, o) for n, o in zip(new, old, strict=True))
    raise TypeError(f"unsupported scorer state type {type(new).__name__}")
