import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.core.errors import DataError
from course_lib.nn.losses import get_loss, gradient_penalty


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


# ----------------------------------------------------------------- gradient penalty, any input rank
def test_gradient_penalty_on_points_matches_the_linear_critic_closed_form():
    # f(x) = w.x + b has gradient w at every point: the penalty is (||w|| - 1)^2 = (5 - 1)^2 for w = (3, 4).
    critic = torch.nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert gradient_penalty(lambda x: critic(x).squeeze(-1), real, fake).item() == pytest.approx(16.0)


@pytest.mark.parametrize("shape", [(6, 2), (6, 3, 4, 4)])
def test_gradient_penalty_of_a_quadratic_critic_by_hand(shape):
    # f(x) = ||x||^2 / 2 has gradient x: the penalty is mean_k (||x_hat_k|| - 1)^2, computed here in numpy.
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(shape, generator=gen), 2 * torch.randn(shape, generator=gen)
    alpha = torch.rand(shape[0], generator=gen)
    a = alpha.double().numpy().reshape((-1,) + (1,) * (len(shape) - 1))
    x_hat = (a * real.double().numpy() + (1 - a) * fake.double().numpy()).reshape(shape[0], -1)
    expected = np.mean((np.linalg.norm(x_hat, axis=1) - 1) ** 2)
    quadratic = lambda x: 0.5 * (x**2).flatten(1).sum(1)  # noqa: E731
    assert gradient_penalty(quadratic, real, fake, alpha=alpha).item() == pytest.approx(expected, rel=1e-5)
    # Without `alpha` it draws exactly these N weights from the generator, whatever the rank.
    drawn = gradient_penalty(quadratic, real, fake, torch.Generator().manual_seed(1))
    weights = torch.rand(shape[0], generator=torch.Generator().manual_seed(1))
    fixed = gradient_penalty(quadratic, real, fake, alpha=weights)
    assert torch.equal(drawn, fixed)


def test_gradient_penalty_rejects_mismatched_batches():
    critic = lambda x: x.flatten(1).sum(1)  # noqa: E731
    with pytest.raises(DataError, match="same shape"):
        gradient_penalty(critic, torch.zeros(4, 2), torch.zeros(3, 2))
    with pytest.raises(DataError, match="one weight per sample"):
        gradient_penalty(critic, torch.zeros(4, 2), torch.zeros(4, 2), alpha=torch.rand(3))
