"""One batched, label-synchronous beam search for translation and speech.

What differs between searches is plugged in, not copied (ESPnet's scorer design):

- *scorers* give every next token a log-score from the hypothesis so far: the
  attention decoder (`DecoderScorer`), a language model (`s2s.decode.fusion.LMScorer`,
  the same object CTC prefix beam search fuses); each carries its weight;
- a *partial scorer* rescores only a few candidates per hypothesis, because scoring
  all tokens costs too much: CTC prefix scores (`s2s.decode.ctc_prefix`);
- a *length rule* says what a finished hypothesis scores and when a sentence is done:
  `GNMTPenalty` (score / ((5 + length) / 6) ** alpha, stop after K finished) or
  `LengthBonus` (a bonus per token, stop when no live hypothesis can catch up).

Every step takes the best 2K extensions of each sentence: the EOS ones among the
first K finish, the best K others go on. All sentences x beams advance as one
(B * K, ...) batch, and a finished sentence leaves it.

Shapes: B sentences still alive (n after some left), K beam, V vocabulary, N = n * K
hypothesis rows (row b * K + k is hypothesis k of sentence b), C candidates per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from s2s.data.vocab import BOS, EOS, PAD
from s2s.models.decoder import AttentionDecoder, DecoderState, Memory

__all__ = [
    "Hypothesis",
    "Scorer",
    "ScorerSum",
    "TokenBonus",
    "DecoderScorer",
    "GNMTPenalty",
    "LengthBonus",
    "beam_search",
    "length_penalty",
    "topk_rows",
    "select_rows",
]

Hypothesis = tuple[list[int], float]  # (tokens without BOS/EOS, score)
_NEG_INF = float("-inf")


class Scorer(Protocol):
    """Log-scores of every next token; the state of a hypothesis is opaque here.

    States are a tensor or a tuple/list/dict of tensors whose first dimension is the
    N hypothesis rows (`select_rows` reorders them); a scorer whose state has parts
    per sentence (the decoder's memory) defines `select` itself. Scale the scores
    (the weight) inside the scorer. The search may write into what `score` returns
    (it masks tokens that are never emitted), and calls `advance` on every row
    after selecting rows. CTC prefix beam search takes the same scorers
    and adds an optional `final(state) -> (N,)` when a prefix ends the utterance."""

    def init_state(self, batch_size: int, device: torch.device) -> Any:
        """The state of the empty hypothesis (BOS fed), first dimension N."""
        ...

    def score(self, state: Any, tokens: torch.Tensor) -> torch.Tensor:
        """Log-scores (N, C) of appending each of tokens (N, C)."""
        ...

    def advance(self, state: Any, tokens: torch.Tensor) -> Any:
        """The state after appending tokens (N,)."""
        ...


def select_rows(state: Any, index: torch.Tensor) -> Any:
    """Rows `index` of every tensor of a state (a tensor, tuple, list or dict)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {k: select_rows(v, index) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(select_rows(v, index) for v in state)
    raise TypeError(f"unsupported scorer state type {type(state).__name__}")


class ScorerSum:
    """Several scorers as one `Scorer` (CTC prefix beam search takes one): the
    sum of their scores, and of the `final`s of those that have one; the state is
    the tuple of theirs."""

    def __init__(self, scorers: list[Scorer]):
        self.scorers = list(scorers)

    def init_state(self, batch_size: int, device: torch.device) -> tuple:
        return tuple(s.init_state(batch_size, device) for s in self.scorers)

    def score(self, state: tuple, tokens: torch.Tensor) -> torch.Tensor:
        return _summed(self.scorers, list(state), tokens)

    def advance(self, state: tuple, tokens: torch.Tensor) -> tuple:
        return tuple(
            s.advance(st, tokens) for s, st in zip(self.scorers, state, strict=True)
        )

    def final(self, state: tuple) -> torch.Tensor:
        pairs = zip(self.scorers, state, strict=True)
        finals = [s.final(st).float() for s, st in pairs if hasattr(s, "final")]
        if not finals:
            first = _first_tensor(state)
            return torch.zeros(first.size(0), device=first.device)
        return sum(finals[1:], finals[0])


class TokenBonus:
    """`bonus` for every token, as a `Scorer`: CTC prefix beam search's length
    bonus (`decode.length_bonus`). A language model's log-probabilities cost every
    character, so a fused search prefers fewer of them and drops those it is unsure
    of; a positive bonus pays them back. The state is a placeholder (N,)."""

    def __init__(self, bonus: float):
        self.bonus = bonus

    def init_state(self, batch_size: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(batch_size, device=device)

    def score(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return torch.full(tokens.shape, self.bonus, device=tokens.device)  # (N, C)

    def advance(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return state


def _first_tensor(state: Any) -> torch.Tensor:
    """The first tensor of a state (a tensor, dict, tuple or list of them)."""
    if isinstance(state, torch.Tensor):
        return state
    parts = state.values() if isinstance(state, dict) else state
    return next(_first_tensor(p) for p in parts if p is not None)


def _all_tokens(state_rows: int, V: int, device: torch.device) -> torch.Tensor:
    return torch.arange(V, device=device).expand(state_rows, V)  # (N, V)


@dataclass
class _DecoderState:
    mem: Memory  # one row per sentence
    state: DecoderState  # one row per hypothesis
    logp: torch.Tensor  # (N, V) next-token log-probabilities


class DecoderScorer:
    """The attention decoder as a scorer: `weight * log p_att(token | prefix)`.

    Its memory keeps one row per sentence (`AttentionDecoder.step` broadcasts it over
    the K hypotheses of each), so it selects hypothesis rows and, when sentences
    leave the batch, memory rows."""

    def __init__(
        self,
        decoder: AttentionDecoder,
        mem: Memory,
        state: DecoderState,
        weight: float = 1.0,
    ):
        self.decoder, self.mem, self.state0, self.weight = decoder, mem, state, weight

    def init_state(self, batch_size: int, device: torch.device) -> _DecoderState:
        K = batch_size // self.mem.values.size(0)
        rows = torch.arange(self.mem.values.size(0), device=device)
        state = self.state0.select(rows.repeat_interleave(K))
        empty = _DecoderState(self.mem, state, None)
        return self.advance(empty, _bos(batch_size, device))

    def score(self, state: _DecoderState, tokens: torch.Tensor) -> torch.Tensor:
        logp = state.logp if self.weight == 1.0 else self.weight * state.logp
        if tokens.size(1) == logp.size(1):
            return logp  # every token, in order (the usual case)
        return logp.gather(1, tokens)

    def advance(self, state: _DecoderState, tokens: torch.Tensor) -> _DecoderState:
        logp, dec, _ = self.decoder.step(tokens, state.state, state.mem)  # (N, V)
        return _DecoderState(state.mem, dec, logp)

    def select(
        self, state: _DecoderState, rows: torch.Tensor, sentences: torch.Tensor | None
    ) -> _DecoderState:
        """The search selects rows between scoring and `advance`, which computes the
        next log-probabilities: the spent ones are not copied."""
        mem = state.mem if sentences is None else state.mem.select(sentences)
        return _DecoderState(mem, state.state.select(rows), None)


def _bos(n: int, device: torch.device) -> torch.Tensor:
    return torch.full((n,), BOS, dtype=torch.long, device=device)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT (Wu et al., 2016): ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


@dataclass
class GNMTPenalty:
    """A finished hypothesis scores its log-probability / `length_penalty`.

    Normalised scores can rise with length, so no bound says a live hypothesis is
    beaten: a sentence is done once K hypotheses have finished (at most K are
    kept), or at its length limit, where its live ones finish as they are."""

    alpha: float = 0.6

    def final(self, score: float, length: int) -> float:
        return score / length_penalty(length, self.alpha)


@dataclass
class LengthBonus:
    """Every emitted token adds `bonus`; a finished hypothesis keeps its score.

    A sentence is done once `nbest` hypotheses have finished and the best live one
    cannot catch up with the best finished one: scores only fall apart from the
    bonus, so it cannot if it is behind by more than the bonus can still add, and
    with a positive bonus it is not expected to if behind by more than
    `end_margin`. At its length limit a hypothesis can only end (EOS is scored)."""

    bonus: float = 0.0
    nbest: int = 1
    end_margin: float = 10.0

    def final(self, score: float, length: int) -> float:
        return score


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


class PartialScorer(Protocol):
    """Rescores a few candidate tokens per hypothesis (CTC prefix scores)."""

    def init_state(self, rows: torch.Tensor) -> Any:
        """The empty prefix of hypothesis rows of sentences `rows` (N,)."""
        ...

    def score(
        self, state: Any, cand: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, Any]:
        """Weighted log-score gains (N, C) of candidates (N, C), and what `take`
        needs to build the chosen extensions' state."""
        ...

    def take(self, scored: Any, rows: torch.Tensor, cols: torch.Tensor) -> Any:
        """The state of extension `cols` (N,) of hypothesis rows `rows` (N,)."""
        ...

    def select(self, state: Any, rows: torch.Tensor, alive: torch.Tensor) -> Any:
        """Keep hypothesis rows `rows` of the sentences `alive` still searched."""
        ...


@torch.inference_mode()
def beam_search(
    scorers: list[Scorer],
    max_len: torch.Tensor,
    beam: int,
    vocab_size: int,
    length: GNMTPenalty | LengthBonus,
    nbest: int = 1,
    partial: PartialScorer | None = None,
    candidates: int = 0,
) -> list[list[Hypothesis]]:
    """Beam search over B sentences with the summed scores of `scorers`.

    Args:
        scorers: their scores are summed for every token (none: all score 0).
        max_len: (B,) most tokens per sentence (see the length rule for the limit).
        beam: K hypotheses kept per sentence.
        length: `GNMTPenalty` or `LengthBonus`.
        nbest: hypotheses returned per sentence.
        vocab_size: V.
        partial: an optional partial scorer (CTC), which scores `candidates` tokens
            per hypothesis, the best by `scorers` (0: ceil(1.5 * beam), at least 2),
            plus EOS; with as many candidates as tokens it scores them all.

    Returns:
        For each sentence up to `nbest` (tokens without BOS/EOS, score), best first;
        none if no hypothesis could end.
    """
    K, B, V = beam, max_len.numel(), vocab_size
    C = candidates or max(2, math.ceil(1.5 * K))
    device = max_len.device
    never = torch.tensor([PAD, BOS], device=device)
    bonus = isinstance(length, LengthBonus)
    # A bonus search scores EOS at the length limit (one more step); a GNMT one cuts.
    steps = int(max_len.max()) + (1 if bonus else 0)
    states = [s.init_state(B * K, device) for s in scorers]
    if partial is not None:
        pstate = partial.init_state(torch.arange(B, device=device).repeat_interleave(K))
    alive = torch.arange(B, device=device)  # original sentence of each row group
    scores = torch.full((B, K), _NEG_INF, device=device)
    scores[:, 0] = 0.0  # all beams start equal: keep one so they don't duplicate
    seqs = torch.empty(B * K, 0, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    n_done = torch.zeros(B, dtype=torch.long, device=device)
    best_done = torch.full((B,), _NEG_INF, device=device)

    for t in range(steps):
        n = alive.numel()
        last_step = t >= max_len[alive] if bonus else None  # (n,)
        tok = _summed(scorers, states, _all_tokens(n * K, V, device))  # (n*K, V)
        tok[:, never] = _NEG_INF  # BOS and PAD are never emitted (in place: cheap)
        if partial is not None:
            if C >= V - 1:
                cand = _all_tokens(n * K, V, device)  # (n*K, V)
            else:
                best = tok.index_fill(1, torch.tensor([EOS], device=device), _NEG_INF)
                eos = torch.full((n * K, 1), EOS, dtype=torch.long, device=device)
                cand = torch.cat([best.topk(C, dim=1).indices, eos], dim=1)
            cand_s = tok.gather(1, cand)  # (n*K, C')
            utt = alive.repeat_interleave(K)  # (n*K,)
            gain, scored = partial.score(pstate, cand, utt)
            cand_s = cand_s + gain
        else:
            cand, cand_s = None, tok
        if bonus:
            is_end = (cand == EOS) if cand is not None else _eos_columns(V, device)
            cand_s = cand_s + torch.where(is_end, 0.0, length.bonus)
            # At most one token per frame: at the limit, hypotheses can only end.
            stop = last_step.repeat_interleave(K)[:, None] & ~is_end
            cand_s = cand_s.masked_fill(stop, _NEG_INF)
        # A sentence's best 2K candidates are among each row's best 2K (a row adds
        # one score to all its candidates): top-k per row first, then over the
        # K x 2K survivors, instead of adding scores to all N x C'.
        R = min(2 * K, cand_s.size(1))
        row_s, row_col = topk_rows(cand_s, R)  # (n*K, R)
        row_tok = row_col if cand is None else cand.gather(1, row_col)
        total = (scores.view(-1, 1) + row_s).view(n, K * R)
        top_s, top_i = total.topk(min(2 * K, K * R), dim=-1)  # (n, 2K)
        top_beam = top_i // R
        top_tok = row_tok.view(n, K * R).gather(1, top_i)
        is_eos = top_tok == EOS

        # Finish EOS candidates ranked within the top K of their sentence.
        ends = (is_eos[:, :K] & (top_s[:, :K] > _NEG_INF)).nonzero().tolist()
        for i, j in ends:
            sent = finished[int(alive[i])]
            if bonus or len(sent) < K:
                seq = seqs[i * K + int(top_beam[i, j])].tolist()
                score = float(top_s[i, j])
                sent.append((seq, length.final(score, t + 1)))
                n_done[i] += 1
                best_done[i] = max(float(best_done[i]), score)

        # The best K others continue.
        go_s, go_pos = top_s.masked_fill(is_eos, _NEG_INF).topk(K, dim=-1)
        go_beam, go_tok = top_beam.gather(1, go_pos), top_tok.gather(1, go_pos)
        flat = (torch.arange(n, device=device)[:, None] * K + go_beam).view(-1)
        seqs = torch.cat([seqs[flat], go_tok.view(-1, 1)], dim=1)  # (n*K, t+1)
        tokens, scores = go_tok.view(-1), go_s
        states = [
            _select(s, st, flat, None) for s, st in zip(scorers, states, strict=True)
        ]
        if partial is not None:
            top_col = row_col.view(n, K * R).gather(1, top_i)  # columns of cand
            pstate = partial.take(scored, flat, top_col.gather(1, go_pos).view(-1))

        if bonus:
            left = (max_len[alive] - t - 1).clamp_min(0)  # tokens live ones may add
            live = scores[:, 0]  # (n,) the best live score
            behind = (live + max(length.bonus, 0.0) * left <= best_done) | (
                live < best_done - length.end_margin
            )
            done = last_step | (live == _NEG_INF) | ((n_done >= length.nbest) & behind)
        else:
            # At its length limit a sentence finishes its live beams as they are.
            done = t + 1 >= max_len[alive]  # (n,)
            for i in done.nonzero()[:, 0].tolist():
                sent = finished[int(alive[i])]
                for j in range(K - len(sent)):
                    if scores[i, j] > _NEG_INF:
                        seq = seqs[i * K + j].tolist()
                        sent.append((seq, length.final(float(scores[i, j]), t + 1)))
            done = done | (n_done >= K)
        if done.all():
            break
        if done.any():
            keep = (~done).nonzero()[:, 0]
            keep_rows = (keep[:, None] * K + torch.arange(K, device=device)).view(-1)
            alive, scores = alive[keep], scores[keep]
            n_done, best_done = n_done[keep], best_done[keep]
            seqs, tokens = seqs[keep_rows], tokens[keep_rows]
            states = [
                _select(s, st, keep_rows, keep)
                for s, st in zip(scorers, states, strict=True)
            ]
            if partial is not None:
                pstate = partial.select(pstate, keep_rows, alive)
        states = [s.advance(st, tokens) for s, st in zip(scorers, states, strict=True)]
    return [sorted(h, key=lambda x: -x[1])[:nbest] for h in finished]


def _summed(
    scorers: list[Scorer], states: list[Any], every: torch.Tensor
) -> torch.Tensor:
    """The summed scores (N, V) of every next token `every` (N, V)."""
    if not scorers:
        return torch.zeros(every.shape, device=every.device)
    total = scorers[0].score(states[0], every).float()
    for scorer, state in zip(scorers[1:], states[1:], strict=True):
        total = total + scorer.score(state, every).float()
    return total


def _eos_columns(V: int, device: torch.device) -> torch.Tensor:
    return torch.arange(V, device=device) == EOS  # (V,)


def _select(
    scorer: Scorer, state: Any, rows: torch.Tensor, sentences: torch.Tensor | None
) -> Any:
    if hasattr(scorer, "select"):
        return scorer.select(state, rows, sentences)
    return select_rows(state, rows)
