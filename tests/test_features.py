import json

import pytest
import torch

from s2s.data.features import FeatureExtractor, GlobalCMVN
from s2s.errors import S2SError


def _tone(num_samples, freq=440.0, rate=16000):
    t = torch.arange(num_samples) / rate
    return 0.5 * torch.sin(2 * torch.pi * freq * t)


@pytest.mark.parametrize("kind", ["fbank", "melspec"])
@pytest.mark.parametrize("num_samples", [400, 559, 560, 16000])
def test_feature_shapes(kind, num_samples):
    extractor = FeatureExtractor(kind=kind, num_mels=80, sample_rate=16000)
    feats = extractor(_tone(num_samples))
    expected_frames = 1 + (num_samples - 400) // 160
    assert feats.shape == (expected_frames, 80)
    assert extractor.num_frames(num_samples) == expected_frames
    assert feats.dtype == torch.float32 and torch.isfinite(feats).all()


@pytest.mark.parametrize("kind", ["fbank", "melspec"])
def test_features_are_deterministic_and_see_the_tone(kind):
    extractor = FeatureExtractor(kind=kind, num_mels=40)
    low, high = extractor(_tone(8000, 300.0)), extractor(_tone(8000, 3000.0))
    assert torch.equal(low, extractor(_tone(8000, 300.0)))
    # The loudest mel bin follows the tone's frequency.
    assert low.mean(0).argmax() < high.mean(0).argmax()


def test_silence_and_too_short_audio():
    extractor = FeatureExtractor(kind="fbank")
    assert torch.isfinite(extractor(torch.zeros(1600))).all()
    assert extractor.num_frames(399) == 0
    with pytest.raises(S2SError, match="shorter than one 25 ms frame"):
        extractor(torch.zeros(399))
    with pytest.raises(ValueError):
        FeatureExtractor(kind="mfcc")


def test_cmvn_matches_statistics_of_the_concatenation():
    torch.manual_seed(0)
    utterances = [torch.randn(T, 6) * 3 + 5 for T in (7, 1, 12, 30)]
    cmvn = GlobalCMVN(dim=6)
    for feats in utterances:
        cmvn.update(feats)
    everything = torch.cat(utterances).double()
    assert cmvn.count == everything.shape[0]
    torch.testing.assert_close(cmvn.mean, everything.mean(0))
    torch.testing.assert_close(cmvn.std, everything.std(0, unbiased=False))
    normalized = cmvn.normalize(torch.cat(utterances))
    assert normalized.dtype == torch.float32
    torch.testing.assert_close(normalized.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        normalized.std(0, unbiased=False), torch.ones(6), atol=1e-5, rtol=0
    )


def test_cmvn_round_trips_through_a_plain_dict():
    torch.manual_seed(0)
    cmvn = GlobalCMVN(dim=4)
    cmvn.update(torch.randn(10, 4))
    stored = json.loads(json.dumps(cmvn.to_dict()))  # plain Python all the way down
    restored = GlobalCMVN.from_dict(stored)
    x = torch.randn(3, 4)
    assert torch.equal(restored.normalize(x), cmvn.normalize(x))
    with pytest.raises(S2SError, match="lack"):
        GlobalCMVN.from_dict({"dim": 4})
    with pytest.raises(S2SError, match="dimension"):
        GlobalCMVN.from_dict({**stored, "sum": [0.0]})


def test_cmvn_constant_dimension_and_empty_stats():
    cmvn = GlobalCMVN(dim=2)
    with pytest.raises(S2SError, match="empty"):
        cmvn.normalize(torch.zeros(1, 2))
    cmvn.update(torch.tensor([[1.0, 3.0], [1.0, 5.0]]))
    assert torch.isfinite(cmvn.normalize(torch.ones(2, 2))).all()
    with pytest.raises(ValueError):
        cmvn.update(torch.zeros(3, 5))
