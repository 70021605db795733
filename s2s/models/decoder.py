"""Attention LSTM decoder: one `step` for search, one `forward` for training.

Shapes: B batch, T target steps, S memory steps, E memory size, H hidden size,
V vocabulary. Per step (Luong et al., 2015):

    x_t  = [emb(y_{t-1}); a_{t-1} if input feeding]
    s_t  = LSTM(x_t, s_{t-1})
    c_t  = attention(s_t, memory)
    a_t  = tanh(W [c_t; s_t])              the attentional vector
    p_t  = softmax(W_out a_t)

Without input feeding x_t does not depend on a_{t-1}, so `forward` runs the whole
target through one (cuDNN) LSTM call and attends for all steps in one batched
product: the fast training path. With input feeding it loops over the steps,
running the LSTM weights as cells (`_forward_fed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2s.data.vocab import PAD
from s2s.models.attention import Attention
from s2s.models.cpu_kernels import cpu_autocast_cast
from s2s.models.dropout import Dropout, dropout
from s2s.models.loss import token_loss

__all__ = ["AttentionDecoder", "DecoderState", "Memory", "output_loss"]


def output_loss(
    decoder: AttentionDecoder,
    a: torch.Tensor,
    tgt_out: torch.Tensor,
    label_smoothing: float,
) -> torch.Tensor:
    """Attentional vectors a (B, T, H) -> summed loss against tgt_out (B, T).

    Only real target positions go through the output layer: over a large
    vocabulary it is the costliest layer, and padding would waste it. On the CPU
    it runs over blocks of positions whose logits take at most 16 MB: the C
    library hands blocks that large out of memory it keeps (`keep_freed_memory`),
    while a whole batch's logits (60 MB for 2,000 tokens over 8k pieces) would be
    fresh pages every step, each one faulted in and zeroed by the kernel.
    """
    keep = tgt_out != PAD  # (B, T)
    a, y = a[keep], tgt_out[keep]  # (N, H), (N,)
    rows = a.size(0) if a.is_cuda else max(64, (4 << 20) // decoder.output.out_features)
    loss = a.new_zeros((), dtype=torch.float32)
    for a_block, y_block in zip(a.split(rows), y.split(rows), strict=True):
        loss = loss + token_loss(decoder.logits(a_block), y_block, label_smoothing)
    return loss


def _lstm_cell(
    gates: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from summed gate inputs (B, 4H) in nn.LSTM's order i, f, g, o."""
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@dataclass
class Memory:
    """Encoder outputs prepared for attention, computed once per sentence."""

    keys: torch.Tensor  # (B, S, Q) projected keys
    values: torch.Tensor  # (B, S, E) encoder outputs
    mask: torch.Tensor  # (B, S) True on real steps

    def select(self, idx: torch.Tensor) -> Memory:
        return Memory(self.keys[idx], self.values[idx], self.mask[idx])


@dataclass
class DecoderState:
    h: torch.Tensor  # (L, B, H)
    c: torch.Tensor  # (L, B, H)
    feed: torch.Tensor  # (B, H) previous attentional vector (zeros without feeding)
    attn: torch.Tensor | None = None  # (B, S) previous weights (location attention)

    def select(self, idx: torch.Tensor) -> DecoderState:
        attn = None if self.attn is None else self.attn[idx]
        return DecoderState(self.h[:, idx], self.c[:, idx], self.feed[idx], attn)

    def detach(self) -> DecoderState:
        attn = None if self.attn is None else self.attn.detach()
        return DecoderState(self.h.detach(), self.c.detach(), self.feed.detach(), attn)


class AttentionDecoder(nn.Module):
    """LSTM decoder with attention over an encoder memory.

    Args:
        vocab_size: V.
        emb_dim: target embedding size.
        hidden_size: H, decoder LSTM and attentional vector size.
        memory_size: E, encoder output size.
        num_layers: stacked LSTM layers.
        attention: "dot", "general", "mlp" or "location".
        input_feed: feed a_{t-1} into the LSTM input.
        dropout: on embeddings, between layers and on a_t.
        tie_embeddings: output layer shares the embedding matrix (a projection
            H -> emb_dim is added when they differ).
        padding_idx: the pad token id.
        att_conv_channels, att_conv_width: location attention's convolution
            (`Attention`).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        hidden_size: int,
        memory_size: int,
        num_layers: int,
        attention: str,
        input_feed: bool,
        dropout: float,
        tie_embeddings: bool,
        padding_idx: int = 0,
        att_conv_channels: int = 10,
        att_conv_width: int = 50,
    ):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.input_feed = input_feed
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=padding_idx)
        self.dropout = Dropout(dropout)
        # Bridge: the encoder's final state -> initial (h, c) of every layer.
        self.bridge = nn.Linear(memory_size, 2 * num_layers * hidden_size)
        self.lstm = nn.LSTM(
            emb_dim + (hidden_size if input_feed else 0),
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = Attention(
            attention, hidden_size, memory_size, att_conv_channels, att_conv_width
        )
        self.combine = nn.Linear(memory_size + hidden_size, hidden_size, bias=False)
        out_dim = hidden_size
        self.out_proj = None
        if tie_embeddings and emb_dim != hidden_size:
            self.out_proj = nn.Linear(hidden_size, emb_dim, bias=False)
            out_dim = emb_dim
        self.output = nn.Linear(out_dim, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embed.weight

    def prepare(
        self, memory: torch.Tensor, lengths: torch.Tensor, final: torch.Tensor
    ) -> tuple[Memory, DecoderState]:
        """memory (B, S, E), lengths (B,), final (B, E) encoder summary ->
        attention memory and the initial state."""
        mask = (
            torch.arange(memory.size(1), device=memory.device)[None, :]
            < lengths.to(memory.device)[:, None]
        )  # (B, S)
        B = memory.size(0)
        hc = torch.tanh(self.bridge(final))  # (B, 2 * L * H)
        h, c = hc.view(B, 2, self.num_layers, self.hidden_size).permute(1, 2, 0, 3)
        feed = memory.new_zeros(B, self.hidden_size)
        mem = Memory(self.attention.project_keys(memory), memory, mask)
        attn = None
        if self.attention.uses_previous:
            attn = self.attention.initial_weights(mask)
        return mem, DecoderState(h.contiguous(), c.contiguous(), feed, attn)

    def _attend(
        self, s: torch.Tensor, mem: Memory, previous: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """s (B, T, H), previous (B, T, S) weights (location attention) ->
        attentional vectors a (B, T, H), weights (B, T, S)."""
        context, weights = self.attention(s, mem.keys, mem.values, mem.mask, previous)
        a = torch.tanh(self.combine(torch.cat([context, s], dim=-1)))  # (B, T, H)
        return a, weights

    def forward(
        self, tokens: torch.Tensor, state: DecoderState, mem: Memory
    ) -> tuple[torch.Tensor, DecoderState]:
        """Teacher forcing: tokens (B, T) -> attentional vectors (B, T, H), state."""
        x = self.dropout(self.embed(tokens))  # (B, T, emb)
        if not self.input_feed:
            x, h0, c0 = cpu_autocast_cast(x, state.h, state.c)
            s, (h, c) = self.lstm(x, (h0, c0))  # s: (B, T, H)
            if not self.attention.uses_previous:
                a, _ = self._attend(s, mem)
                return a, DecoderState(h, c, a[:, -1])
            # Location attention: the LSTM ran at once, attention goes step by step.
            prev, outs = state.attn, []
            for t in range(s.size(1)):
                a, w = self._attend(s[:, t : t + 1], mem, prev.unsqueeze(1))
                prev = w[:, 0]
                outs.append(a)
            a = torch.cat(outs, dim=1)
            return a, DecoderState(h, c, a[:, -1], prev)
        return self._forward_fed(x, state, mem)

    def _forward_fed(
        self, x: torch.Tensor, state: DecoderState, mem: Memory
    ) -> tuple[torch.Tensor, DecoderState]:
        """Teacher forcing with input feeding: x (B, T, emb) -> a (B, T, H), state.

        x_t holds a_{t-1}, so this loops over t, running the LSTM's own weights
        (the parameters `step` runs through nn.LSTM) as cells (`fed_cells`).
        """
        x_gates, weights = self.fed_cells(x)
        h, c, feed = list(state.h.unbind(0)), list(state.c.unbind(0)), state.feed
        prev, outs = state.attn, []
        for t in range(x.size(1)):
            top = self.fed_step(feed, h, c, x_gates[:, t], weights)  # (B, H)
            a, w = self._attend(  # (B, 1, H), (B, 1, S)
                top.unsqueeze(1), mem, None if prev is None else prev.unsqueeze(1)
            )
            feed = a[:, 0]
            if prev is not None:
                prev = w[:, 0]
            outs.append(a)
        return torch.cat(outs, dim=1), DecoderState(
            torch.stack(h), torch.stack(c), feed, prev
        )

    def fed_cells(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """The LSTM's weights as cells for input feeding: x (B, T, emb) ->
        x_gates (B, T, 4H) and per layer a ([input; hidden] -> gates) matrix
        (4H, in + H) and bias (4H,). The first layer's product with the embeddings
        does not depend on a_{t-1}, so it is one matrix product for all T steps
        (x_gates, bias included), and a step multiplies only [a_{t-1}; h] by one
        stacked matrix per layer."""
        lstm, emb = self.lstm, x.size(-1)
        weights = []
        for k in range(self.num_layers):
            w_ih = getattr(lstm, f"weight_ih_l{k}")
            w_hh = getattr(lstm, f"weight_hh_l{k}")
            bias = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
            if k == 0:
                x_gates = F.linear(x, w_ih[:, :emb], bias)  # (B, T, 4H)
                w_ih = w_ih[:, emb:]  # the a_{t-1} columns
            weights.append((torch.cat([w_ih, w_hh], dim=1), bias))
        return x_gates, weights

    def fed_step(
        self,
        feed: torch.Tensor,
        h: list[torch.Tensor],
        c: list[torch.Tensor],
        x_gates: torch.Tensor,
        weights: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        """One step of the stacked cells: feed a_{t-1} (B, H), per layer h and c
        (B, H) (updated in place in the lists), x_gates (B, 4H) of this step ->
        the top layer's h (B, H)."""
        inp = feed
        for k, (w, bias) in enumerate(weights):
            if k > 0:  # nn.LSTM's dropout between layers
                inp = dropout(inp, self.lstm.dropout, self.training)
            hidden = torch.cat([inp, h[k]], dim=-1)  # (B, in + H)
            if k == 0:
                gates = torch.addmm(x_gates, hidden, w.t())  # (B, 4H)
            else:
                gates = F.linear(hidden, w, bias)
            h[k], c[k] = _lstm_cell(gates, c[k])
            inp = h[k]
        return inp

    def logits(self, a: torch.Tensor) -> torch.Tensor:
        """Attentional vectors (..., H) -> unnormalised scores (..., V)."""
        a = self.dropout(a)
        if self.out_proj is not None:
            a = self.out_proj(a)
        return self.output(a)

    def step(
        self, tokens: torch.Tensor, state: DecoderState, mem: Memory
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One step for search: tokens (N,) -> log-probs (N, V), state, attn (N, S).

        N is the memory's B rows or a multiple k of them: beam search keeps one
        memory row per sentence, and rows n*k ... n*k + k - 1 (its k beams) attend
        over memory row n as k query steps of one product, so the memory is
        neither copied nor read once per beam.
        """
        x = self.embed(tokens).unsqueeze(1)  # (N, 1, emb)
        if self.input_feed:
            x = torch.cat([x, state.feed.unsqueeze(1)], dim=-1)
        x, h0, c0 = cpu_autocast_cast(x, state.h, state.c)
        s, (h, c) = self.lstm(x, (h0, c0))  # (N, 1, H)
        N, B = s.size(0), mem.values.size(0)
        if N % B:
            raise ValueError(f"{N} decoder rows for {B} memory rows")
        prev = None
        if state.attn is not None:
            prev = state.attn.view(B, N // B, -1)  # (B, k, S)
        a, weights = self._attend(s.view(B, N // B, -1), mem, prev)  # (B, k, H|S)
        a, weights = a.reshape(N, -1), weights.reshape(N, -1)
        logp = torch.log_softmax(self.logits(a).float(), dim=-1)  # (N, V)
        attn = weights if state.attn is not None else None
        return logp, DecoderState(h, c, a, attn), weights
