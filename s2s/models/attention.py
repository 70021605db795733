"""Luong (dot, general) and Bahdanau (mlp) attention.

Shapes: B batch, T query steps, S memory steps, Q query size, E memory size.
Keys are projected once per sentence (`project_keys`); each decoder step then costs
one batched product with the query.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Attention"]


class Attention(nn.Module):
    """Scores queries against a memory and returns the attention-weighted context.

    Args:
        kind: "dot" (q . m, needs Q == E), "general" (q . W m) or "mlp"
            (v . tanh(W m + U q)).
        query_size: Q.
        memory_size: E.
    """

    def __init__(self, kind: str, query_size: int, memory_size: int):
        super().__init__()
        if kind not in ("dot", "general", "mlp"):
            raise ValueError(f"unknown attention {kind!r}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(
                f"dot attention needs Q == E, got {query_size}, {memory_size}"
            )
        self.kind = kind
        if kind == "general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)
        elif kind == "mlp":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)
            self.query_proj = nn.Linear(query_size, query_size, bias=True)
            self.v = nn.Linear(query_size, 1, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, S, E) -> keys (B, S, Q); done once per sentence."""
        return memory if self.kind == "dot" else self.key_proj(memory)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, Q), keys (B, S, Q), memory (B, S, E), mask (B, S) True on
        real steps -> context (B, T, E), weights (B, T, S)."""
        if self.kind == "mlp":
            q = self.query_proj(query)  # (B, T, Q)
            hidden = torch.tanh(keys.unsqueeze(1) + q.unsqueeze(2))  # (B, T, S, Q)
            scores = self.v(hidden).squeeze(-1)  # (B, T, S)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))  # (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T, S)
        context = torch.bmm(weights.to(memory.dtype), memory)  # (B, T, E)
        return context, weights
