"""Bidirectional LSTM encoder over padded batches of sequences.

Shapes: B batch, S source steps, F input features, H per-direction hidden size.
Text feeds it embeddings; speech feeds it subsampled filterbank frames. It neither
knows nor cares which.

Each direction reads only the real steps of a sequence. On a GPU the batch goes
through cuDNN as a packed sequence. On the CPU a packed LSTM runs step by step
with a growing autograd graph, while a padded one runs as a fused oneDNN kernel
(`benchmarks/encoder_paths.py`, fwd + bwd of 1,800-token batches on 2 threads:
1.20x on this project's AMD EPYC, 1.45x on a Xeon). So `_forward_padded`
runs each layer and direction on padded steps, with the backward direction reading
every sequence reversed within its own length (the padding stays at the end, where
it cannot reach the real steps' outputs).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from s2s.models.dropout import Dropout, dropout

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
        if x.device.type == "cpu" and type(self.lstm) is nn.LSTM:
            out, final = self._forward_padded(x, lengths.cpu())
            return out, lengths, final
        # cuDNN, and the int8 LSTM of decoding (no weights to hand to oneDNN)
        packed = pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, (h, _) = self.lstm(packed)  # h: (layers * 2, B, H)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        return out, lengths, torch.cat([h[-2], h[-1]], dim=-1)

    def _forward_padded(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, S, F), lengths (B,) -> outputs (B, S, 2H), final (B, 2H), equal to
        the packed path's: one fused call per layer and direction, nn.LSTM's own
        weights and its dropout between layers."""
        B, S, _ = x.shape
        lstm, H = self.lstm, self.lstm.hidden_size
        steps = torch.arange(S)
        real = steps < lengths[:, None]  # (B, S)
        # Row of x.view(B*S, F) that step t of reversed sequence b reads: its real
        # steps backwards, then its padding where it is.
        rev = torch.where(real, lengths[:, None] - 1 - steps, steps)
        rev = (rev + S * torch.arange(B)[:, None]).view(-1)

        def flip(t: torch.Tensor) -> torch.Tensor:  # (B, S, n) -> the same, reversed
            return t.reshape(B * S, -1).index_select(0, rev).view(B, S, -1)

        n = len(lstm._flat_weights) // (2 * lstm.num_layers)  # tensors per direction
        h0 = x.new_zeros(1, B, H)
        last = (torch.arange(B), lengths - 1)
        inp = x
        for layer in range(lstm.num_layers):
            if layer > 0:
                inp = dropout(inp, lstm.dropout, self.training)
            outs = []
            for d, seq in enumerate((inp, flip(inp))):
                w = lstm._flat_weights[(2 * layer + d) * n : (2 * layer + d + 1) * n]
                out, _, _ = torch._VF.lstm(
                    seq, (h0, h0), w, lstm.bias, 1, 0.0, self.training, False, True
                )
                outs.append(out)  # (B, S, H); the backward one in reversed time
            fwd, bwd = outs
            inp = torch.cat([fwd, flip(bwd)], dim=-1)  # (B, S, 2H)
        final = torch.cat([fwd[last], bwd[last]], dim=-1)  # (B, 2H)
        return inp * real[..., None].to(inp.dtype), final
