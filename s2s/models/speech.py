"""Speech recognition models: log-mel frames -> SpecAugment -> 4x subsampling -> the
BiLSTM `RNNEncoder` (the same class translation uses) -> a CTC output layer
(`SpeechCTC`), and for joint CTC/attention also the `AttentionDecoder` translation
uses, attending over the same encoder outputs (`SpeechJoint`).

Shapes: B batch, T input frames, F mel bins, T' = subsampled frames, D = emb_dim,
E = encoder output size, U target tokens, V vocabulary. The CTC blank is id 0, the
pad id, which is never a target; the decoder starts from BOS and ends with EOS, which
every vocabulary has (`s2s.data.vocab`) and CTC never emits as targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from s2s.data.vocab import BOS, EOS, PAD
from s2s.models.ctc import CTCHead, ctc_loss
from s2s.models.decoder import AttentionDecoder, DecoderState, Memory, output_loss
from s2s.models.dropout import Dropout
from s2s.models.encoder import RNNEncoder
from s2s.models.frontend import SpecAugment, Subsampler

__all__ = ["SpeechCTC", "SpeechJoint", "JointLoss", "decoder_targets"]


class SpeechCTC(nn.Module):
    """`(feats, lengths) -> (log_probs, lengths)`; `loss` adds the CTC loss.

    Args:
        specaugment: masks training batches (identity in eval mode), or None.
        subsampler: (B, T, F) -> (B, T', D).
        encoder: (B, T', D) -> (B, T', E).
        head: (B, T', E) -> (B, T', V) log-probabilities.
        dropout: on the encoder outputs, before the head.
        inter_ctc_weight: w of intermediate CTC (Lee and Watanabe, 2021): in
            training the head also reads the outputs of encoder layer
            num_layers // 2, and the CTC loss is (1 - w) * the last layer's + w *
            that layer's. 0: off. Inference never reads that layer.
    """

    def __init__(
        self,
        specaugment: SpecAugment | None,
        subsampler: Subsampler,
        encoder: RNNEncoder,
        head: CTCHead,
        dropout: float = 0.0,
        inter_ctc_weight: float = 0.0,
    ):
        super().__init__()
        self.specaugment = specaugment
        self.subsampler = subsampler
        self.encoder = encoder
        self.dropout = Dropout(dropout)
        self.head = head
        self.inter_ctc_weight = inter_ctc_weight

    @property
    def inter_layer(self) -> int:
        """The encoder layer intermediate CTC reads (counted from 1)."""
        return self.encoder.lstm.num_layers // 2

    @property
    def blank(self) -> int:
        return self.head.blank

    def encoder_outputs(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> outputs (B, T', E), lengths (B,) and the
        encoder's final state (B, E)."""
        x, lengths = self._frames(feats, lengths)  # (B, T', D)
        x, lengths, h = self.encoder(x, lengths.cpu())  # (B, T', E)
        return x, lengths, h

    def _frames(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, F) -> SpecAugment (training only) and subsampling ->
        (B, T', D), lengths (B,): what the encoder reads."""
        if self.specaugment is not None:
            feats, lengths = self.specaugment(feats, lengths)  # (B, T, F)
        return self.subsampler(feats, lengths)  # (B, T', D)

    def _training_encoder(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`encoder_outputs` plus, with intermediate CTC in training, the outputs of
        the encoder layer it reads (B, T', E); else None."""
        if not (self.training and self.inter_ctc_weight > 0):
            return (*self.encoder_outputs(feats, lengths), None)
        x, lengths = self._frames(feats, lengths)  # (B, T', D)
        return self.encoder.forward_tapped(x, lengths.cpu(), self.inter_layer)

    def _ctc(
        self,
        x: torch.Tensor,
        mid: torch.Tensor | None,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed CTC loss over encoder outputs x (B, T', E), mixed with
        intermediate CTC over mid when given, and the count of utterances CTC
        cannot align (both layers have the same lengths, so the same count)."""
        log_probs = self.head(self.dropout(x))  # (B, T', V)
        loss, num_inf = ctc_loss(
            log_probs, lengths, targets, target_lengths, self.blank
        )
        if mid is not None:
            mid_probs = self.head(self.dropout(mid))  # (B, T', V)
            mid_loss, _ = ctc_loss(
                mid_probs, lengths, targets, target_lengths, self.blank
            )
            w = self.inter_ctc_weight
            loss = (1.0 - w) * loss + w * mid_loss
        return loss, num_inf

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> log_probs (B, T', V) float32, (B,)."""
        x, lengths, _ = self.encoder_outputs(feats, lengths)
        return self.head(self.dropout(x)), lengths  # (B, T', V)

    def loss(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed CTC loss of the batch (with intermediate CTC mixed in, in
        training) and the number of utterances whose loss was infinite (left out
        of the sum and the gradient; see `ctc_loss`)."""
        x, out_lengths, _, mid = self._training_encoder(feats, lengths)
        return self._ctc(x, mid, out_lengths, targets, target_lengths)


def decoder_targets(
    targets: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets (B, U), PAD-padded, -> decoder input [BOS, y] and output [y, EOS],
    each (B, U + 1) and PAD-padded."""
    bos = targets.new_full((targets.size(0), 1), BOS)
    tgt_in = torch.cat([bos, targets], dim=1)  # (B, U + 1)
    tgt_out = torch.cat([targets, torch.full_like(bos, PAD)], dim=1)  # (B, U + 1)
    tgt_out.scatter_(1, lengths.to(targets.device)[:, None], EOS)
    return tgt_in, tgt_out


@dataclass
class JointLoss:
    """Summed losses of a batch; `total` is what training minimises."""

    total: torch.Tensor  # () ctc_weight * ctc + (1 - ctc_weight) * attention
    ctc: torch.Tensor  # () summed CTC negative log-likelihoods (intermediate mixed in)
    attention: torch.Tensor  # () summed label-smoothed cross-entropy, EOS included
    num_inf: torch.Tensor  # () utterances CTC cannot align (left out of `ctc`)


class SpeechJoint(SpeechCTC):
    """Joint CTC/attention (Kim et al., 2017): one encoder, a CTC head and an
    attention decoder.

    `forward` is `SpeechCTC`'s (CTC log-probabilities), so everything that decodes
    CTC works on a joint model too; `encode` prepares the decoder like
    `Seq2Seq.encode`, so the translation searches work on it as well.

    Args:
        decoder: an `AttentionDecoder` with memory size E.
        ctc_weight: the weight of CTC in `loss`; attention gets 1 - ctc_weight.
        label_smoothing: of the attention cross-entropy.
        specaugment, subsampler, encoder, head, dropout, inter_ctc_weight: as for
            `SpeechCTC`; the decoder attends over the encoder outputs without that
            dropout (as in translation; it has its own).
    """

    def __init__(
        self,
        specaugment: SpecAugment | None,
        subsampler: Subsampler,
        encoder: RNNEncoder,
        head: CTCHead,
        decoder: AttentionDecoder,
        ctc_weight: float,
        label_smoothing: float = 0.0,
        dropout: float = 0.0,
        inter_ctc_weight: float = 0.0,
    ):
        super().__init__(
            specaugment, subsampler, encoder, head, dropout, inter_ctc_weight
        )
        self.decoder = decoder
        self.ctc_weight = ctc_weight
        self.label_smoothing = label_smoothing

    def encode_both(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Memory, DecoderState]:
        """feats (B, T, F), lengths (B,) -> CTC log_probs (B, T', V), lengths (B,),
        the decoder's memory and initial state, from one encoder pass."""
        x, lengths, final = self.encoder_outputs(feats, lengths)  # (B, T', E)
        mem, state = self.decoder.prepare(x, lengths, final)
        return self.head(self.dropout(x)), lengths, mem, state

    def encode(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[Memory, DecoderState]:
        """feats (B, T, F), lengths (B,) -> attention memory, initial decoder state."""
        x, lengths, final = self.encoder_outputs(feats, lengths)  # (B, T', E)
        return self.decoder.prepare(x, lengths, final)

    def loss(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> JointLoss:
        """targets (B, U) without BOS/EOS, PAD-padded; target_lengths (B,)."""
        x, out_lengths, final, mid = self._training_encoder(feats, lengths)
        mem, state = self.decoder.prepare(x, out_lengths, final)
        ctc, num_inf = self._ctc(x, mid, out_lengths, targets, target_lengths)
        tgt_in, tgt_out = decoder_targets(targets, target_lengths)
        a, _ = self.decoder(tgt_in, state, mem)  # (B, U + 1, H)
        att = output_loss(self.decoder, a, tgt_out, self.label_smoothing)
        total = self.ctc_weight * ctc + (1.0 - self.ctc_weight) * att
        return JointLoss(total, ctc, att, num_inf)
