"""CPU speed kernels, kept apart from the models' readable code.

- `fused_bilstm`: a bidirectional `nn.LSTM` over padded steps through
  `torch._VF.lstm`, one fused oneDNN call per layer and direction, instead of a
  packed sequence, which the CPU runs step by step (`benchmarks/encoder_paths.py`:
  fwd + bwd 1.20x on an AMD EPYC, 1.45x on a Xeon, 2 threads). It uses private
  torch API (`torch._VF.lstm`, `nn.LSTM._flat_weights`); `fused_bilstm_available`
  says whether this torch has it, and the encoder falls back to the packed path
  (`tests/test_model.py` checks both give the same outputs and gradients).
- `cpu_autocast_cast`: oneDNN's LSTM under CPU autocast wants its inputs in the
  autocast dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from s2s.models.dropout import dropout

__all__ = ["cpu_autocast_cast", "fused_bilstm", "fused_bilstm_available"]


def cpu_autocast_cast(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Under CPU autocast, cast LSTM inputs and states to the autocast dtype.

    oneDNN's LSTM under CPU autocast rejects fp32 inputs ("could not create a
    primitive descriptor"), while CUDA autocast casts them itself.
    """
    if not xs or xs[0].device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return xs
    dtype = torch.get_autocast_dtype("cpu")
    return tuple(x.to(dtype) for x in xs)


def fused_bilstm_available(lstm: nn.Module) -> bool:
    """Whether `fused_bilstm` can run `lstm`: a plain `nn.LSTM` (not the int8
    dynamic one of decoding, which has no weights to hand over) on a torch that
    has the private API it uses."""
    return (
        type(lstm) is nn.LSTM
        and hasattr(torch._VF, "lstm")
        and hasattr(lstm, "_flat_weights")
    )


def fused_bilstm(
    lstm: nn.LSTM,
    x: torch.Tensor,
    lengths: torch.Tensor,
    training: bool,
    tap: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A bidirectional, batch-first `nn.LSTM` over padded steps.

    x (B, S, F), lengths (B,) -> outputs (B, S, 2H), zero past each length, the
    last layer's final h (B, 2H), equal to the packed path's, and with `tap` = k
    > 0 the outputs of layer k (B, S, 2H), also zero past each length (else None):
    one fused call per layer and direction, nn.LSTM's own weights and its dropout
    between layers. Made for the CPU; it runs on a GPU too (intermediate CTC's
    `tap` needs it there).
    """
    B, S, _ = x.shape
    H = lstm.hidden_size
    lengths = lengths.to(x.device)
    steps = torch.arange(S, device=x.device)
    real = steps < lengths[:, None]  # (B, S)
    # Row of x.view(B*S, F) that step t of reversed sequence b reads: its real
    # steps backwards, then its padding where it is.
    rev = torch.where(real, lengths[:, None] - 1 - steps, steps)
    rev = (rev + S * torch.arange(B, device=x.device)[:, None]).view(-1)

    def flip(t: torch.Tensor) -> torch.Tensor:  # (B, S, n) -> the same, reversed
        return t.reshape(B * S, -1).index_select(0, rev).view(B, S, -1)

    n = len(lstm._flat_weights) // (2 * lstm.num_layers)  # tensors per direction
    h0 = x.new_zeros(1, B, H)
    last = (torch.arange(B, device=x.device), lengths - 1)
    mask = real[..., None]
    inp, tapped = x, None
    for layer in range(lstm.num_layers):
        if layer == tap and layer > 0:
            tapped = inp * mask.to(inp.dtype)
        if layer > 0:
            inp = dropout(inp, lstm.dropout, training)
        outs = []
        for d, seq in enumerate((inp, flip(inp))):
            w = lstm._flat_weights[(2 * layer + d) * n : (2 * layer + d + 1) * n]
            out, _, _ = torch._VF.lstm(
                seq, (h0, h0), w, lstm.bias, 1, 0.0, training, False, True
            )
            outs.append(out)  # (B, S, H); the backward one in reversed time
        fwd, bwd = outs
        inp = torch.cat([fwd, flip(bwd)], dim=-1)  # (B, S, 2H)
    final = torch.cat([fwd[last], bwd[last]], dim=-1)  # (B, 2H)
    return inp * mask.to(inp.dtype), final, tapped
