"""An LSTM language model: embeddings, stacked LSTM, (tied) output layer.

It is trained on a continuous token stream with truncated BPTT (`s2s.train.lm_task`)
and serves shallow fusion in every beam search (`s2s.decode.fusion`), which calls
`init_state` and `step` only.

Shapes: B (or N, flattened beams) rows, T steps, E embedding size, H hidden size,
L layers, V vocabulary. A state is (h, c), each (N, L, H): the batch comes first so
that searches reorder states with `index_select(0, ...)` like any other tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from s2s.models.cpu_kernels import cpu_autocast_cast
from s2s.models.dropout import Dropout

__all__ = ["LSTMLM", "LMState"]

LMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (N, L, H)


class LSTMLM(nn.Module):
    """Next-token model over a vocabulary of `vocab_size` ids.

    Args:
        vocab_size: V.
        emb_dim: E, token embedding size.
        hidden_size: H, LSTM size.
        layers: L, stacked LSTM layers.
        dropout: on embeddings, between LSTM layers and on the LSTM output.
        tie: the output layer shares the embedding matrix (a projection H -> E is
            added when they differ).
        padding_idx: the pad id (its embedding stays zero).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        hidden_size: int,
        layers: int,
        dropout: float,
        tie: bool,
        padding_idx: int = 0,
    ):
        super().__init__()
        self.hidden_size, self.layers = hidden_size, layers
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=padding_idx)
        self.dropout = Dropout(dropout)
        self.lstm = nn.LSTM(
            emb_dim,
            hidden_size,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        out_dim = hidden_size
        self.out_proj = None
        if tie and emb_dim != hidden_size:
            self.out_proj = nn.Linear(hidden_size, emb_dim, bias=False)
            out_dim = emb_dim
        self.output = nn.Linear(out_dim, vocab_size)
        if tie:
            self.output.weight = self.embed.weight

    def init_state(self, batch_size: int, device: torch.device | str) -> LMState:
        """The zero state: (h, c), each (N, L, H)."""
        shape = (batch_size, self.layers, self.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(
        self, tokens: torch.Tensor, state: LMState
    ) -> tuple[torch.Tensor, LMState]:
        """tokens (B, T), state -> logits (B, T, V), state after the last step."""
        x = self.dropout(self.embed(tokens))  # (B, T, E)
        h0, c0 = (s.transpose(0, 1).contiguous() for s in state)  # (L, B, H)
        x, h0, c0 = cpu_autocast_cast(x, h0, c0)
        y, (h, c) = self.lstm(x, (h0, c0))  # y: (B, T, H)
        y = self.dropout(y)
        if self.out_proj is not None:
            y = self.out_proj(y)  # (B, T, E)
        logits = self.output(y)  # (B, T, V)
        return logits, (h.transpose(0, 1), c.transpose(0, 1))  # (B, L, H) each

    def step(
        self, tokens: torch.Tensor, state: LMState
    ) -> tuple[torch.Tensor, LMState]:
        """One step for search: tokens (N,) -> log-probs (N, V) in float32, state."""
        logits, state = self(tokens[:, None], state)  # (N, 1, V)
        return torch.log_softmax(logits[:, 0].float(), dim=-1), state
