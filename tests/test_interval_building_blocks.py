"""The building blocks that let a report put intervals on FID, KID, precision and recall cheaply (issue 31):
a Fréchet distance to a fixed reference for many resamples, per-point k-NN membership, KID on disjoint blocks.
Each is checked against an independent computation."""

import itertools

import numpy as np
import pytest
import torch

from course_lib.metrics import frechet_distance, gaussian_statistics
from course_lib.metrics.errors import MetricInputError
from course_lib.metrics.frechet import FrechetToReference
from course_lib.metrics.kid import kid_disjoint_blocks, kid_from_features
from course_lib.metrics.precision_recall import fraction_inside, inside_mask, kth_neighbour_radii
from course_lib.metrics.uncertainty import seeds_interval


@pytest.mark.parametrize("n", [20, 200])  # fewer rows than dimensions (n x n eigenproblem) and more (d x d)
def test_frechet_to_reference_matches_scipy_sqrtm(n):
    rng = np.random.default_rng(n)
    d = 40
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    reference = rng.normal(size=(500, d)) @ mixing + 0.3
    rows = rng.normal(size=(n, d)) * 1.5
    mu_r, s_r = gaussian_statistics(torch.as_tensor(reference))
    mu_f, s_f = gaussian_statistics(torch.as_tensor(rows))
    expected = frechet_distance(mu_f, s_f, mu_r, s_r, method="scipy")  # pytorch-fid's sqrtm route
    assert FrechetToReference(mu_r, s_r)(rows) == pytest.approx(expected, rel=1e-6)


def test_frechet_to_reference_closed_form_for_diagonal_gaussians():
    # FD of N(m1, diag(a)) and N(m2, diag(b)) is |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2. Rows with exactly that
    # sample mean and covariance: +-sqrt(a_i (n-1)/2) on one coordinate each, shifted by m1.
    d, a, b = 3, np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    m1, m2 = np.array([1.0, 0.0, 2.0]), np.zeros(d)
    n = 2 * d
    rows = np.zeros((n, d))
    for i in range(d):
        rows[2 * i, i], rows[2 * i + 1, i] = np.sqrt(a[i] * (n - 1) / 2), -np.sqrt(a[i] * (n - 1) / 2)
    rows += m1
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert FrechetToReference(m2, np.diag(b))(rows) == pytest.approx(expected, rel=1e-9)


def test_frechet_to_reference_refuses_bad_rows():
    ref = FrechetToReference(np.zeros(4), np.eye(4))
    with pytest.raises(MetricInputError, match="rows must be"):
        ref(np.zeros((10, 5)))
    with pytest.raises(MetricInputError, match="NaN"):
        ref(np.full((10, 4), np.nan))
    with pytest.raises(MetricInputError, match="finite"):
        FrechetToReference(np.zeros(4), np.full((4, 4), np.inf))


def test_inside_mask_is_the_brute_force_membership():
    g = torch.Generator().manual_seed(0)
    points, centres = (
        torch.randn(30, 3, generator=g, dtype=torch.float64),
        torch.randn(25, 3, generator=g, dtype=torch.float64),
    )
    radii = kth_neighbour_radii(centres, 3)
    brute = [any(float(torch.dist(p, c)) <= float(r) for c, r in zip(centres, radii)) for p in points]
    mask = inside_mask(points, centres, radii, block=7)
    assert mask.tolist() == brute
    assert fraction_inside(points, centres, radii) == pytest.approx(sum(brute) / len(brute))


def _mmd2_by_loops(x, y):
    # The unbiased MMD^2 with the cubic polynomial kernel, written out pair by pair (Bińkowski et al. 2018, eq. 2).
    k = lambda u, v: (u @ v / len(u) + 1.0) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_blocks_are_disjoint_unbiased_estimates():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(24, 4)), rng.normal(size=(30, 4)) + 0.5
    blocks = kid_disjoint_blocks(x, y, blocks=3, seed=5)
    perm = np.random.RandomState(5)
    a, b = x[perm.permutation(24)], y[perm.permutation(30)]
    expected = [_mmd2_by_loops(a[i * 8 : (i + 1) * 8], b[i * 8 : (i + 1) * 8]) for i in range(3)]
    assert blocks == pytest.approx(expected, rel=1e-9)


def test_kid_block_interval_covers_the_all_sample_kid_and_zero_for_one_distribution():
    rng = np.random.default_rng(2)
    same = kid_disjoint_blocks(rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)), blocks=5)
    assert seeds_interval(same).contains(0.0)
    x, y = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)) + 0.3
    shifted = seeds_interval(kid_disjoint_blocks(x, y, blocks=5))
    assert shifted.low > 0
    assert shifted.contains(kid_from_features(x, y, subsets=20, subset_size=1000)[0])
    with pytest.raises(MetricInputError, match="disjoint blocks"):
        kid_disjoint_blocks(x[:3], y[:3], blocks=2)
