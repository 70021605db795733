"""Summed label-smoothed cross-entropy, the training loss of every decoder.

Shapes: N target positions, V vocabulary. With smoothing eps, a position with
target y costs

    (1 - eps) * (lse - x_y) + eps * (lse - mean_v x_v),    lse = log sum_v exp(x_v)

(the cross-entropy against (1 - eps) on y and eps / V everywhere, as PyTorch's
`label_smoothing`), and its gradient is softmax(x) - eps / V - (1 - eps) onehot(y).

On the CPU the output layer's N x V logits are the largest tensors of a step (60 MB
for 2,000 tokens over 8k pieces), and `F.cross_entropy` with label smoothing makes
several more of them (log-probabilities, zeroed gradient buffers, their sum). Here
the forward keeps softmax(x) (one fused kernel) instead of the logits, and the
backward scales it into the gradient in one pass: one exp pass per step, not two.
On a GPU the loss is `F.cross_entropy`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from s2s.data.vocab import PAD

__all__ = ["token_loss"]


def token_loss(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float
) -> torch.Tensor:
    """Summed label-smoothed cross-entropy over non-pad targets.

    logits (..., V) in any precision, targets (...); the softmax runs in fp32.
    """
    x = logits.reshape(-1, logits.size(-1))
    y = targets.reshape(-1)
    if x.device.type == "cpu":
        return _SmoothedNLL.apply(x, y, label_smoothing)
    return F.cross_entropy(
        x.float(), y, ignore_index=PAD, label_smoothing=label_smoothing, reduction="sum"
    )


class _SmoothedNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, y: torch.Tensor, eps: float):
        x = logits.float()  # (N, V)
        keep = y != PAD  # (N,)
        prob = torch.softmax(x, dim=-1)  # (N, V), kept for the backward
        # The largest probability is exp(0) / sum_v exp(x_v - max), at least 1 / V:
        # its log gives the log-sum-exp without another pass over exp.
        lse = x.amax(dim=-1) - prob.amax(dim=-1).log()  # (N,)
        loss = lse - (1 - eps) * x.gather(1, y[:, None])[:, 0]
        if eps:
            loss = loss - eps * x.mean(dim=-1)
        ctx.save_for_backward(prob, y, keep)
        ctx.eps, ctx.dtype = eps, logits.dtype
        return loss[keep].sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        prob, y, keep = ctx.saved_tensors
        eps, V = ctx.eps, prob.size(-1)
        g = grad * keep  # (N,): 0 on padding
        # grad * (softmax(x) - eps / V) in one pass over the saved probabilities.
        out = torch.addcmul((-eps / V) * g[:, None], prob, g[:, None])
        out.scatter_add_(1, y[:, None], (-(1 - eps) * g)[:, None])
        return out.to(ctx.dtype), None, None
