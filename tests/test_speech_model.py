"""The CTC speech model: shapes and lengths through the whole model, padding
invariance, SpecAugment only in training, and a loss that goes down."""

import pytest
import torch

from s2s.config import ModelConfig, load_config
from s2s.errors import S2SError
from s2s.models.ctc import ctc_loss
from s2s.models.encoder import RNNEncoder
from s2s.models.seq2seq import build_model
from s2s.models.speech import SpeechCTC

V, F = 9, 12


def _model(subsample="conv", **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(
        task="ctc",
        num_mels=F,
        param_init=0.0,
        emb_dim=10,
        enc_hidden_size=7,
        enc_layers=2,
        subsample=subsample,
        subsample_channels=3,
        dropout=0.0,
        **kw,
    )
    return build_model(cfg, 0, V)


@pytest.mark.parametrize("subsample", ["conv", "stack"])
def test_shapes_and_lengths_through_the_model(subsample):
    model = _model(subsample).eval()
    assert isinstance(model, SpeechCTC) and isinstance(model.encoder, RNNEncoder)
    lengths = torch.tensor([41, 7, 23, 1])
    feats = torch.randn(4, 41, F)
    log_probs, out_lengths = model(feats, lengths)
    expected = model.subsampler.output_lengths(lengths)
    assert torch.equal(out_lengths, expected)
    assert log_probs.shape == (4, int(expected.max()), V)
    assert log_probs.dtype == torch.float32
    torch.testing.assert_close(
        log_probs.exp().sum(-1), torch.ones(4, log_probs.size(1))
    )


@pytest.mark.parametrize("subsample", ["conv", "stack"])
def test_batched_equals_one_by_one(subsample):
    model = _model(subsample).eval()
    lengths = torch.tensor([30, 11, 19])
    feats = torch.randn(3, 30, F)  # padding frames hold noise, not zeros
    with torch.no_grad():
        batched, out_lengths = model(feats, lengths)
        for b, n in enumerate(lengths.tolist()):
            one, one_len = model(feats[b : b + 1, :n], lengths[b : b + 1])
            m = int(one_len)
            assert m == int(out_lengths[b])
            torch.testing.assert_close(batched[b, :m], one[0], atol=1e-5, rtol=1e-5)


def test_specaugment_acts_only_in_training():
    model = _model(specaugment=True, freq_masks=2, freq_width=4, time_masks=2)
    feats, lengths = torch.randn(2, 40, F), torch.tensor([40, 33])
    model.eval()
    with torch.no_grad():
        a, _ = model(feats, lengths)
        b, _ = model(feats, lengths)
        model.train()
        torch.manual_seed(1)
        c, _ = model(feats, lengths)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert _model(specaugment=False).specaugment is None


def test_ctc_loss_goes_down_on_one_batch():
    model = _model("stack")
    feats, lengths = torch.randn(3, 48, F), torch.tensor([48, 40, 32])
    targets = torch.tensor([[4, 5, 6, 7], [5, 5, 8, 0], [6, 0, 0, 0]])
    target_lengths = torch.tensor([4, 3, 1])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        loss, num_inf = model.loss(feats, lengths, targets, target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert num_inf.item() == 0
    assert losses[-1] < 0.5 * losses[0], losses[::10]  # overfitting: test_speech


def test_impossible_targets_are_counted():
    model = _model("conv")
    # 11 frames -> 2 after conv subsampling: 3 labels cannot fit
    loss, num_inf = model.loss(
        torch.randn(2, 11, F),
        torch.tensor([11, 11]),
        torch.tensor([[4, 5, 6], [4, 0, 0]]),
        torch.tensor([3, 1]),
    )
    assert num_inf.item() == 1 and torch.isfinite(loss)


def test_the_tapped_layer_is_the_shallower_encoders_output():
    """fused_bilstm's tap k equals a k-layer encoder with the same weights (the
    packed path); the last layer's outputs are forward's."""
    torch.manual_seed(0)
    deep = RNNEncoder(10, 7, num_layers=3).eval()
    shallow = RNNEncoder(10, 7, num_layers=1).eval()
    shallow.lstm.load_state_dict(
        {
            k: v
            for k, v in deep.lstm.state_dict().items()
            if k.endswith(("_l0", "_l0_reverse"))
        }
    )
    x, lengths = torch.randn(3, 9, 10), torch.tensor([9, 4, 6])
    with torch.no_grad():
        out, _, final, mid = deep.forward_tapped(x, lengths, 1)
        ref_out, _, ref_final = deep(x, lengths)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, lengths, batch_first=True, enforce_sorted=False
        )
        one, _ = shallow.lstm(packed)
        one, _ = torch.nn.utils.rnn.pad_packed_sequence(one, batch_first=True)
    torch.testing.assert_close(mid, one, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out, ref_out, atol=0, rtol=0)
    torch.testing.assert_close(final, ref_final, atol=0, rtol=0)
    with pytest.raises(ValueError):
        deep.forward_tapped(x, lengths, 3)


def test_intermediate_ctc_mixes_the_middle_layers_loss_in_training():
    w = 0.3
    model = _model("stack", inter_ctc_weight=w, specaugment=False).train()
    plain = _model("stack", specaugment=False).train()  # the same weights (seed)
    assert model.inter_layer == 1
    feats, lengths = torch.randn(2, 24, F), torch.tensor([24, 17])
    targets, target_lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    loss, num_inf = model.loss(feats, lengths, targets, target_lengths)
    last, _ = plain.loss(feats, lengths, targets, target_lengths)
    # the middle layer through the same head, by hand
    x, x_lengths = model.subsampler(feats, lengths)
    _, _, _, mid = model.encoder.forward_tapped(x, x_lengths, 1)
    mid_loss, _ = ctc_loss(
        model.head(mid), x_lengths, targets, target_lengths, model.blank
    )
    torch.testing.assert_close(loss, (1 - w) * last + w * mid_loss)
    assert num_inf.item() == 0
    # the middle layer's loss reaches the first layer's weights, and only in
    # training: evaluation's loss is the last layer's alone
    loss.backward()
    last.backward()
    g, g_plain = (m.encoder.lstm.weight_ih_l0.grad for m in (model, plain))
    assert not torch.allclose(g, g_plain)
    model.eval(), plain.eval()
    with torch.no_grad():
        e, _ = model.loss(feats, lengths, targets, target_lengths)
        e_plain, _ = plain.loss(feats, lengths, targets, target_lengths)
    torch.testing.assert_close(e, e_plain, atol=0, rtol=0)


def test_a_joint_model_with_intermediate_ctc_trains(tone_bin, tmp_path):
    from conftest import TINY_CTC
    from s2s.train.trainer import Trainer

    sets = [*TINY_CTC, "model.task=joint", "model.hidden_size=32"]
    sets += ["model.enc_layers=2", "model.inter_ctc_weight=0.3", "train.max_steps=3"]
    Trainer(load_config(None, sets), tone_bin, tmp_path / "run").run()
    assert (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.bptt=4", "is for translation and lm; set it to 0"),
        ("model.inter_ctc_weight=1", r"model.inter_ctc_weight must be in \[0, 1\)"),
        ("train.select_by=bleu", "select_by=bleu needs model.task=translation"),
        ("model.freq_masks=-1", "model.freq_masks must be >= 0"),
    ],
)
def test_ctc_config_checks(override, message):
    with pytest.raises(S2SError, match=message):
        load_config(None, ["model.task=ctc", override])


@pytest.mark.parametrize(
    "task, layers", [("ctc", 1), ("joint", 1), ("translation", 2), ("lm", 2)]
)
def test_intermediate_ctc_needs_a_speech_model_with_a_middle(task, layers):
    sets = [f"model.task={task}", f"model.enc_layers={layers}"]
    with pytest.raises(S2SError, match="needs model.task=ctc or joint and model.enc"):
        load_config(None, [*sets, "model.inter_ctc_weight=0.3"])
