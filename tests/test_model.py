import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from s2s.config import ModelConfig
from s2s.data.vocab import BOS, EOS
from s2s.models.encoder import RNNEncoder
from s2s.models.seq2seq import build_model

V = 23


def _model(**kw):
    torch.manual_seed(0)
    cfg = ModelConfig(emb_dim=8, enc_hidden_size=6, hidden_size=12, dropout=0.0, **kw)
    return build_model(cfg, V, V).eval()


def _batch(B=4, S=7, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (B, S), generator=g)
    lens = torch.randint(2, S + 1, (B,), generator=g)
    lens[0] = S
    for i, n in enumerate(lens):
        src[i, n - 1] = EOS
        src[i, n:] = 0
    tgt = torch.randint(4, V, (B, T), generator=g)
    tgt_in = torch.cat([torch.full((B, 1), BOS), tgt[:, :-1]], dim=1)
    return src, lens, tgt_in, tgt


def test_encoder_is_padding_invariant():
    torch.manual_seed(0)
    enc = RNNEncoder(input_size=5, hidden_size=4, num_layers=2).eval()
    x = torch.randn(3, 9, 5)
    lens = torch.tensor([9, 4, 6])
    out, _, h = enc(x, lens)
    assert out.shape == (3, 9, 8) and h.shape == (3, 8)
    for i, n in enumerate(lens.tolist()):
        one, _, h1 = enc(x[i : i + 1, :n], lens[i : i + 1])
        torch.testing.assert_close(out[i, :n], one[0])
        torch.testing.assert_close(h[i], h1[0])
        assert out[i, n:].abs().sum() == 0


def _packed_reference(enc: RNNEncoder, x, lens):
    """What nn.LSTM computes over a packed sequence: outputs and final h."""
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    out, (h, _) = enc.lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, torch.cat([h[-2], h[-1]], dim=-1)


@pytest.mark.parametrize("layers", [1, 3])
def test_padded_encoder_equals_packed_lstm(layers):
    """The CPU path (one fused call per layer and direction, backward direction
    reversed within each length) gives nn.LSTM's packed outputs, final states and
    gradients."""
    torch.manual_seed(1)
    enc = RNNEncoder(input_size=6, hidden_size=5, num_layers=layers).train()
    x = torch.randn(4, 7, 6, requires_grad=True)
    lens = torch.tensor([7, 3, 5, 1])
    out, _, h = enc(x, lens)
    ref_out, ref_h = _packed_reference(enc, x, lens)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h)
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum() + h.sum(), [x, *enc.parameters()])
    ref = torch.autograd.grad((ref_out * g).sum() + ref_h.sum(), [x, *enc.parameters()])
    for a, b in zip(grads, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_encoder_falls_back_to_the_packed_path(monkeypatch):
    """Without the private API of the fused kernel the encoder runs the packed
    (public) path, with the same outputs."""
    from s2s.models import cpu_kernels, encoder

    torch.manual_seed(2)
    enc = RNNEncoder(input_size=6, hidden_size=5, num_layers=2).eval()
    x, lens = torch.randn(3, 6, 6), torch.tensor([6, 2, 4])
    fused_out, _, fused_h = enc(x, lens)
    assert cpu_kernels.fused_bilstm_available(enc.lstm)
    monkeypatch.setattr(encoder, "fused_bilstm_available", lambda lstm: False)
    monkeypatch.setattr(encoder, "fused_bilstm", None)  # must not be called
    out, _, h = enc(x, lens)
    torch.testing.assert_close(out, fused_out)
    torch.testing.assert_close(h, fused_h)


def test_padded_encoder_dropout_between_layers():
    """Training with dropout: zeros past each length, and the same result again
    from the same seed."""
    enc = RNNEncoder(input_size=6, hidden_size=5, num_layers=2, dropout=0.5).train()
    x, lens = torch.randn(3, 6, 6), torch.tensor([6, 2, 4])
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(enc(x, lens))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    assert runs[0][0][1, 2:].abs().sum() == 0


@pytest.mark.parametrize("attention", ["dot", "general", "mlp", "location"])
@pytest.mark.parametrize(
    ("input_feed", "dec_layers"), [(False, 1), (True, 1), (True, 2)]
)
def test_teacher_forcing_equals_stepping(attention, input_feed, dec_layers):
    """Teacher forcing (one LSTM call, or with input feeding the LSTM's weights as
    cells) and the one-step path of search compute the same thing."""
    model = _model(
        attention=attention,
        input_feed=input_feed,
        dec_layers=dec_layers,
        tie_embeddings=False,
    )
    src, lens, tgt_in, _ = _batch()
    with torch.no_grad():
        logits = model(src, lens, tgt_in).log_softmax(-1)  # (B, T, V)
        mem, state = model.encode(src, lens)
        for t in range(tgt_in.size(1)):
            logp, state, attn = model.decoder.step(tgt_in[:, t], state, mem)
            torch.testing.assert_close(logp, logits[:, t], atol=1e-5, rtol=1e-5)
            assert torch.all(attn[torch.arange(4)[:, None], torch.arange(7)] >= 0)
            # no attention on padding
            for i, n in enumerate(lens.tolist()):
                assert attn[i, n:].sum() == 0


@pytest.mark.parametrize("attention", ["dot", "general", "mlp", "location"])
@pytest.mark.parametrize("input_feed", [False, True])
def test_step_with_shared_memory_rows_equals_repeated_memory(attention, input_feed):
    """Beam search keeps one memory row per sentence: k decoder rows per memory
    row give what the memory repeated k times gives."""
    model = _model(attention=attention, input_feed=input_feed)
    src, lens, tgt_in, _ = _batch()
    k = 3
    with torch.no_grad():
        mem, state = model.encode(src, lens)
        rows = torch.arange(src.size(0)).repeat_interleave(k)
        state = state.select(rows)
        rep_state, rep_mem = state, mem.select(rows)
        for t in range(tgt_in.size(1)):
            tok = tgt_in[rows, t]
            logp, state, attn = model.decoder.step(tok, state, mem)
            rep_logp, rep_state, rep_attn = model.decoder.step(tok, rep_state, rep_mem)
            torch.testing.assert_close(logp, rep_logp, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(attn, rep_attn, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(state.feed, rep_state.feed)
        with pytest.raises(ValueError, match="decoder rows"):
            model.decoder.step(tok[:-1], state.select(rows[:-1]), mem)


def test_tied_embeddings_share_the_matrix():
    model = _model(tie_embeddings=True)
    assert model.decoder.output.weight is model.decoder.embed.weight
    assert model.decoder.out_proj is not None  # emb 8 != hidden 12


@pytest.mark.parametrize("param_init", [0.0, 0.1])
def test_overfits_one_batch(param_init):
    torch.manual_seed(0)
    cfg = ModelConfig(
        emb_dim=16,
        enc_hidden_size=16,
        hidden_size=32,
        dropout=0.0,
        label_smoothing=0.0,
        param_init=param_init,
    )
    model = build_model(cfg, V, V)
    src, lens, tgt_in, tgt_out = _batch(B=6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = model.loss(src, lens, tgt_in, tgt_out) / tgt_out.numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    with torch.no_grad():
        assert torch.equal(model(src, lens, tgt_in).argmax(-1), tgt_out)


@pytest.mark.parametrize("tie", [False, True])
def test_param_init_uniform_keeps_padding_rows_zero(tie):
    """Uniform in [-b, b], b = max(param_init, the layer's own scale), drawn from
    the whole range; a tied output layer keeps the embedding's."""
    from s2s.models.seq2seq import _own_bound

    model = _model(tie_embeddings=tie, param_init=0.05)
    seen = set()
    for name, m in model.named_modules():
        b = max(0.05, _own_bound(m))
        for p in m.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                assert p.abs().max() <= b, name
                assert p.abs().max() > 0.8 * b, name
    assert len(seen) == len(list(model.parameters()))
    for emb in (model.src_embed, model.decoder.embed):
        assert torch.all(emb.weight[emb.padding_idx] == 0)


def test_param_init_zero_keeps_the_per_layer_defaults():
    model = _model(param_init=0.0)
    lstm = model.decoder.lstm
    n = lstm.hidden_size
    forget = lstm.bias_ih_l0[n : 2 * n] + lstm.bias_hh_l0[n : 2 * n]
    torch.testing.assert_close(forget, torch.ones(n))
    assert model.decoder.embed.weight.std() < 0.5  # N(0, 1/emb_dim)


@pytest.mark.parametrize("input_feed", [False, True])
def test_loss_under_cpu_bf16_autocast_is_close_to_fp32(input_feed):
    """The autocast path CUDA takes, on the CPU: the fed loop's matrix products and
    the fast path's LSTM run in bf16, the loss stays near the fp32 one and
    gradients reach every parameter."""
    model = _model(input_feed=input_feed, dec_layers=2).train()
    src, lens, tgt_in, tgt_out = _batch()
    ref = model.loss(src, lens, tgt_in, tgt_out)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(src, lens, tgt_in, tgt_out)
    loss.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref, rtol=0.02, atol=0.0)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_location_attention_follows_the_previous_weights():
    """Location attention scores depend on where the previous step looked: the
    same step from another previous alignment attends elsewhere, and the state
    carries this step's weights on."""
    model = _model(attention="location")
    src, lens, tgt_in, _ = _batch()
    with torch.no_grad():
        mem, state = model.encode(src, lens)
        torch.testing.assert_close(state.attn.sum(1), torch.ones(src.size(0)))
        _, after, attn = model.decoder.step(tgt_in[:, 0], state, mem)
        torch.testing.assert_close(after.attn, attn)
        start = torch.zeros_like(state.attn)
        start[:, 0] = 1.0  # all of it on the first step
        moved = type(state)(state.h, state.c, state.feed, start)
        _, _, other = model.decoder.step(tgt_in[:, 0], moved, mem)
        assert (attn - other).abs().max() > 1e-4
