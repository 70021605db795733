"""CTC output layer and loss.

A CTC loss is infinite when a target cannot be aligned to its input: after
subsampling there are fewer frames than the target needs (its length plus one blank
between each pair of equal neighbours). `ctc_loss` counts those utterances and
leaves them out of the loss and the gradient, so the trainer can report them instead
of the run quietly learning from fewer utterances than the user thinks.
"""

from __future__ import annotations

import torch
from torch import nn

from s2s.data.speech import min_ctc_frames

__all__ = ["CTCHead", "ctc_loss"]


class CTCHead(nn.Module):
    """Linear projection to the vocabulary followed by log-softmax.

    Args:
        in_dim: encoder output dimension D.
        vocab_size: number of output symbols V, including the blank.
        blank: index of the blank symbol.

    Shapes:
        forward: x (B, T, D) -> log_probs (B, T, V), float32 even under autocast.
    """

    def __init__(self, in_dim: int, vocab_size: int, blank: int = 0) -> None:
        super().__init__()
        if not 0 <= blank < vocab_size:
            raise ValueError(
                f"blank {blank} is outside the vocabulary [0, {vocab_size})"
            )
        self.blank = blank
        self.proj = nn.Linear(in_dim, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).float().log_softmax(dim=-1)  # (B, T, V)


def ctc_loss(
    log_probs: torch.Tensor,
    in_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed CTC loss over the batch, with impossible utterances counted, not hidden.

    Args:
        log_probs: (B, T, V) log-probabilities (e.g. from `CTCHead`).
        in_lengths: (B,) valid frames per utterance.
        targets: (B, U) target ids, padded with anything past `target_lengths`;
            they must not contain `blank`.
        target_lengths: (B,) target lengths.
        blank: index of the blank symbol.

    Returns:
        loss_sum: () float32, the sum of the finite per-utterance negative
            log-likelihoods (divide by what you normalise by).
        num_inf: () int64, how many utterances had an infinite loss; they add 0 to
            `loss_sum` and nothing to the gradient.

    An utterance whose target needs more frames than it has (`min_ctc_frames`) is
    given an empty target before calling `torch.nn.functional.ctc_loss` (float32,
    ``reduction="none"``, ``zero_infinity=False``): PyTorch's backward yields NaN for
    an infinite loss even when its upstream gradient is 0, so masking afterwards
    would not be enough. Any other non-finite loss (only possible once `log_probs`
    holds -inf or NaN, i.e. training has diverged) is also counted and left out of
    `loss_sum`, but its gradient can be NaN; the trainer should skip such steps.
    """
    in_lengths = in_lengths.to(log_probs.device)
    target_lengths = target_lengths.to(log_probs.device)
    impossible = min_ctc_frames(targets, target_lengths) > in_lengths  # (B,)
    safe_lengths = target_lengths.masked_fill(impossible, 0)  # (B,)
    losses = nn.functional.ctc_loss(
        log_probs.float().transpose(0, 1),  # (T, B, V)
        targets,
        in_lengths,
        safe_lengths,
        blank=blank,
        reduction="none",
        zero_infinity=False,
    )  # (B,)
    bad = impossible | ~torch.isfinite(losses)  # (B,)
    loss_sum = losses.masked_fill(bad, 0.0).sum()
    return loss_sum, bad.sum()
