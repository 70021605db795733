import pytest
import torch
import torch.nn.functional as F

from s2s.data.vocab import PAD
from s2s.models.loss import token_loss


def _reference(logits, targets, eps):
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        targets.reshape(-1),
        ignore_index=PAD,
        label_smoothing=eps,
        reduction="sum",
    )


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("scale", [0.37, 1.0, 0.0, -2.0])
def test_token_loss_equals_cross_entropy(eps, scale):
    """The CPU loss equals F.cross_entropy with label smoothing and ignore_index,
    in value and in gradient, for any upstream gradient (the loss is scaled by
    1 / tokens in training), with pad targets at any position."""
    g = torch.Generator().manual_seed(int(scale * 100) + int(eps * 10))
    logits = (torch.randn(3, 5, 40, generator=g) * 4).requires_grad_()
    targets = torch.randint(1, 40, (3, 5), generator=g)
    targets[0, 3:] = PAD
    targets[2, 0] = PAD
    ours = token_loss(logits, targets, eps)
    ref = _reference(logits, targets, eps)
    torch.testing.assert_close(ours, ref)
    (g_ours,) = torch.autograd.grad(ours * scale, logits)
    (g_ref,) = torch.autograd.grad(ref * scale, logits)
    torch.testing.assert_close(g_ours, g_ref)
    assert g_ours[0, 3:].abs().sum() == 0  # pad positions get no gradient


def test_token_loss_far_apart_logits():
    """Targets whose probability underflows fp32 (logit 1e4 below the row's
    maximum) and rows of equal logits: the loss is finite and still equals
    F.cross_entropy, in value and gradient."""
    logits = torch.randn(4, 50) * 3
    logits[0, 7] = 1e4  # the target of row 0 is 1e4 below it: p underflows to 0
    logits[1] = 5.0  # all equal: the maximum is everywhere
    logits[2, 9] = -1e4  # a very unlikely target
    logits.requires_grad_()
    targets = torch.tensor([3, 11, 9, 2])
    for eps in (0.0, 0.1):
        ours = token_loss(logits, targets, eps)
        ref = _reference(logits, targets, eps)
        assert float(ours.detach()) > 1e4  # finite, and row 0 alone costs 1e4
        torch.testing.assert_close(ours, ref)
        (g_ours,) = torch.autograd.grad(ours, logits)
        (g_ref,) = torch.autograd.grad(ref, logits)
        torch.testing.assert_close(g_ours, g_ref)


def test_token_loss_bf16_logits():
    """Logits from bf16 autocast: the loss is computed in fp32 and the gradient
    comes back in the logits' dtype."""
    logits = torch.randn(6, 30).to(torch.bfloat16).requires_grad_()
    targets = torch.tensor([3, 4, PAD, 7, 8, 29])
    ours = token_loss(logits, targets, 0.1)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, _reference(logits, targets, 0.1))
    (grad,) = torch.autograd.grad(ours, logits)
    assert grad.dtype == torch.bfloat16
    (ref,) = torch.autograd.grad(_reference(logits, targets, 0.1), logits)
    torch.testing.assert_close(grad, ref)


def test_output_loss_in_blocks_equals_whole():
    """On the CPU the output layer runs over blocks of positions (16 MB of logits
    each: 104 rows for 40k pieces); loss and gradients equal one pass over all."""
    from s2s.config import ModelConfig
    from s2s.models.decoder import output_loss
    from s2s.models.seq2seq import build_model

    torch.manual_seed(0)
    V = 40_000
    cfg = ModelConfig(emb_dim=8, enc_hidden_size=8, hidden_size=16, dropout=0.0)
    dec = build_model(cfg, 30, V).decoder
    a = torch.randn(5, 70, 16, requires_grad=True)
    tgt = torch.randint(1, V, (5, 70))
    tgt[1, 40:] = PAD  # 320 real positions: 4 blocks
    blocked = output_loss(dec, a, tgt, 0.1)
    keep = tgt != PAD
    whole = token_loss(dec.logits(a[keep]), tgt[keep], 0.1)
    torch.testing.assert_close(blocked, whole)
    params = [a, *dec.output.parameters()]
    for g1, g2 in zip(
        torch.autograd.grad(blocked, params),
        torch.autograd.grad(whole, params),
        strict=True,
    ):
        torch.testing.assert_close(g1, g2)
