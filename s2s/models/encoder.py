"""Bidirectional LSTM encoder over packed sequences.

Shapes: B batch, S source steps, F input features, H per-direction hidden size.
Text feeds it embeddings; speech feeds it subsampled filterbank frames. It neither
knows nor cares which.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["RNNEncoder", "cpu_autocast_cast"]


def cpu_autocast_cast(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Under CPU autocast, cast LSTM inputs and states to the autocast dtype.

    oneDNN's LSTM under CPU autocast rejects fp32 inputs ("could not create a
    primitive descriptor"), while CUDA autocast casts them itself.
    """
    if not xs or xs[0].device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return xs
    dtype = torch.get_autocast_dtype("cpu")
    return tuple(x.to(dtype) for x in xs)


class RNNEncoder(nn.Module):
    """`(x, lengths) -> (outputs, lengths, (h, c))`.

    Args:
        input_size: F, features per input step.
        hidden_size: H, LSTM units per direction; outputs have 2H features.
        num_layers: stacked bidirectional layers.
        dropout: applied to the input and between layers.

    Returns:
        outputs: (B, S, 2H), zero past each length.
        lengths: (B,), unchanged.
        final: h and c of the last layer, each (B, 2H): forward and backward
            directions' final states side by side.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0
    ):
        super().__init__()
        self.output_size = 2 * hidden_size
        self.dropout = nn.Dropout(dropout)
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
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        total = x.size(1)
        (x,) = cpu_autocast_cast(self.dropout(x))  # (B, S, F)
        packed = pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, (h, c) = self.lstm(packed)  # h, c: (layers * 2, B, H)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=total)
        # Last layer's two directions side by side: (B, 2H).
        h_last = torch.cat([h[-2], h[-1]], dim=-1)
        c_last = torch.cat([c[-2], c[-1]], dim=-1)
        return out, lengths, (h_last, c_last)
