"""Dropout with a cheaper mask on the CPU than PyTorch's.

On the CPU `F.dropout` draws its mask with `bernoulli_`, a float per element, then
divides and multiplies: `benchmarks/dropout.py` times it against this module. Here
the mask comes from 64-bit integers of the same generator (`random_`, uniform over
[0, 2^63)), read as two 31-bit words each: an element is kept when its word is at
least round(p * 2^31), so it is dropped with probability p to within 2^-31. The
mask is kept as booleans for the backward pass (one byte per element, not four).

The CPU generator drives it, so `torch.manual_seed` and the RNG states in a
checkpoint make it repeat exactly, as they do `F.dropout`. On other devices
(cuDNN's fused kernel) it is `F.dropout`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Dropout", "dropout", "keep_mask"]

_WORD = 2**31  # each 31-bit word is uniform over [0, 2^31)


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """Booleans of `shape`, each True with probability 1 - p, independently."""
    n = math.prod(shape)
    words = torch.empty((n + 1) // 2, dtype=torch.int64).random_()
    # Each int64 is uniform over [0, 2^63): its low 32 bits are uniform, its high
    # 32 bits have a zero top bit. Clearing bit 31 of both words leaves two
    # independent uniform 31-bit numbers, whatever the byte order.
    words = words.view(torch.int32).bitwise_and_(_WORD - 1)
    return (words[:n] >= round(p * _WORD)).view(shape)


class _CPUDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float):
        keep = keep_mask(x.shape, p)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return torch.mul(x, keep).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return torch.mul(grad, keep).mul_(ctx.scale), None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout(x, p, training)`, with the cheaper mask on the CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, True)
    return _CPUDropout.apply(x, p)


class Dropout(nn.Dropout):
    """`nn.Dropout` (same argument, repr and no state) through `dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
