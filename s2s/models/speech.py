"""Speech recognition with CTC: log-mel frames -> SpecAugment -> 4x subsampling ->
the BiLSTM `RNNEncoder` (the same class translation uses) -> CTC output layer.

Shapes: B batch, T input frames, F mel bins, T' = subsampled frames, D = emb_dim,
E = encoder output size, V vocabulary (the blank is id 0, the pad id, which is
never a target).
"""

from __future__ import annotations

import torch
from torch import nn

from s2s.models.ctc import CTCHead, ctc_loss
from s2s.models.encoder import RNNEncoder
from s2s.models.frontend import SpecAugment, Subsampler

__all__ = ["SpeechCTC"]


class SpeechCTC(nn.Module):
    """`(feats, lengths) -> (log_probs, lengths)`; `loss` adds the CTC loss.

    Args:
        specaugment: masks training batches (identity in eval mode), or None.
        subsampler: (B, T, F) -> (B, T', D).
        encoder: (B, T', D) -> (B, T', E).
        head: (B, T', E) -> (B, T', V) log-probabilities.
        dropout: on the encoder outputs, before the head.
    """

    def __init__(
        self,
        specaugment: SpecAugment | None,
        subsampler: Subsampler,
        encoder: RNNEncoder,
        head: CTCHead,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.specaugment = specaugment
        self.subsampler = subsampler
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = head

    @property
    def blank(self) -> int:
        return self.head.blank

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> log_probs (B, T', V) float32, (B,)."""
        if self.specaugment is not None:
            feats, lengths = self.specaugment(feats, lengths)  # (B, T, F)
        x, lengths = self.subsampler(feats, lengths)  # (B, T', D)
        x, lengths, _ = self.encoder(x, lengths.cpu())  # (B, T', E)
        return self.head(self.dropout(x)), lengths  # (B, T', V)

    def loss(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed CTC loss of the batch and the number of utterances whose loss was
        infinite (left out of the sum and the gradient; see `ctc_loss`)."""
        log_probs, out_lengths = self(feats, lengths)
        return ctc_loss(log_probs, out_lengths, targets, target_lengths, self.blank)
