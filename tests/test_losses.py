import math

import torch
import torch.nn.functional as F

from course_lib.losses import get_loss


def test_losses_match_binary_cross_entropy_on_probabilities():
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.0, 0.7, 4.0])
    p_real, p_fake = torch.sigmoid(real), torch.sigmoid(fake)
    ns, mm = get_loss("non-saturating"), get_loss("minimax")
    expected_d = F.binary_cross_entropy(p_real, torch.ones(3)) + F.binary_cross_entropy(p_fake, torch.zeros(3))
    assert torch.allclose(ns.discriminator(real, fake), expected_d, atol=1e-6)
    assert torch.allclose(mm.discriminator(real, fake), expected_d, atol=1e-6)
    assert torch.allclose(ns.generator(fake), -torch.log(p_fake).mean(), atol=1e-6)
    assert torch.allclose(mm.generator(fake), torch.log(1 - p_fake).mean(), atol=1e-6)


def test_loss_at_the_equilibrium_is_2_log_2():
    zero = torch.zeros(4)
    assert math.isclose(get_loss("minimax").discriminator(zero, zero).item(), 2 * math.log(2), rel_tol=1e-6)


def test_minimax_saturates_where_non_saturating_does_not():
    # Fakes confidently rejected (logit -10): the minimax generator gradient nearly vanishes.
    logits = torch.full((8,), -10.0, requires_grad=True)
    (g_mm,) = torch.autograd.grad(get_loss("minimax").generator(logits), logits)
    logits2 = logits.detach().requires_grad_()
    (g_ns,) = torch.autograd.grad(get_loss("non-saturating").generator(logits2), logits2)
    assert g_mm.abs().max() < 1e-5 and g_ns.abs().min() > 0.1
    assert (g_ns < 0).all() and (g_mm < 0).all()  # both push the fakes' logits up


def test_losses_are_finite_for_extreme_logits_in_half_precision():
    logits = torch.tensor([-200.0, 200.0], dtype=torch.bfloat16)
    for name in ("minimax", "non-saturating"):
        loss = get_loss(name)
        assert torch.isfinite(loss.discriminator(logits, logits)) and torch.isfinite(loss.generator(logits))
