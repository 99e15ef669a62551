"""course_lib.latent: truncation (checked against scipy and Monte Carlo), interpolation, arithmetic, inversion."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.core.errors import ConfigError, DataError
from course_lib.latent import (
    attribute_direction,
    class_direction,
    class_means,
    interpolate,
    invert,
    lerp,
    read_celeba_attributes,
    rejected_fraction,
    sample_latents,
    slerp,
    truncate_psi,
    truncated_normal,
    truncated_on_shell,
)

TAUS = (0.04, 0.5, 1.0, 2.0, 3.0)


# ------------------------------------------------------------------------------- rejected fraction
@pytest.mark.parametrize("tau", TAUS)
def test_rejected_fraction_matches_scipy(tau):
    p = 2 * stats.norm.cdf(-tau)
    assert rejected_fraction(tau, 100, "component") == pytest.approx(p, rel=1e-12)
    for d in (1, 2, 10, 100):
        assert rejected_fraction(tau, d, "vector") == pytest.approx(1 - (1 - p) ** d, rel=1e-12)
    for d in (1, 2, 3, 10, 99, 100, 101):
        assert rejected_fraction(tau, d, "norm") == pytest.approx(stats.chi2.sf(tau**2, d), rel=1e-10, abs=1e-300)


def test_rejected_fraction_norm_tail_matches_scipy_far_out():
    # Far in the tail only a log-space sum keeps relative accuracy.
    for d, tau in ((100, 14.0), (3, 30.0), (7, 12.0)):
        assert rejected_fraction(tau, d, "norm") == pytest.approx(stats.chi2.sf(tau**2, d), rel=1e-9)


def test_rejected_fraction_matches_monte_carlo():
    rng = torch.Generator().manual_seed(0)
    n, d = 200_000, 8
    z = torch.randn(n, d, generator=rng, dtype=torch.float64)
    for tau in (0.5, 1.0, 2.0, 3.0):
        estimates = {
            "component": float((z.abs() > tau).double().mean()),
            "vector": float((z.abs() > tau).any(1).double().mean()),
            "norm": float((z.norm(dim=1) > tau).double().mean()),
        }
        for rule, estimate in estimates.items():
            exact = rejected_fraction(tau, d, rule)
            count = n * d if rule == "component" else n
            se = math.sqrt(exact * (1 - exact) / count)
            assert abs(estimate - exact) < 5 * se + 1e-12, (rule, tau, estimate, exact)


def test_problem_15_6_values():
    """d = 100: a per-component cut at tau rejects most whole vectors even at tau = 2."""
    assert rejected_fraction(2.0, 100, "component") == pytest.approx(0.0455003, abs=1e-7)
    assert rejected_fraction(2.0, 100, "vector") == pytest.approx(0.990503, abs=1e-6)
    assert rejected_fraction(0.04, 100, "component") == pytest.approx(0.968093, abs=1e-6)


@pytest.mark.parametrize(
    "bad", [{"tau": 0}, {"tau": -1}, {"tau": float("nan")}, {"tau": 1, "d": 0}, {"tau": 1, "rule": "sphere"}]
)
def test_rejected_fraction_rejects_bad_input(bad):
    with pytest.raises(ConfigError):
        rejected_fraction(**bad)


# ---------------------------------------------------------------------------------------- truncation
@pytest.mark.parametrize("method", ["resample", "inverse_cdf"])
@pytest.mark.parametrize("tau", (0.04, 0.5, 2.0))
def test_truncated_samples_lie_within_tau_and_follow_the_truncated_normal(method, tau):
    z = truncated_normal(4000, 10, tau, seed=1, method=method)
    assert z.shape == (4000, 10) and z.abs().max() <= tau
    # Kolmogorov-Smirnov against scipy's truncated normal (40,000 components).
    assert stats.kstest(z.flatten().double().numpy(), stats.truncnorm(-tau, tau).cdf).pvalue > 1e-3


def test_truncation_is_seeded_and_leaves_the_global_stream_alone():
    state = torch.get_rng_state()
    a = truncated_normal(64, 20, 1.0, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, truncated_normal(64, 20, 1.0, seed=3))
    assert not torch.equal(a, truncated_normal(64, 20, 1.0, seed=4))


def test_large_tau_changes_nothing():
    z = sample_latents(32, 16, seed=5)
    assert torch.equal(sample_latents(32, 16, tau=50.0, seed=5), z)
    assert torch.equal(sample_latents(32, 16, tau=50.0, seed=5, method="resample"), z)


def test_psi_truncation_scales_towards_the_mean():
    z = torch.randn(10, 4)
    assert torch.equal(truncate_psi(z, 1.0), z)
    assert torch.equal(truncate_psi(z, 0.0), torch.zeros_like(z))
    assert torch.allclose(truncate_psi(z, 0.3), 0.3 * z)
    mean = torch.ones(4)
    assert torch.allclose(truncate_psi(z, 0.5, mean), 1 + 0.5 * (z - 1))
    with pytest.raises(ConfigError):
        truncate_psi(z, 1.5)


# ------------------------------------------------------------------------------------ interpolation
def shoemake(p0: np.ndarray, p1: np.ndarray, t: float) -> np.ndarray:
    """The textbook slerp formula, written out independently in numpy."""
    omega = np.arccos(np.dot(p0, p1) / (np.linalg.norm(p0) * np.linalg.norm(p1)))
    return (np.sin((1 - t) * omega) * p0 + np.sin(t * omega) * p1) / np.sin(omega)


def test_slerp_hits_its_endpoints_and_keeps_equal_norms():
    rng = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(100, generator=rng, dtype=torch.float64), torch.randn(100, generator=rng, dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()
    path = slerp(z0, z1, torch.linspace(0, 1, 11, dtype=torch.float64))
    assert torch.allclose(path[0], z0, atol=1e-12) and torch.allclose(path[-1], z1, atol=1e-12)
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(11), rtol=1e-12)
    for t in (0.1, 0.5, 0.77):
        expected = shoemake(z0.numpy(), z1.numpy(), t)
        assert np.allclose(slerp(z0, z1, t)[0].numpy(), expected, atol=1e-10)
    # constant angular speed along the great circle
    cos = (path[1:] * path[:-1]).sum(1) / (path[1:].norm(dim=1) * path[:-1].norm(dim=1))
    assert torch.allclose(cos, cos[0].expand(10), atol=1e-12)


def test_slerp_norm_moves_linearly_between_unequal_endpoints():
    z0, z1 = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 5.0, 0.0])
    t = torch.linspace(0, 1, 5)
    assert torch.allclose(slerp(z0, z1, t).norm(dim=1), 3 + 2 * t, atol=1e-6)
    assert torch.allclose(slerp(z0, z1, 1.0)[0], z1, atol=1e-6)


def test_lerp_cuts_through_the_ball_and_slerp_does_not():
    rng = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(100, generator=rng), torch.randn(100, generator=rng)
    mid_lerp, mid_slerp = lerp(z0, z1, 0.5)[0], slerp(z0, z1, 0.5)[0]
    assert torch.allclose(mid_lerp, (z0 + z1) / 2)
    assert mid_lerp.norm() < 0.8 * min(z0.norm(), z1.norm())  # about 1/sqrt(2) of a typical norm
    assert mid_slerp.norm() == pytest.approx(float((z0.norm() + z1.norm()) / 2), rel=1e-5)
    path = interpolate(z0, z1, 7, "lerp")
    assert path.shape == (7, 100) and torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)


def test_interpolation_errors():
    z = torch.randn(5)
    with pytest.raises(ConfigError):
        slerp(z, -z, 0.5)
    with pytest.raises(ConfigError):
        slerp(torch.zeros(5), z, 0.5)
    with pytest.raises(ConfigError):
        interpolate(z, z, 5, "cubic")
    with pytest.raises(ConfigError):
        interpolate(z, z, 1)
    near = slerp(z, z * 1.0000001, torch.linspace(0, 1, 3))  # parallel endpoints: no division by ~0
    assert torch.isfinite(near).all() and torch.allclose(near[1], z, atol=1e-5)


# -------------------------------------------------------------------------------- latent arithmetic
def test_attribute_direction_recovers_a_planted_shift():
    rng = torch.Generator().manual_seed(2)
    z = torch.randn(4000, 20, generator=rng)
    labels = torch.where(torch.rand(4000, generator=rng) < 0.3, 1, -1)  # CelebA's +1/-1 coding
    shift = torch.zeros(20)
    shift[3] = 2.0
    z[labels > 0] += shift
    direction = attribute_direction(z, labels)
    assert torch.allclose(direction, shift, atol=0.15)
    assert torch.allclose(direction, attribute_direction(z, labels > 0))
    with pytest.raises(DataError):
        attribute_direction(z, torch.ones(4000))
    with pytest.raises(DataError):
        attribute_direction(z, torch.ones(10))


def test_class_means_and_directions_match_a_loop():
    rng = torch.Generator().manual_seed(3)
    z, labels = torch.randn(300, 6, generator=rng), torch.randint(0, 4, (300,), generator=rng)
    means = class_means(z, labels, 5)
    for c in range(4):
        assert torch.allclose(means[c], z[labels == c].mean(0), atol=1e-6)
    assert torch.isnan(means[4]).all()
    assert torch.allclose(class_direction(z, labels, 1, 2), means[2] - means[1], atol=1e-6)
    with pytest.raises(DataError):
        class_direction(z, labels, 1, 7)


def test_read_celeba_attributes(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("2\nSmiling Male\n000001.jpg  1 -1\n000002.jpg -1  1\n")
    names, table = read_celeba_attributes(path)
    assert names == ["Smiling", "Male"] and table["000002.jpg"].tolist() == [-1, 1]
    path.write_text("1\nSmiling Male\n000001.jpg 1\n")
    with pytest.raises(DataError, match="line 3"):
        read_celeba_attributes(path)
    with pytest.raises(DataError):
        read_celeba_attributes(tmp_path / "missing.txt")


def test_read_the_real_celeba_attribute_file(shared_data):
    names, table = read_celeba_attributes(shared_data / "celeba" / "list_attr_celeba_first20000.txt")
    assert len(names) == 40 and "Smiling" in names and len(table) == 20000
    smiling = torch.stack(list(table.values()))[:, names.index("Smiling")]
    assert 0.3 < float((smiling > 0).double().mean()) < 0.7  # about half of CelebA smiles


# ------------------------------------------------------------------------------------------ inversion
def test_inversion_recovers_generated_images():
    from course_lib.latent.pretrained import load_pretrained

    generator = load_pretrained("mnist-dcgan")
    z_true = sample_latents(4, generator.latent_dim, seed=11)
    with torch.no_grad():
        target = generator(z_true)
    result = invert(generator, target, steps=100, restarts=3, seed=0)
    assert result.z.shape == (4, generator.latent_dim) and result.reconstruction.shape == target.shape
    with torch.no_grad():
        baseline = (generator(sample_latents(4, generator.latent_dim, seed=99)) - target).pow(2).flatten(1).mean(1)
    assert (result.mse < 0.25 * baseline).all(), (result.mse, baseline)
    assert torch.allclose(result.mse, (result.reconstruction - target).pow(2).flatten(1).mean(1), atol=1e-6)
    assert result.history[-1] < result.history[0]
    assert all(p.grad is None for p in generator.parameters()) and not generator.training
    assert (result.psnr > 10).all()


@pytest.mark.parametrize("tau", (0.1, 1.0))
def test_truncation_on_shell_keeps_the_chi_radius_and_truncates_the_direction(tau):
    d = 100
    z = truncated_on_shell(4000, d, tau, seed=3).double()
    radius = z.norm(dim=1)
    # the length of an untruncated N(0, I_d) draw: chi with d degrees of freedom (scipy's reference)
    assert stats.kstest(radius.numpy(), stats.chi(d).cdf).pvalue > 1e-3
    # the direction is that of a draw truncated at tau: the same direction as truncated_normal's
    direction = truncated_normal(4000, d, tau, seed=4).double()
    assert torch.allclose(z / radius[:, None], direction / direction.norm(dim=1, keepdim=True), atol=1e-6)
