"""course_lib.course.toy against independent references: closed forms (problems 15.1, 15.2, 15.4, 15.5),
scipy quadrature, finite differences, a trained discriminator, hand-made sample sets."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm

from course_lib.core.errors import ConfigError, DataError
from course_lib.course import toy

LOG2 = math.log(2)


# ------------------------------------------------------------------------------ 1-D toy GAN
def finite_difference(fn, x0, h=1e-6):
    return (fn(x0 + h) - fn(x0 - h)) / (2 * h)


@pytest.mark.parametrize("kind", ["minimax", "non-saturating"])
def test_1d_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(0)
    x_real, z = rng.normal(3, 1, 50), rng.normal(0, 1, 50)
    phi, theta = np.array([-0.7, 1.3]), 0.4
    want_theta = finite_difference(lambda t: toy.generator_loss_1d(z, t, phi, kind), theta)
    assert toy.generator_grad_1d(z, theta, phi, kind) == pytest.approx(want_theta, rel=1e-6)
    grad_phi = toy.discriminator_grad_1d(x_real, z + theta, phi)
    for k in range(2):

        def loss(v, k=k):
            p = phi.copy()
            p[k] = v
            return toy.discriminator_loss_1d(x_real, z + theta, p)

        assert grad_phi[k] == pytest.approx(finite_difference(loss, phi[k]), rel=1e-6)


def test_1d_gan_moves_the_generator_to_the_data():
    history = toy.train_toy_gan_1d(real_mean=3.0, steps=600, seed=1)
    assert abs(history.theta[-1] - 3.0) < 0.5
    # Near the equilibrium the discriminator is close to chance: loss near log 4.
    assert history.d_loss[-1] == pytest.approx(2 * LOG2, abs=0.05)


def test_minimax_loss_saturates_where_non_saturating_does_not():
    phi = toy.optimal_logistic_parameters_1d(3.0, theta=-3.0)  # a confident discriminator
    z = np.random.default_rng(0).normal(size=1000)
    minimax = abs(toy.generator_grad_1d(z, -3.0, phi, "minimax"))
    non_saturating = abs(toy.generator_grad_1d(z, -3.0, phi, "non-saturating"))
    # E[sig(6x)] for x ~ N(-3, 1) is about 1e-3, E[1 - sig(6x)] about 1: the minimax push is ~1000x weaker.
    assert non_saturating > 5.0 and minimax < 2e-3 * non_saturating


def test_trained_discriminator_matches_optimal_formula():
    x = np.linspace(-3, 7, 201)
    for theta in (0.0, 2.0):
        phi = toy.fit_discriminator_1d(3.0, theta, steps=1500, seed=2)
        d_star = toy.optimal_discriminator(norm.pdf(x, 3.0), norm.pdf(x, theta))
        np.testing.assert_allclose(toy.discriminator_1d(x, phi), d_star, atol=0.03)
        # And the closed-form logistic parameters give D* exactly.
        np.testing.assert_allclose(
            toy.discriminator_1d(x, toy.optimal_logistic_parameters_1d(3.0, theta)), d_star, atol=1e-12
        )


# ----------------------------------------------------------------------- GAN loss and JS
def test_problem_15_1_and_15_2_loss_and_js():
    x = np.linspace(-12, 15, 20_001)
    p = norm.pdf(x, 1.0, 1.5)
    assert toy.gan_loss_at_optimum(p, p, x) == pytest.approx(math.log(4), rel=1e-6)  # problem 15.1
    for shift in (0.5, 2.0, 6.0):
        q = norm.pdf(x, 1.0 + shift, 1.0)
        js_quad = (
            0.5
            * integrate.quad(lambda t, shift=shift: _kl_integrand(t, 1.0, 1.5, 1.0 + shift, 1.0), -15, 20, limit=200)[0]
            + 0.5
            * integrate.quad(lambda t, shift=shift: _kl_integrand(t, 1.0 + shift, 1.0, 1.0, 1.5), -15, 20, limit=200)[0]
        )
        assert toy.js_divergence(p, q, x) == pytest.approx(js_quad, abs=1e-5)
        loss = toy.gan_loss_at_optimum(p, q, x)
        assert toy.js_from_gan_loss(loss) == pytest.approx(js_quad, abs=1e-5)  # problem 15.2


def _kl_integrand(t, m1, s1, m2, s2):
    """p log(2p / (p + q)): one half of JS, integrated by scipy.integrate.quad."""
    p, q = norm.pdf(t, m1, s1), norm.pdf(t, m2, s2)
    return p * math.log(2 * p / (p + q)) if p > 0 else 0.0


def test_js_quality_and_coverage_terms():
    x = np.linspace(-10, 10, 20_001)
    real = 0.5 * norm.pdf(x, -3, 0.5) + 0.5 * norm.pdf(x, 3, 0.5)
    one_mode = norm.pdf(x, 3, 0.5)  # drops the left mode
    quality, coverage = toy.js_quality_coverage(one_mode, real, x)
    # With real = (A + B) / 2 and fake = B (well separated): m = 3B/4 + A/4, so
    # quality = 1/2 log(4/3) and coverage = 1/2 (1/2 log 2 + 1/2 log(2/3)) = 1/4 log(4/3).
    assert quality == pytest.approx(0.5 * math.log(4 / 3), abs=1e-4)
    assert coverage == pytest.approx(0.25 * math.log(4 / 3), abs=1e-4)


# ------------------------------------------------------------------- problems 15.4 and 15.5
@pytest.mark.parametrize("a", [-3.0, -1.0, -0.4, 0.0, 0.25, 0.7, 2.0])
def test_problem_15_4_numerical_matches_closed_form(a):
    closed = toy.uniform_shift_divergences(a)
    numeric = toy.uniform_shift_divergences_numerical(a)
    assert numeric["js"] == pytest.approx(closed["js"], abs=2e-3)
    assert numeric["wasserstein"] == pytest.approx(closed["wasserstein"], abs=2e-3)
    for key in ("kl", "reverse_kl"):
        if a == 0:
            assert numeric[key] == pytest.approx(0.0, abs=1e-9)
        else:
            assert math.isinf(numeric[key]) and math.isinf(closed[key])
    assert closed["js"] == pytest.approx(min(abs(a), 1) * LOG2)
    assert closed["wasserstein"] == abs(a)


@pytest.mark.parametrize("m1,s1,m2,s2", [(0, 1, 0, 1), (0, 1, 2, 1), (-1, 0.5, 1.5, 2.0), (2, 3, -1, 0.7)])
def test_problem_15_5_gaussians(m1, s1, m2, s2):
    kl = toy.gaussian_kl(m1, s1, m2, s2)
    kl_quad = integrate.quad(
        lambda t: norm.pdf(t, m1, s1) * (norm.logpdf(t, m1, s1) - norm.logpdf(t, m2, s2)), -40, 40, limit=200
    )[0]
    assert kl == pytest.approx(kl_quad, abs=1e-7)
    w2 = toy.gaussian_w2(m1, s1, m2, s2)
    # The book's eq. 15.21 written with variances is W_2 squared.
    v1, v2 = s1**2, s2**2
    assert w2**2 == pytest.approx((m1 - m2) ** 2 + v1 + v2 - 2 * math.sqrt(v1 * v2))
    numeric = toy.gaussian_divergences_numerical(m1, s1, m2, s2)
    assert numeric["kl"] == pytest.approx(kl, abs=1e-5)
    assert numeric["w2"] == pytest.approx(w2, abs=2e-3)


def test_divergence_input_errors():
    x = np.linspace(0, 1, 5)
    with pytest.raises(DataError):
        toy.kl_divergence(np.ones(4), np.ones(5), x)
    with pytest.raises(DataError):
        toy.js_divergence(-np.ones(5), np.ones(5), x)
    with pytest.raises(DataError):
        toy.gaussian_kl(0, 0, 0, 1)
    with pytest.raises(ConfigError):
        toy.train_toy_gan_1d(generator_loss="hinge")


# ------------------------------------------------------------------------- 2-D mixtures
def test_mixtures_have_the_right_modes():
    ring, grid = toy.ring_mixture(), toy.grid_mixture()
    assert ring.n_modes == 8 and grid.n_modes == 25
    np.testing.assert_allclose(np.linalg.norm(ring.centres, axis=1), 2.0)
    assert sorted(set(np.round(grid.centres[:, 0], 6))) == [-4, -2, 0, 2, 4]
    x = ring.sample(5000, seed=0)
    assert x.shape == (5000, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x, ring.sample(5000, seed=0))


def test_mode_coverage_on_hand_made_samples():
    grid = toy.grid_mixture()  # std 0.1: "high quality" means within 0.3 of a centre
    n_per_mode = 100
    perfect = np.repeat(grid.centres, n_per_mode, axis=0) + 0.01
    cov = toy.mode_coverage(perfect, grid)
    assert (cov.modes_covered, cov.high_quality_fraction) == (25, 1.0)
    np.testing.assert_array_equal(cov.counts, n_per_mode)

    collapsed = np.repeat(grid.centres[:3], 400, axis=0)  # three modes only
    cov = toy.mode_coverage(collapsed, grid)
    assert cov.modes_covered == 3 and cov.high_quality_fraction == 1.0

    # Half the samples sit between modes (distance 1.0 > 3 std = 0.3): quality 0.5, all modes still covered.
    between = perfect + np.array([1.0, 0.0])
    cov = toy.mode_coverage(np.concatenate([perfect, between]), grid)
    assert cov.modes_covered == 25 and cov.high_quality_fraction == pytest.approx(0.5)

    # A mode with only a few stray samples is not covered: 1 of 2500 is below 0.2 * 2500 / 25 = 20.
    few = np.concatenate([np.repeat(grid.centres[:1], 2499, axis=0), grid.centres[1:2]])
    assert toy.mode_coverage(few, grid).modes_covered == 1

    # Exactly on the 3-std boundary counts as high quality; just outside does not.
    ring = toy.ring_mixture(std=0.02)
    edge = ring.centres[:1] + np.array([[0.06 - 1e-9, 0.0]])
    assert toy.mode_coverage(edge, ring).high_quality_fraction == 1.0
    assert toy.mode_coverage(edge + np.array([[0.001, 0]]), ring).high_quality_fraction == 0.0


def test_mode_coverage_rejects_bad_samples():
    with pytest.raises(DataError):
        toy.mode_coverage(np.zeros((10, 3)), toy.ring_mixture())
    with pytest.raises(DataError):
        toy.mode_coverage(np.full((10, 2), np.nan), toy.ring_mixture())


def test_toy_wgans_use_the_library_losses_and_gradient_penalty(monkeypatch):
    from course_lib.course.toy import train_2d
    from course_lib.nn import losses

    for method in ("wgan-clip", "wgan-gp"):
        pair = losses.get_loss(toy.LOSS_OF_METHOD[method])
        assert (pair.discriminator, pair.generator) == (losses.critic_wasserstein, losses.generator_score)
    assert train_2d.gradient_penalty is losses.gradient_penalty
    ring, config = toy.ring_mixture(), toy.default_config("wgan-gp", steps=2, batch_size=32, hidden=16)
    plain = toy.train_toy_gan_2d(ring, config, seed=0)

    penalties = []

    def recording_penalty(critic, real, fake):
        value = losses.gradient_penalty(critic, real, fake)
        penalties.append(value.item())
        return value

    monkeypatch.setattr(train_2d, "gradient_penalty", recording_penalty)
    recorded = toy.train_toy_gan_2d(ring, config, seed=0)
    # One library penalty per critic step, and the run is the same as without the recorder.
    assert len(penalties) == config.steps * config.critic_steps and all(p > 0 for p in penalties)
    assert recorded.d_loss == plain.d_loss and recorded.g_loss == plain.g_loss
    # The penalty's value enters the critic's loss: zeroing it (same random draws) changes the run.
    monkeypatch.setattr(train_2d, "gradient_penalty", lambda c, r, f: 0 * losses.gradient_penalty(c, r, f))
    assert toy.train_toy_gan_2d(ring, config, seed=0).d_loss != plain.d_loss


def test_short_training_runs_are_reproducible_and_clip_weights():
    ring = toy.ring_mixture()
    for method in toy.METHODS:
        config = toy.default_config(method, steps=5, batch_size=32, hidden=16)
        a, b = toy.train_toy_gan_2d(ring, config, seed=3), toy.train_toy_gan_2d(ring, config, seed=3)
        np.testing.assert_array_equal(a.samples(100), b.samples(100))
        assert np.all(np.isfinite(a.d_loss)) and len(a.g_loss) == 5
    clipped = toy.train_toy_gan_2d(ring, toy.default_config("wgan-clip", steps=3, batch_size=32, hidden=16), seed=0)
    assert max(p.abs().max().item() for p in clipped.critic.parameters()) <= 0.01 + 1e-9
    with pytest.raises(ConfigError):
        toy.default_config("stylegan")


def test_frozen_generator_gradient_vanishes():
    ring = toy.ring_mixture()
    G, D = toy.ToyGenerator(hidden=32), toy.ToyCritic(hidden=32)
    sample_real = lambda n, rng: torch.from_numpy(ring.sample(n, rng))
    snaps = toy.train_gan_snapshots(G, D, sample_real, G.latent_dim, steps=0, snapshot_at=[0])
    assert set(snaps) == {0}
    before = [p.detach().clone() for p in G.parameters()]
    run = toy.frozen_generator_gradients(
        G, D, sample_real, G.latent_dim, d_steps=300, measure_every=100, lr_d=1e-3, batch_size=128
    )
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))  # G stayed frozen
    assert list(run.d_steps) == [0, 100, 200, 300] and run.d_accuracy[-1] > 0.95
    # The minimax generator gradient falls well below its peak as D becomes sure;
    # the non-saturating one grows instead.
    assert run.grad_norm_minimax[-1] < 0.1 * run.grad_norm_minimax.max()
    assert run.grad_norm_non_saturating[-1] > 100 * run.grad_norm_minimax[-1]
