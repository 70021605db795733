"""One-pass joint CTC/attention beam search (Watanabe et al., 2017), with optional
shallow fusion of a language model.

The attention decoder proposes tokens one `AttentionDecoder.step` at a time; CTC
scores each proposed prefix by its prefix probability: the probability, summed over
all alignments, that the utterance's transcript starts with it. Extending prefix g
by token c scores

    (1 - ctc_weight) * log p_att(c | g)
      + ctc_weight * (log p_ctc(g + c ...) - log p_ctc(g ...))
      + lm_weight * log p_lm(c | g) + length_bonus,

and ending g (c = EOS) uses the probability of g as the whole transcript instead,
without the bonus. A hypothesis's score is the sum of its steps' scores, so the CTC
part telescopes to its prefix (or whole-transcript) log-probability.

Prefix probabilities come from CTC forward variables over the frames (Watanabe et
al., 2017, Algorithm 2; ESPnet's CTCPrefixScoreTH), for all hypotheses and candidate
tokens at once: r_t^n(h), r_t^b(h) are the log-probabilities that frames 0..t emit
prefix h ending in its last label or in a blank. Only the decoder's best few tokens
per hypothesis are scored (`candidates`); EOS always is.

Shapes: B utterances, T frames (encoder steps), V vocabulary, K beam, N = rows of
hypotheses (row b * K + k is hypothesis k of utterance b), C candidates per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from s2s.data.vocab import BOS, EOS, PAD
from s2s.decode.search import Hypothesis
from s2s.models.decoder import AttentionDecoder, DecoderState, Memory

__all__ = [
    "CTCPrefixState",
    "ctc_frames",
    "ctc_prefix_init",
    "ctc_prefix_scores",
    "joint_beam_search",
]

_NEG_INF = float("-inf")


@dataclass
class CTCPrefixState:
    """CTC forward variables of N prefixes, all `length` tokens long."""

    r: torch.Tensor  # (T, 2, N) log r_t^n (index 0) and r_t^b (index 1)
    prefix: torch.Tensor  # (N,) log prefix probability
    last: torch.Tensor  # (N,) last token, -1 for the empty prefix
    length: int

    def select(self, idx: torch.Tensor) -> CTCPrefixState:
        return CTCPrefixState(
            self.r[:, :, idx], self.prefix[idx], self.last[idx], self.length
        )


def ctc_frames(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank: int
) -> torch.Tensor:
    """(B, T, V) log-probabilities, lengths (B,) -> (T, B, V) float32 in which frames
    past an utterance's end emit blank with probability 1: they leave every prefix's
    forward variables as they were at the end, so a batch shares one time axis."""
    T = log_probs.size(1)
    past = (
        torch.arange(T, device=log_probs.device)
        >= lengths.to(log_probs.device)[:, None]
    )  # (B, T)
    x = log_probs.float().masked_fill(past[:, :, None], _NEG_INF)
    x[:, :, blank] = x[:, :, blank].masked_fill(past, 0.0)
    return x.transpose(0, 1).contiguous()  # (T, B, V)


def ctc_prefix_init(x: torch.Tensor, rows: torch.Tensor, blank: int) -> CTCPrefixState:
    """The empty prefix for N hypothesis rows of utterances `rows` (N,) of x
    (T, B, V): all blanks so far, prefix probability 1."""
    T, N = x.size(0), rows.numel()
    r = x.new_full((T, 2, N), _NEG_INF)
    r[:, 1] = x[:, rows, blank].cumsum(dim=0)  # (T, N)
    last = torch.full((N,), -1, dtype=torch.long, device=x.device)
    return CTCPrefixState(r, x.new_zeros(N), last, 0)


def ctc_prefix_scores(
    x: torch.Tensor,
    rows: torch.Tensor,
    state: CTCPrefixState,
    cand: torch.Tensor,
    blank: int,
    eos: int = EOS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Extend every prefix of `state` by each of its candidates.

    Args:
        x: (T, B, V) frames from `ctc_frames`.
        rows: (N,) the utterance of each hypothesis row.
        state: the N prefixes.
        cand: (N, C) candidate tokens; `eos` ends the prefix.

    Returns:
        prefix: (N, C) log prefix probability of each extension; for `eos`, the
            log-probability of the unextended prefix as the whole transcript.
        r: (T, 2, N, C) the extensions' forward variables.
    """
    T = x.size(0)
    N, C = cand.shape
    xc = x[:, rows[:, None], cand]  # (T, N, C)
    xb = x[:, rows, blank][:, :, None]  # (T, N, 1)
    r_prev = state.r
    whole = torch.logaddexp(r_prev[:, 0], r_prev[:, 1])  # (T, N) g emitted by t
    # c may start at frame t once g is emitted by t - 1; a repeat of g's last label
    # only once a blank separates them.
    repeat = cand == state.last[:, None]  # (N, C)
    phi = torch.where(repeat, r_prev[:, 1, :, None], whole[:, :, None])  # (T, N, C)
    r = x.new_full((T, 2, N, C), _NEG_INF)
    # A prefix of L + 1 labels needs L + 1 frames: r_t is -inf before t = L.
    start = max(state.length, 1)
    if state.length == 0:
        r[0, 0] = xc[0]
    for t in range(start, T):
        r[t, 0] = torch.logaddexp(r[t - 1, 0], phi[t - 1]) + xc[t]
        r[t, 1] = torch.logaddexp(r[t - 1, 0], r[t - 1, 1]) + xb[t]
    # Prefix probability: c emitted first at some frame t, whatever follows.
    prefix = torch.logsumexp(phi[start - 1 : T - 1] + xc[start:], dim=0)  # (N, C)
    if state.length == 0:
        prefix = torch.logaddexp(prefix, r[0, 0])
    prefix = torch.where(cand == eos, whole[-1, :, None], prefix)
    return prefix, r


def _select_lm(state: Any, idx: torch.Tensor) -> Any:
    return tuple(s.index_select(0, idx) for s in state)


@torch.inference_mode()
def joint_beam_search(
    decoder: AttentionDecoder,
    mem: Memory,
    state: DecoderState,
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    beam: int,
    ctc_weight: float = 0.3,
    length_bonus: float = 0.0,
    candidates: int = 0,
    nbest: int = 1,
    lm: Any = None,
    lm_weight: float = 0.0,
    blank: int = PAD,
    end_margin: float = 10.0,
) -> list[list[Hypothesis]]:
    """Joint CTC/attention beam search over a batch of utterances.

    Args:
        decoder, mem, state: the attention decoder with its memory and initial
            state for the B utterances (`SpeechJoint.encode_both`).
        log_probs: (B, T, V) CTC log-probabilities; lengths (B,) frames. An
            utterance's output is at most one token per frame.
        beam: K hypotheses kept per utterance.
        ctc_weight: 0 is attention beam search (CTC is not computed), 1 ranks by
            CTC prefix probabilities alone.
        length_bonus: added per emitted token.
        candidates: tokens per hypothesis scored by CTC, the best by the decoder
            (and LM); 0: ceil(1.5 * beam), at least 2. All tokens when ctc_weight
            is 1 or CTC is off.
        nbest: hypotheses returned per utterance.
        lm: optional language model over the same vocabulary, fed BOS first:
            `lm.init_state(N, device) -> (h, c)`, each (N, layers, H);
            `lm.step(tokens (N,), state) -> (log_probs (N, V), state)`.
        lm_weight: its weight (0: not called).
        end_margin: end detection, see below.

    Every step takes the best 2K extensions of each utterance: the EOS ones among
    the first K finish, the best K others go on. An utterance is done when its
    hypotheses have as many tokens as it has frames (they can only end then), when
    nothing is left alive, or once `nbest` hypotheses have finished
    and the best live one cannot catch up with the best finished one: scores only
    fall apart from the bonus, so it cannot if it is behind by more than the bonus
    can still add, and with a positive bonus it is not expected to if it is behind
    by more than `end_margin`.

    Returns:
        For each utterance up to `nbest` (tokens without BOS/EOS, score), best
        first; none if no hypothesis could end (CTC found every one impossible).
    """
    B, T, V = log_probs.shape
    K, device, lam = beam, log_probs.device, ctc_weight
    use_ctc, use_lm = lam > 0, lm is not None and lm_weight != 0
    C = candidates or max(2, math.ceil(1.5 * K))
    all_tokens = not use_ctc or lam == 1 or C >= V - 1

    rows = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,)
    state = state.select(rows)  # the memory keeps one row per utterance (`step`)
    lengths = lengths.to(device)
    max_len = lengths.clamp_min(1)  # (B,)
    x = ctc_frames(log_probs, lengths, blank) if use_ctc else None  # (T, B, V)
    ctc = ctc_prefix_init(x, rows, blank) if use_ctc else None
    lm_state = lm.init_state(B * K, device) if use_lm else None
    alive = torch.arange(B, device=device)  # original utterance of each row group
    scores = torch.full((B, K), _NEG_INF, device=device)
    scores[:, 0] = 0.0  # all beams start equal: keep one so they don't duplicate
    tokens = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    seqs = torch.empty(B * K, 0, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    n_done = torch.zeros(B, dtype=torch.long, device=device)
    best_done = torch.full((B,), _NEG_INF, device=device)
    bonus_left = max(length_bonus, 0.0)

    for t in range(int(max_len.max()) + 1):  # the last step only ends hypotheses
        n = alive.numel()
        last_step = (t >= max_len[alive]).repeat_interleave(K)  # (n*K,)
        logp, state, _ = decoder.step(tokens, state, mem)  # (n*K, V)
        tok = (1.0 - lam) * logp if lam < 1 else torch.zeros_like(logp)
        if use_lm:
            lm_logp, lm_state = lm.step(tokens, lm_state)  # (n*K, V)
            tok = tok + lm_weight * lm_logp.float()
        tok[:, [PAD, BOS]] = _NEG_INF
        if all_tokens:
            cand = torch.arange(V, device=device).expand(n * K, V)  # (n*K, V)
        else:
            best = tok.index_fill(1, torch.tensor([EOS], device=device), _NEG_INF)
            cand = torch.cat(
                [best.topk(C, dim=1).indices, torch.full_like(tokens[:, None], EOS)],
                dim=1,
            )  # (n*K, C + 1)
        cand_s = tok.gather(1, cand)  # (n*K, C')
        if use_ctc:
            utt = alive.repeat_interleave(K)  # (n*K,)
            prefix, r = ctc_prefix_scores(x, utt, ctc, cand, blank)
            old = ctc.prefix[:, None]  # (n*K, 1)
            gain = torch.where(old > _NEG_INF, prefix - old, _NEG_INF)
            cand_s = cand_s + lam * gain
        cand_s = cand_s + torch.where(cand == EOS, 0.0, length_bonus)
        # At most one token per frame: at the limit, hypotheses can only end.
        cand_s = cand_s.masked_fill(last_step[:, None] & (cand != EOS), _NEG_INF)
        Cn = cand.size(1)
        total = (scores.view(-1, 1) + cand_s).view(n, K * Cn)
        top_s, top_i = total.topk(min(2 * K, K * Cn), dim=1)  # (n, 2K)
        top_beam, top_col = top_i // Cn, top_i % Cn
        top_tok = cand.reshape(n, K * Cn).gather(1, top_i)
        is_eos = top_tok == EOS

        # Finish EOS candidates ranked within the top K of their utterance.
        ends = (is_eos[:, :K] & (top_s[:, :K] > _NEG_INF)).nonzero().tolist()
        for i, j in ends:
            seq = seqs[i * K + int(top_beam[i, j])].tolist()
            finished[int(alive[i])].append((seq, float(top_s[i, j])))
            n_done[i] += 1
            best_done[i] = max(float(best_done[i]), float(top_s[i, j]))

        # The best K others continue.
        go_s, go_pos = top_s.masked_fill(is_eos, _NEG_INF).topk(K, dim=1)
        go_beam, go_tok = top_beam.gather(1, go_pos), top_tok.gather(1, go_pos)
        flat = (torch.arange(n, device=device)[:, None] * K + go_beam).view(-1)
        seqs = torch.cat([seqs[flat], go_tok.view(-1, 1)], dim=1)  # (n*K, t+1)
        state, tokens, scores = state.select(flat), go_tok.view(-1), go_s
        if use_lm:
            lm_state = _select_lm(lm_state, flat)
        if use_ctc:
            col = top_col.gather(1, go_pos).view(-1)  # candidate each row took
            ctc = CTCPrefixState(
                r[:, :, flat, col], prefix[flat, col], tokens, ctc.length + 1
            )

        # Stop utterances that are at their length limit or decided.
        left = (max_len[alive] - t - 1).clamp_min(0)  # tokens live ones may add
        live = scores[:, 0]  # (n,) the best live score
        behind = (live + bonus_left * left <= best_done) | (
            live < best_done - end_margin
        )
        done = last_step.view(n, K)[:, 0] | (live == _NEG_INF)
        done |= (n_done >= nbest) & behind
        if done.all():
            break
        if done.any():
            keep = (~done).nonzero()[:, 0]
            keep_rows = (keep[:, None] * K + torch.arange(K, device=device)).view(-1)
            alive, scores = alive[keep], scores[keep]
            n_done, best_done = n_done[keep], best_done[keep]
            seqs, tokens = seqs[keep_rows], tokens[keep_rows]
            mem, state = mem.select(keep), state.select(keep_rows)
            if use_lm:
                lm_state = _select_lm(lm_state, keep_rows)
            if use_ctc:
                T_alive = int(lengths[alive].max())
                x = x[:T_alive]
                ctc = ctc.select(keep_rows)
                ctc.r = ctc.r[:T_alive]
    return [sorted(h, key=lambda hyp: -hyp[1])[:nbest] for h in finished]
