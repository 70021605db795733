"""Bidirectional LSTM encoder over padded batches of sequences.

Shapes: B batch, S source steps, F input features, H per-direction hidden size.
Text feeds it embeddings; speech feeds it subsampled filterbank frames. It neither
knows nor cares which.

Each direction reads only the real steps of a sequence. On a GPU the batch goes
through cuDNN as a packed sequence. On the CPU a packed LSTM runs step by step
with a growing autograd graph, while a padded one runs as a fused oneDNN kernel
(`benchmarks/encoder_paths.py`, fwd + bwd of 1,800-token batches on 2 threads:
1.20x on this project's AMD EPYC, 1.45x on a Xeon). So on the CPU
`s2s.models.cpu_kernels.fused_bilstm` runs each layer and direction on padded
steps, with the backward direction reading every sequence reversed within its own
length (the padding stays at the end, where it cannot reach the real steps'
outputs); where this torch lacks the private API it uses, the packed path runs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from s2s.models.cpu_kernels import (
    cpu_autocast_cast,
    fused_bilstm,
    fused_bilstm_available,
)
from s2s.models.dropout import Dropout

__all__ = ["RNNEncoder"]


class RNNEncoder(nn.Module):
    """`(x, lengths) -> (outputs, lengths, final)`.

    Args:
        input_size: F, features per input step.
        hidden_size: H, LSTM units per direction; outputs have 2H features.
        num_layers: stacked bidirectional layers.
        dropout: applied to the input and between layers.

    Returns:
        outputs: (B, S, 2H), zero past each length.
        lengths: (B,), unchanged.
        final: h of the last layer (B, 2H): the forward and backward directions'
            final states side by side.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0
    ):
        super().__init__()
        self.output_size = 2 * hidden_size
        self.dropout = Dropout(dropout)
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        (x,) = cpu_autocast_cast(self.dropout(x))  # (B, S, F)
        if x.device.type == "cpu" and fused_bilstm_available(self.lstm):
            out, final, _ = fused_bilstm(self.lstm, x, lengths.cpu(), self.training)
            return out, lengths, final
        # cuDNN, and the int8 LSTM of decoding (no weights to hand to oneDNN)
        packed = pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, (h, _) = self.lstm(packed)  # h: (layers * 2, B, H)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        return out, lengths, torch.cat([h[-2], h[-1]], dim=-1)

    def forward_tapped(
        self, x: torch.Tensor, lengths: torch.Tensor, layer: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """`forward`'s outputs, lengths and final state, and the outputs of layer
        `layer` (1 <= layer < num_layers), (B, S, 2H): for intermediate CTC. Always
        the fused path (on a GPU too: cuDNN's multi-layer call has no middle)."""
        if not 1 <= layer < self.lstm.num_layers:
            raise ValueError(f"layer {layer} of {self.lstm.num_layers}")
        if not fused_bilstm_available(self.lstm):
            raise ValueError("intermediate outputs need torch's fused LSTM call")
        (x,) = cpu_autocast_cast(self.dropout(x))  # (B, S, F)
        out, final, mid = fused_bilstm(self.lstm, x, lengths, self.training, layer)
        return out, lengths, final, mid
