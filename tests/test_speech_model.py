"""The CTC speech model: shapes and lengths through the whole model, padding
invariance, SpecAugment only in training, and a loss that goes down."""

import pytest
import torch

from s2s.config import ModelConfig, load_config
from s2s.errors import S2SError
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.bptt=4", "is for translation and lm; set it to 0"),
        ("train.select_by=bleu", "select_by=bleu needs model.task=translation"),
        ("model.freq_masks=-1", "model.freq_masks must be >= 0"),
    ],
)
def test_ctc_config_checks(override, message):
    with pytest.raises(S2SError, match=message):
        load_config(None, ["model.task=ctc", override])
