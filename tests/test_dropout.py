"""s2s.models.dropout: the CPU mask's rate, independence and gradient."""

import pytest
import torch

from s2s.models.dropout import Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_mask_keeps_one_minus_p(p):
    torch.manual_seed(0)
    keep = keep_mask((999, 1001), p).float()  # an odd count: half an int64 unused
    assert keep.shape == (999, 1001)
    n = keep.numel()
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(float(keep.mean()) - (1 - p)) < 5 * sd
    # The two words of one int64 (neighbours) and elements far apart: independent.
    pairs = keep.view(-1)[: n - 1].view(-1, 2)
    both = float((pairs[:, 0] * pairs[:, 1]).mean())
    assert (
        abs(both - (1 - p) ** 2)
        < 5 * (((1 - p) ** 2 * (1 - (1 - p) ** 2)) / (n // 2)) ** 0.5
    )


def test_seeded_and_fresh_per_call():
    torch.manual_seed(3)
    a, b = keep_mask((64, 65), 0.3), keep_mask((64, 65), 0.3)
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask((64, 65), 0.3))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_output_and_gradient(dtype):
    torch.manual_seed(1)
    x = torch.randn(37, 19, dtype=dtype, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    assert y.dtype == dtype
    kept = y != 0
    assert torch.equal(y[kept], x[kept] * (1 / 0.75))
    g = torch.randn(37, 19, dtype=dtype)
    y.backward(g)
    assert torch.equal(x.grad, torch.where(kept, g * (1 / 0.75), 0))


def test_identity_when_off_and_zeros_at_one():
    x = torch.randn(5, 6)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros(5, 6))
    m = Dropout(0.3).eval()
    assert m(x) is x and repr(m) == "Dropout(p=0.3, inplace=False)"
    m.train()
    assert (m(x) == 0).any()
