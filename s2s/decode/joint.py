"""One-pass joint CTC/attention beam search (Watanabe et al., 2017), with optional
shallow fusion of a language model: `s2s.decode.beam.beam_search` with the attention
decoder and the LM as scorers, CTC prefix scores as its partial scorer
(`s2s.decode.ctc_prefix`) and a per-token length bonus. Extending prefix g by token c
scores

    (1 - ctc_weight) * log p_att(c | g)
      + ctc_weight * (log p_ctc(g + c ...) - log p_ctc(g ...))
      + lm_weight * log p_lm(c | g) + length_bonus,

and ending g (c = EOS) uses the probability of g as the whole transcript instead,
without the bonus. A hypothesis's score is the sum of its steps' scores.

Shapes: B utterances, T frames (encoder steps), V vocabulary, K beam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from s2s.data.vocab import PAD
from s2s.decode.beam import (
    DecoderScorer,
    Hypothesis,
    LengthBonus,
    Scorer,
    beam_search,
)
from s2s.decode.ctc_prefix import CTCPrefixScorer
from s2s.decode.fusion import LMScorer
from s2s.models.decoder import AttentionDecoder, DecoderState, Memory

__all__ = ["joint_beam_search"]


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
    fusion: Sequence[Scorer] = (),
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
        fusion: further scorers whose scores every hypothesis adds (e.g. the
            word list of `s2s.decode.lexicon.LexiconScorer`).

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
    lam = ctc_weight
    scorers: list[Any] = []
    if lam < 1:
        scorers.append(DecoderScorer(decoder, mem, state, weight=1.0 - lam))
    if lm is not None and lm_weight != 0:
        scorers.append(LMScorer(lm, lm_weight))
    scorers += fusion
    ctc = CTCPrefixScorer(log_probs, lengths, blank, lam) if lam > 0 else None
    return beam_search(
        scorers,
        lengths.to(log_probs.device).clamp_min(1),
        beam,
        V,
        LengthBonus(length_bonus, nbest, end_margin),
        nbest=nbest,
        partial=ctc,
        candidates=V if lam == 1 else candidates,
    )
