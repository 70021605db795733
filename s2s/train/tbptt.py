"""Forward and backward of one batch, whole or with truncated BPTT.

With `tbptt_steps=k` the target runs in chunks of k steps. The decoder state is
carried from chunk to chunk and detached at each border, and every chunk's gradient
is accumulated: the caller takes ONE optimizer step after all chunks. (Zeroing the
gradients per chunk and stepping once would train only on the last chunk.)

The encoder runs once per batch. Its outputs (attention memory and initial decoder
state) are cut from the graph as leaves; each chunk's backward stops there and adds
into the leaves' `.grad`, and one final backward sends the summed gradient through
the encoder. With k >= the target length this equals the untruncated gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch

from s2s.models.decoder import DecoderState, Memory
from s2s.models.seq2seq import Seq2Seq

__all__ = ["forward_backward"]

Backward = Callable[[torch.Tensor], None]


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().requires_grad_(x.requires_grad)


def forward_backward(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lens: torch.Tensor,
    tgt_in: torch.Tensor,
    tgt_out: torch.Tensor,
    scale: float,
    tbptt_steps: int = 0,
    backward: Backward = torch.Tensor.backward,
    autocast=None,
) -> float:
    """Run the batch, call `backward(loss * scale)`, return the summed loss.

    `backward` lets the trainer put a gradient scaler in between; `autocast` is the
    precision context the forward passes run under.
    """
    amp = autocast if autocast is not None else nullcontext()
    T = tgt_in.size(1)
    if tbptt_steps <= 0:
        with amp:
            loss = model.loss(src, src_lens, tgt_in, tgt_out)
        backward(loss * scale)
        return float(loss.detach())

    with amp:
        mem, state0 = model.encode(src, src_lens)
    roots = [mem.keys, mem.values, state0.h, state0.c]
    # Leaves: chunk graphs end here; `keys is values` for dot attention, so keep
    # them as separate leaves and let the final backward sum both.
    leaves = [_leaf(x) for x in roots]
    mem_l = Memory(leaves[0], leaves[1], mem.mask)
    state = DecoderState(leaves[2], leaves[3], state0.feed, state0.attn)
    total = 0.0
    for a in range(0, T, tbptt_steps):
        b = min(a + tbptt_steps, T)
        with amp:
            out, state = model.decoder(tgt_in[:, a:b], state, mem_l)
            loss = model.output_loss(out, tgt_out[:, a:b])
        backward(loss * scale)
        total += float(loss.detach())
        state = state.detach()
    pairs = [
        (r, leaf.grad)
        for r, leaf in zip(roots, leaves, strict=True)
        if leaf.grad is not None
    ]
    if pairs:
        torch.autograd.backward([r for r, _ in pairs], [g for _, g in pairs])
    return total
