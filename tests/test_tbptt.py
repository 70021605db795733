"""Truncated BPTT: all chunks' gradients count, and the state crosses borders."""

import torch

from s2s.config import ModelConfig
from s2s.data.vocab import BOS
from s2s.models.seq2seq import build_model
from s2s.train.tbptt import forward_backward

V = 19


def _setup(input_feed=False):
    torch.manual_seed(0)
    cfg = ModelConfig(
        emb_dim=8,
        enc_hidden_size=6,
        hidden_size=12,
        dropout=0.0,
        input_feed=input_feed,
        param_init=0.0,
    )
    model = build_model(cfg, V, V)
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, V, (3, 6), generator=g)
    lens = torch.tensor([6, 4, 5])
    tgt = torch.randint(4, V, (3, 9), generator=g)
    tgt[1, 7:] = 0  # padding
    tgt_in = torch.cat([torch.full((3, 1), BOS), tgt[:, :-1]], dim=1)
    return model, (src, lens, tgt_in, tgt)


def _grads(model, batch, k):
    model.zero_grad()
    loss = forward_backward(model, *batch, scale=1.0, tbptt_steps=k)
    return loss, {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


def test_one_chunk_equals_untruncated():
    for feed in (False, True):
        model, batch = _setup(feed)
        loss0, g0 = _grads(model, batch, 0)
        loss9, g9 = _grads(model, batch, 9)
        assert abs(loss0 - loss9) < 1e-4
        assert g0.keys() == g9.keys()
        for n in g0:
            torch.testing.assert_close(g9[n], g0[n], atol=1e-6, rtol=1e-4, msg=n)


def test_small_chunks_accumulate_every_chunk():
    model, batch = _setup()
    loss0, g0 = _grads(model, batch, 0)
    loss2, g2 = _grads(model, batch, 2)
    # The forward pass is unchanged by detaching: same loss, so the decoder state
    # did cross every chunk border (a reset state would change the loss).
    assert abs(loss0 - loss2) < 1e-4
    # Parameters that act per step get the sum over ALL chunks, exactly as untruncated
    # (training only the last chunk would give a different, smaller gradient).
    for n in (
        "decoder.output.bias",
        "decoder.combine.weight",
        "decoder.out_proj.weight",
    ):
        torch.testing.assert_close(g2[n], g0[n], atol=1e-6, rtol=1e-4, msg=n)
    # Every parameter receives gradient, encoder included...
    assert all(g.abs().sum() > 0 for g in g2.values())
    # ...but recurrent weights see truncated paths, so they differ.
    assert not torch.allclose(
        g2["decoder.lstm.weight_hh_l0"], g0["decoder.lstm.weight_hh_l0"]
    )


def test_state_crosses_chunk_borders():
    """Changing a target token in chunk 1 changes chunk 2's loss."""
    model, (src, lens, tgt_in, tgt) = _setup()
    model.eval()
    with torch.no_grad():
        base = model(src, lens, tgt_in).log_softmax(-1)
        tgt_in2 = tgt_in.clone()
        tgt_in2[:, 1] = (tgt_in2[:, 1] + 1 - 4) % (V - 4) + 4
        moved = model(src, lens, tgt_in2).log_softmax(-1)
    assert not torch.allclose(base[:, 4:], moved[:, 4:])
    # Only steps 4.. count in the loss; the changed input sits in chunk [0, 2).
    late = tgt.clone()
    late[:, :4] = 0
    a = forward_backward(model, src, lens, tgt_in, late, 1.0, tbptt_steps=2)
    b = forward_backward(model, src, lens, tgt_in2, late, 1.0, tbptt_steps=2)
    assert abs(a - b) > 1e-4
