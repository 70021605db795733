"""Luong (dot, general), Bahdanau (mlp) and location-aware attention.

Shapes: B batch, T query steps, S memory steps, Q query size, E memory size, C
location channels.
Keys are projected once per sentence (`project_keys`); each decoder step then costs
one batched product with the query.

Location-aware attention (Chorowski et al., 2015; ESPnet's `location` for speech)
adds to Bahdanau's scores what a convolution over the previous step's weights
finds: v . tanh(W m_s + U q + F (conv(w_{t-1}))_s). The decoder then attends
step by step, each step knowing where the last one looked, which keeps it moving
along hundreds of audio frames instead of jumping.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Attention"]


class Attention(nn.Module):
    """Scores queries against a memory and returns the attention-weighted context.

    Args:
        kind: "dot" (q . m, needs Q == E), "general" (q . W m), "mlp"
            (v . tanh(W m + U q)) or "location" (mlp plus the convolved previous
            weights).
        query_size: Q.
        memory_size: E.
        conv_channels: C, location: the convolution's output channels.
        conv_width: location: the convolution reaches this many memory steps on
            each side (a kernel of 2 * conv_width + 1).
    """

    def __init__(
        self,
        kind: str,
        query_size: int,
        memory_size: int,
        conv_channels: int = 10,
        conv_width: int = 50,
    ):
        super().__init__()
        if kind not in ("dot", "general", "mlp", "location"):
            raise ValueError(f"unknown attention {kind!r}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(
                f"dot attention needs Q == E, got {query_size}, {memory_size}"
            )
        self.kind = kind
        if kind == "general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)
        elif kind in ("mlp", "location"):
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)
            self.query_proj = nn.Linear(query_size, query_size, bias=True)
            self.v = nn.Linear(query_size, 1, bias=False)
        if kind == "location":
            self.loc_conv = nn.Conv1d(
                1, conv_channels, 2 * conv_width + 1, padding=conv_width, bias=False
            )
            self.loc_proj = nn.Linear(conv_channels, query_size, bias=False)

    @property
    def uses_previous(self) -> bool:
        """Whether a step needs the previous step's weights (location)."""
        return self.kind == "location"

    @staticmethod
    def initial_weights(mask: torch.Tensor) -> torch.Tensor:
        """The 'previous' weights of the first step: uniform over the real steps
        of mask (B, S) (as ESPnet's location attention starts)."""
        w = mask.float()
        return w / w.sum(dim=1, keepdim=True).clamp(min=1.0)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, S, E) -> keys (B, S, Q); done once per sentence."""
        return memory if self.kind == "dot" else self.key_proj(memory)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, Q), keys (B, S, Q), memory (B, S, E), mask (B, S) True on
        real steps, previous (B, T, S) each query's previous weights (location
        only) -> context (B, T, E), weights (B, T, S)."""
        if self.kind in ("mlp", "location"):
            q = self.query_proj(query)  # (B, T, Q)
            energy = keys.unsqueeze(1) + q.unsqueeze(2)  # (B, T, S, Q)
            if self.kind == "location":
                B, T, S = previous.shape
                f = self.loc_conv(previous.reshape(B * T, 1, S).to(q.dtype))
                loc = self.loc_proj(f.transpose(1, 2))  # (B * T, S, Q)
                energy = energy + loc.view(B, T, S, -1)
            scores = self.v(torch.tanh(energy)).squeeze(-1)  # (B, T, S)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))  # (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T, S)
        context = torch.bmm(weights.to(memory.dtype), memory)  # (B, T, E)
        return context, weights
