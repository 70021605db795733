import pytest
import torch

from s2s.data.audio import speed_perturb
from s2s.models.frontend import SpecAugment, Subsampler

# --- Subsampler -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["conv", "stack"])
def test_subsampler_lengths_match_actual_output_sizes(kind):
    torch.manual_seed(0)
    sub = Subsampler(in_dim=9, out_dim=6, kind=kind, channels=3)
    for T in range(1, 41):
        lengths = torch.tensor([T, max(1, T - 1), max(1, T // 3), 1])
        y, out_lengths = sub(torch.randn(4, T, 9), lengths)
        assert y.shape == (4, int(out_lengths.max()), 6), (kind, T)
        assert int(out_lengths[0]) == sub.output_lengths(T)
        assert (out_lengths >= 1).all()


def test_subsampler_length_formulas():
    conv = Subsampler(in_dim=9, out_dim=6, kind="conv")
    stack = Subsampler(in_dim=9, out_dim=6, kind="stack")
    T = torch.arange(1, 30)
    # Shorter than 7 frames: padded to 7, one output frame.
    torch.testing.assert_close(
        conv.output_lengths(T), ((T.clamp_min(7) - 1) // 2 - 1) // 2
    )
    assert conv.output_lengths(torch.tensor([1, 6, 7, 10, 11, 100])).tolist() == [
        1, 1, 1, 1, 2, 24,
    ]  # fmt: skip
    assert stack.output_lengths(torch.tensor([1, 4, 5, 8, 9])).tolist() == [
        1,
        1,
        2,
        2,
        3,
    ]


@pytest.mark.parametrize("kind", ["conv", "stack"])
def test_subsampler_output_does_not_depend_on_padding(kind):
    torch.manual_seed(0)
    sub = Subsampler(in_dim=8, out_dim=5, kind=kind, channels=2)
    lengths = torch.tensor([23, 5, 12])
    x = torch.randn(3, 23, 8)  # padding frames hold noise, not zeros
    y, out_lengths = sub(x, lengths)
    for b in range(3):
        L = int(lengths[b])
        y1, l1 = sub(x[b : b + 1, :L], lengths[b : b + 1])
        assert int(l1) == int(out_lengths[b])
        torch.testing.assert_close(y[b, : int(l1)], y1[0])


def test_subsampler_rejects_narrow_features_and_unknown_kind():
    with pytest.raises(ValueError):
        Subsampler(in_dim=6, out_dim=4, kind="conv")
    with pytest.raises(ValueError):
        Subsampler(in_dim=8, out_dim=4, kind="pool")


# --- SpecAugment ------------------------------------------------------------------


def _spec_batch():
    lengths = torch.tensor([50, 20, 35])
    x = torch.full((3, 50, 30), 2.0)
    valid = torch.arange(50) < lengths[:, None]
    return x.masked_fill(~valid[:, :, None], 7.0), lengths, valid


def test_specaugment_is_identity_in_eval_mode():
    aug = SpecAugment().eval()
    x, lengths, _ = _spec_batch()
    y, out_lengths = aug(x, lengths)
    assert torch.equal(y, x) and torch.equal(out_lengths, lengths)


def test_specaugment_masks_only_within_lengths_and_widths():
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=2, freq_width=5, time_masks=2, time_width_ratio=0.2)
    aug.train()
    x, lengths, valid = _spec_batch()
    saw_mask = False
    for _ in range(20):
        y, _ = aug(x, lengths)
        masked = y == 0.0  # (B, T, F)
        assert torch.equal(y[~valid], x[~valid])  # padding untouched
        assert not masked[~valid].any()
        assert torch.equal(y[~masked], x[~masked])  # everything else untouched
        for b, L in enumerate(lengths.tolist()):
            full_rows = masked[b, :L].all(dim=1)  # time-masked frames
            full_cols = masked[b, :L].all(dim=0)  # frequency-masked bins
            assert full_rows.sum() <= 2 * int(0.2 * L)
            assert full_cols.sum() <= 2 * 5
            # A cell is masked only as part of a masked frame or a masked bin.
            explained = full_rows[:, None] | full_cols[None, :]
            assert torch.equal(masked[b, :L], explained)
            saw_mask |= bool(full_rows.any() and full_cols.any())
    assert saw_mask


def test_specaugment_is_reproducible_under_manual_seed():
    aug = SpecAugment(freq_masks=2, freq_width=8, time_masks=2, time_width_ratio=0.2)
    aug.train()
    x, lengths, _ = _spec_batch()
    torch.manual_seed(123)
    first, _ = aug(x, lengths)
    torch.manual_seed(123)
    again, _ = aug(x, lengths)
    different, _ = aug(x, lengths)
    assert torch.equal(first, again)
    assert not torch.equal(first, different)


# --- speed perturbation -----------------------------------------------------------


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1])
def test_speed_perturb_changes_length_by_the_factor(factor):
    wave = torch.sin(torch.arange(16000) * 2 * torch.pi * 440 / 16000)
    out = speed_perturb(wave, 16000, factor)
    assert abs(out.numel() - 16000 / factor) <= 1
    # The tone moves up by the factor: count zero crossings.
    crossings = ((out[1:] > 0) != (out[:-1] > 0)).sum().item()
    assert abs(crossings / (out.numel() / 16000) / 2 - 440 * factor) < 5


def test_speed_perturb_rejects_nonpositive_factor():
    with pytest.raises(ValueError):
        speed_perturb(torch.zeros(10), 16000, 0.0)
