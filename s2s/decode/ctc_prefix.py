"""CTC prefix scores for label-synchronous search (Watanabe et al., 2017).

CTC scores each prefix that the attention decoder proposes by its prefix
probability: the probability, summed over all alignments, that the utterance's
transcript starts with it. Extending prefix g by token c gains
``log p_ctc(g + c ...) - log p_ctc(g ...)``, and ending g (c = EOS) uses the
probability of g as the whole transcript instead, so a hypothesis's CTC part
telescopes to its prefix (or whole-transcript) log-probability.

Prefix probabilities come from CTC forward variables over the frames (Watanabe et
al., 2017, Algorithm 2; ESPnet's CTCPrefixScoreTH), for all hypotheses and candidate
tokens at once: r_t^n(h), r_t^b(h) are the log-probabilities that frames 0..t emit
prefix h ending in its last label or in a blank.

Shapes: B utterances, T frames (encoder steps), V vocabulary, N hypothesis rows,
C candidates per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from s2s.data.vocab import EOS

__all__ = [
    "CTCPrefixScorer",
    "CTCPrefixState",
    "ctc_frames",
    "ctc_prefix_init",
    "ctc_prefix_scores",
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


class CTCPrefixScorer:
    """CTC prefix scores as the partial scorer of `s2s.decode.beam.beam_search`:
    each candidate gains `weight` times the change in its prefix's log-probability.

    Args:
        log_probs: (B, T, V) CTC log-probabilities; lengths (B,) frames.
    """

    def __init__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor, blank: int, weight: float
    ):
        self.lengths = lengths.to(log_probs.device)
        self.x = ctc_frames(log_probs, self.lengths, blank)  # (T, B, V)
        self.blank, self.weight = blank, weight

    def init_state(self, rows: torch.Tensor) -> CTCPrefixState:
        return ctc_prefix_init(self.x, rows, self.blank)

    def score(
        self, state: CTCPrefixState, cand: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, tuple]:
        prefix, r = ctc_prefix_scores(self.x, rows, state, cand, self.blank)
        old = state.prefix[:, None]  # (N, 1)
        gain = torch.where(old > _NEG_INF, prefix - old, _NEG_INF)  # (N, C)
        return self.weight * gain, (prefix, r, cand, state.length)

    def take(
        self, scored: tuple, rows: torch.Tensor, cols: torch.Tensor
    ) -> CTCPrefixState:
        prefix, r, cand, length = scored
        return CTCPrefixState(
            r[:, :, rows, cols], prefix[rows, cols], cand[rows, cols], length + 1
        )

    def select(
        self, state: CTCPrefixState, rows: torch.Tensor, alive: torch.Tensor
    ) -> CTCPrefixState:
        """Keep rows `rows`; frames past the longest utterance `alive` go."""
        T_alive = int(self.lengths[alive].max())
        self.x = self.x[:T_alive]
        state = state.select(rows)
        state.r = state.r[:T_alive]
        return state
