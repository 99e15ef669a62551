"""The earth mover's LP against independent references: scipy.stats.wasserstein_distance, the LP
dual, and closed forms for continuous 1-D distributions."""

import numpy as np
import pytest
from scipy.stats import norm, wasserstein_distance

from course_lib.core.errors import DataError
from course_lib.course.wasserstein import (
    earth_movers_dual,
    earth_movers_dual_lipschitz,
    earth_movers_primal,
    histogram_on_bins,
    transport_constraint_matrix,
    wasserstein_1d_densities,
    wasserstein_1d_quantiles,
)


def random_histograms(rng, k, m=None):
    p, q = rng.random(k), rng.random(m or k)
    return p / p.sum(), q / q.sum()


@pytest.mark.parametrize("k", [2, 4, 7, 15, 25])
def test_primal_matches_scipy_on_random_histograms(k):
    rng = np.random.default_rng(k)
    for _ in range(3):
        p, q = random_histograms(rng, k)
        got = earth_movers_primal(p, q).distance
        want = wasserstein_distance(np.arange(k), np.arange(k), p, q)
        assert got == pytest.approx(want, rel=1e-7, abs=1e-10)


def test_primal_with_positions_and_different_bin_counts_matches_scipy():
    rng = np.random.default_rng(1)
    p, q = random_histograms(rng, 6, 9)
    x, y = np.sort(rng.normal(size=6)), np.sort(rng.normal(size=9)) + 0.5
    got = earth_movers_primal(p, q, x, y).distance
    assert got == pytest.approx(wasserstein_distance(x, y, p, q), rel=1e-7)


@pytest.mark.parametrize("k", [3, 8, 20])
def test_primal_equals_both_duals(k):
    rng = np.random.default_rng(100 + k)
    p, q = random_histograms(rng, k)
    primal = earth_movers_primal(p, q).distance
    general = earth_movers_dual(p, q)
    lipschitz = earth_movers_dual_lipschitz(p, q)
    assert general.distance == pytest.approx(primal, rel=1e-8, abs=1e-12)
    assert lipschitz.distance == pytest.approx(primal, rel=1e-8, abs=1e-12)
    # The Lipschitz potential is feasible, and the general dual's potentials satisfy f_i + g_j <= |i - j|.
    assert np.all(np.abs(np.diff(lipschitz.f)) <= 1 + 1e-9)
    assert np.all(
        general.f[:, None] + general.g[None, :] <= np.abs(np.subtract.outer(np.arange(k), np.arange(k))) + 1e-9
    )


def test_plan_is_a_coupling_with_the_right_cost():
    rng = np.random.default_rng(7)
    p, q = random_histograms(rng, 10)
    sol = earth_movers_primal(p, q)
    assert np.all(sol.plan >= -1e-12)
    np.testing.assert_allclose(sol.plan.sum(axis=1), p, atol=1e-9)
    np.testing.assert_allclose(sol.plan.sum(axis=0), q, atol=1e-9)
    assert np.sum(sol.plan * sol.cost) == pytest.approx(sol.distance, rel=1e-9)


def test_constraint_matrix_problem_15_3():
    A = transport_constraint_matrix(4)
    assert A.shape == (8, 16)
    P = np.arange(16.0).reshape(4, 4)
    vec = P.flatten(order="F")  # stacked column by column
    np.testing.assert_array_equal(A @ vec, np.concatenate([P.sum(axis=1), P.sum(axis=0)]))
    assert A.sum() == 32 and set(np.unique(A)) == {0.0, 1.0}


def test_identical_histograms_have_zero_distance_and_shift_costs_the_shift():
    p = np.array([0.2, 0.5, 0.3, 0.0, 0.0])
    assert earth_movers_primal(p, p).distance == pytest.approx(0.0, abs=1e-12)
    assert earth_movers_primal(p, np.roll(p, 2)).distance == pytest.approx(2.0)


def test_bad_histograms_raise_clear_errors():
    with pytest.raises(DataError, match="negative mass"):
        earth_movers_primal([0.5, -0.1, 0.6], [0.3, 0.3, 0.4])
    with pytest.raises(DataError, match="different total mass"):
        earth_movers_primal([0.5, 0.5], [0.5, 0.6])
    with pytest.raises(DataError, match="same bins"):
        earth_movers_dual_lipschitz([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(DataError, match="positions"):
        earth_movers_primal([0.5, 0.5], [0.5, 0.5], positions_p=[0.0, 1.0, 2.0])
    with pytest.raises(DataError, match="positions_q"):
        earth_movers_primal([0.5, 0.5], [0.2, 0.3, 0.5], positions_p=[0.0, 1.0])
    with pytest.raises(DataError, match="total mass is 0"):
        earth_movers_primal([0.0, 0.0], [0.0, 0.0])


def test_continuous_gaussians_match_closed_forms():
    x = np.linspace(-12, 14, 20_001)
    # W_1 between N(0, 1) and N(2, 1) is the shift, 2.
    assert wasserstein_1d_densities(x, norm.pdf(x), norm.pdf(x, 2)) == pytest.approx(2.0, rel=1e-4)
    # W_2 between Gaussians: sqrt((mu1 - mu2)^2 + (s1 - s2)^2).
    w2 = wasserstein_1d_quantiles(norm(0, 1).ppf, norm(1, 2).ppf, order=2)
    assert w2 == pytest.approx(np.sqrt(2.0), rel=1e-3)


def test_continuous_density_version_matches_scipy_on_samples():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 200_000), rng.exponential(1.0, 200_000)
    x = np.linspace(-8, 16, 40_001)
    from scipy.stats import expon

    want = wasserstein_1d_densities(x, norm.pdf(x), expon.pdf(x))
    assert wasserstein_distance(a, b) == pytest.approx(want, rel=1e-2)


def test_binned_lp_converges_to_the_continuous_distance():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 50_000), rng.normal(1.5, 0.5, 50_000)
    edges = np.linspace(-5, 5, 61)
    centres, p = histogram_on_bins(a, edges)
    _, q = histogram_on_bins(b, edges)
    lp = earth_movers_primal(p, q, centres).distance
    assert lp == pytest.approx(wasserstein_distance(centres, centres, p, q), rel=1e-7)
    assert lp == pytest.approx(wasserstein_distance(a, b), abs=0.03)
