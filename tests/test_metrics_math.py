"""The metric formulas on inputs whose answers are known: closed forms, hand-made tables, brute force,
and the reference packages' own formula functions. No feature network involved, so these are fast."""

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from course_lib.metrics import frechet_distance, psnr, sharpness, ssim
from course_lib.metrics.diversity import mean_pairwise_distance
from course_lib.metrics.errors import MetricInputError
from course_lib.metrics.frechet import trace_sqrt_product, trace_sqrt_product_scipy
from course_lib.metrics.kid import kid_from_features, mmd2_unbiased
from course_lib.metrics.precision_recall import precision_recall_from_features
from course_lib.metrics.score_formulas import inception_score_from_logits, inception_score_from_probabilities
from course_lib.metrics.scores import (
    am_score_from_probabilities,
    mode_score_from_probabilities,
    modified_inception_score_from_probabilities,
)
from course_lib.metrics.two_sample import one_nn_from_features


# ------------------------------------------------------------------------------------------- FID
def test_fid_between_gaussians_closed_form():
    # Commuting (diagonal) covariances: FID = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 9.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # Rotating both covariances by the same orthogonal matrix changes nothing.
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    assert frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T) == pytest.approx(
        expected, rel=1e-10
    )
    # Same distribution: 0.
    s = q @ np.diag(a) @ q.T
    assert frechet_distance(mu1, s, mu1, s) == pytest.approx(0.0, abs=1e-10)


def test_fid_non_commuting_covariances_against_scipy_sqrtm():
    rng = np.random.default_rng(1)
    for d in (2, 16, 128):
        x, y = rng.standard_normal((d, d)), rng.standard_normal((d, d))
        s1, s2 = x @ x.T + 0.1 * np.eye(d), y @ y.T / d
        expected = np.trace(linalg.sqrtm(s1 @ s2)).real
        assert trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-9)
        assert trace_sqrt_product_scipy(s1, s2) == pytest.approx(expected, rel=1e-12)
    # 2-d case by hand: for 2x2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    s1, s2 = np.array([[2.0, 1.0], [1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 3.0]])
    m = s1 @ s2
    assert trace_sqrt_product(s1, s2) == pytest.approx(
        math.sqrt(np.trace(m) + 2 * math.sqrt(np.linalg.det(m))), rel=1e-12
    )


def test_fid_with_singular_covariances_stays_finite_and_agrees():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((20, 50)), rng.standard_normal((30, 50)) + 0.3  # fewer samples than dimensions
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    value = frechet_distance(x.mean(0), s1, y.mean(0), s2)
    assert np.isfinite(value) and value > 0
    # The exact trace via the nuclear norm of the centred cross-product: tr sqrt(S1 S2) = ||Xc Yc^T||_* / sqrt(c).
    xc, yc = x - x.mean(0), y - y.mean(0)
    exact = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / math.sqrt((len(x) - 1) * (len(y) - 1))
    assert trace_sqrt_product(s1, s2) == pytest.approx(exact, rel=1e-8)


def test_fid_of_large_samples_approaches_the_population_value():
    rng = np.random.default_rng(3)
    n, d = 200_000, 3
    a, b = np.array([1.0, 2.0, 0.5]), np.array([2.0, 0.5, 0.5])
    x = rng.standard_normal((n, d)) * np.sqrt(a)
    y = rng.standard_normal((n, d)) * np.sqrt(b) + 1.0
    expected = d * 1.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert got == pytest.approx(expected, rel=0.02)


def test_fid_rejects_mismatched_and_non_finite_statistics():
    with pytest.raises(MetricInputError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(MetricInputError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))


# -------------------------------------------------------------------------------------------- IS
def test_inception_score_on_hand_made_tables():
    k = 10
    one_hot = np.eye(k)
    # Every class once, each image certain: IS = number of classes.
    assert inception_score_from_probabilities(one_hot, splits=1) == pytest.approx((k, 0.0))
    # Every image the same distribution: p(y|x) = p(y), no information, IS = 1.
    same = np.tile(np.array([0.7, 0.2, 0.1]), (6, 1))
    assert inception_score_from_probabilities(same, splits=2)[0] == pytest.approx(1.0)
    # Two images: [1, 0] and [0.5, 0.5]. p(y) = [0.75, 0.25];
    # KL1 = log(1/0.75), KL2 = 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25).
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    kl1, kl2 = math.log(1 / 0.75), 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2)
    assert inception_score_from_probabilities(p, splits=1)[0] == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)
    # Splits: 20 one-hot rows, first half all class 0, second half classes 0..9 -> split scores 1 and 10.
    rows = np.concatenate([np.tile(one_hot[0], (10, 1)), one_hot])
    mean, std = inception_score_from_probabilities(rows, splits=2)
    assert (mean, std) == pytest.approx((5.5, 4.5))


@pytest.mark.filterwarnings("ignore:Metric .* will save all extracted features")
def test_inception_score_matches_torch_fidelity_and_torchmetrics_formulas():
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torchmetrics.image.inception import InceptionScore

    logits = torch.randn(103, 1008, generator=torch.Generator().manual_seed(0)) * 3  # uneven splits on purpose
    ref = isc_features_to_metric(logits, splits=10, shuffle=False)
    mean, std = inception_score_from_logits(logits, splits=10)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-9)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-9)
    assert inception_score_from_probabilities(torch.softmax(logits.double(), 1), 10)[0] == pytest.approx(mean, rel=1e-9)

    logits = logits[:100]  # torchmetrics splits with chunk(): equal to ours when N divides evenly
    tm = InceptionScore(feature=torch.nn.Identity(), splits=10)
    tm.update(logits)
    torch.manual_seed(5)
    tm_mean, tm_std = tm.compute()
    torch.manual_seed(5)
    perm = torch.randperm(100)
    mean, std = inception_score_from_logits(logits[perm], splits=10)
    assert mean == pytest.approx(tm_mean.item(), rel=1e-5)
    assert std * math.sqrt(10 / 9) == pytest.approx(tm_std.item(), rel=1e-4)  # torchmetrics: sample std


def test_inception_score_input_errors():
    with pytest.raises(MetricInputError, match="sum to 1"):
        inception_score_from_probabilities(np.array([[0.5, 0.6], [0.5, 0.5]]), splits=1)
    with pytest.raises(MetricInputError, match="splits"):
        inception_score_from_probabilities(np.eye(5), splits=10)
    with pytest.raises(MetricInputError):
        inception_score_from_logits(torch.tensor([[0.0, float("nan")]]), splits=1)


def test_is_relatives_on_hand_made_tables():
    k = 4
    balanced = np.eye(k)[np.arange(40) % k]  # certain and balanced, like the real labels
    labels = np.arange(40) % k
    # Mode score: E KL(onehot || uniform) = log k, KL(p(y) || p*) = 0 -> k.  AM: 0 + 0.
    assert mode_score_from_probabilities(balanced, labels) == pytest.approx(k)
    assert am_score_from_probabilities(balanced, labels) == pytest.approx(0.0, abs=1e-9)
    # All samples class 0: E KL = log k, KL(p(y) || p*) = log k -> MS = 1; AM = KL(p* || p(y)) is huge.
    collapsed = np.tile(np.eye(k)[0], (40, 1))
    assert mode_score_from_probabilities(collapsed, labels) == pytest.approx(1.0)
    assert am_score_from_probabilities(collapsed, labels) > 10
    # m-IS: identical predictions within each class -> 1; varied ones -> more.
    assert modified_inception_score_from_probabilities(balanced) == pytest.approx(1.0)
    varied = np.array([[0.9, 0.1, 0.0, 0.0], [0.6, 0.0, 0.4, 0.0], [0.1, 0.9, 0.0, 0.0], [0.0, 0.6, 0.0, 0.4]])
    # Class 0: KL(a||b) and KL(b||a) with clamped zeros are large: m-IS well above 1.
    assert modified_inception_score_from_probabilities(varied) > 2
    # Two samples of one class: m-IS = exp((KL(p||q) + KL(q||p)) / 2).
    p, q = np.array([0.8, 0.2]), np.array([0.6, 0.4])
    sym = (np.sum(p * np.log(p / q)) + np.sum(q * np.log(q / p))) / 2
    assert modified_inception_score_from_probabilities(np.stack([p, q])) == pytest.approx(math.exp(sym), rel=1e-12)


# ------------------------------------------------------------------------------------------- KID
def _brute_force_mmd2(x, y):
    d = x.shape[1]
    k = lambda u, v: (float(np.dot(u, v)) / d + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_equals_brute_force_mmd():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 0.5
    assert mmd2_unbiased(x, y) == pytest.approx(_brute_force_mmd2(x, y), rel=1e-12)
    # One subset of the full size is the plain estimate; subsets of 8 are brute-forced through the same RNG.
    assert kid_from_features(x, y, subsets=1, subset_size=12)[0] == pytest.approx(_brute_force_mmd2(x, y), rel=1e-12)
    rs = np.random.RandomState(7)
    expected = []
    for _ in range(5):
        a, b = x[rs.choice(12, 8, replace=False)], y[rs.choice(12, 8, replace=False)]
        expected.append(_brute_force_mmd2(a, b))
    mean, std = kid_from_features(x, y, subsets=5, subset_size=8, seed=7)
    assert (mean, std) == pytest.approx((np.mean(expected), np.std(expected)), rel=1e-10)


def test_kid_matches_torch_fidelity_and_is_unbiased():
    from torch_fidelity.metric_kid import kid_features_to_metric

    gen = torch.Generator().manual_seed(0)
    f1, f2 = torch.randn(300, 64, generator=gen), torch.randn(250, 64, generator=gen) * 1.1
    ref = kid_features_to_metric(
        f1,
        f2,
        kid_subsets=20,
        kid_subset_size=100,
        rng_seed=2020,
        verbose=False,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
    )
    mean, std = kid_from_features(f1, f2, subsets=20, subset_size=100, seed=2020)
    # torch-fidelity computes kernels in float32, we in float64: agreement to float32 precision.
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-4)
    # Same distribution: the unbiased estimate averages to about 0 (FID's would be clearly positive).
    same = torch.randn(2000, 16, generator=gen)
    assert abs(kid_from_features(same[:1000], same[1000:], subsets=50, subset_size=200)[0]) < 2e-3
    with pytest.raises(MetricInputError, match="subset_size"):
        kid_from_features(f1[:10], f2, subset_size=50)


# ----------------------------------------------------------------------- precision / recall, 1-NN
def test_precision_recall_hand_made_and_against_torch_fidelity():
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    real = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    # k = 1: every real ball has radius 1. Generated at 2.5 (inside) and 10 (outside): precision 1/2.
    # Generated balls: radius 7.5 around both -> every real sample covered: recall 1.
    gen = torch.tensor([[2.5], [10.0]])
    assert precision_recall_from_features(gen, real, k=1) == pytest.approx((0.5, 1.0))
    g = torch.Generator().manual_seed(1)
    fake, real = torch.randn(300, 8, generator=g) * 0.7 + 0.3, torch.randn(250, 8, generator=g)
    ref = calculate_precision_recall_full(fake, real, neighborhood=3)
    assert precision_recall_from_features(fake, real, k=3) == pytest.approx(ref, abs=1e-6)  # same counts


def test_one_nn_two_sample_test_extremes():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(200, 4, generator=g)
    # Memorisation: generated samples are copies of the real ones -> every nearest neighbour has the other label.
    assert one_nn_from_features(real.clone(), real)[0] == pytest.approx(0.0)
    # Far apart: perfectly separable.
    assert one_nn_from_features(real + 100, real) == pytest.approx((1.0, 1.0, 1.0))
    # Same distribution: about 0.5.
    acc = one_nn_from_features(torch.randn(2000, 4, generator=g), torch.randn(2000, 4, generator=g))[0]
    assert 0.45 < acc < 0.55


def test_pairwise_diversity():
    assert mean_pairwise_distance(torch.ones(10, 3)) == 0.0
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert mean_pairwise_distance(x) == pytest.approx((5 + 4 + 3) / 3)
    assert mean_pairwise_distance(2 * x) == pytest.approx(2 * mean_pairwise_distance(x))
    big = torch.randn(2000, 5, generator=torch.Generator().manual_seed(3))
    assert mean_pairwise_distance(big, max_pairs=50_000) == pytest.approx(
        mean_pairwise_distance(big, max_pairs=None), rel=0.02
    )


# ------------------------------------------------------------------------------- image quality
def test_psnr_and_ssim_match_torchmetrics():
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 3, 32, 32, generator=g)
    y = (x + 0.1 * torch.randn(3, 3, 32, 32, generator=g)).clamp(0, 1)
    ref_psnr = peak_signal_noise_ratio(
        y.double(), x.double(), data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean"
    )
    assert psnr(y, x, value_range=(0, 1)) == pytest.approx(ref_psnr.item(), rel=1e-6)
    # torchmetrics averages the SSIM map over the whole reflect-padded image; Wang et al. (and skimage)
    # average only where the 11x11 window fits inside the image: crop torchmetrics' full map to that.
    _, ssim_map = structural_similarity_index_measure(y.double(), x.double(), data_range=1.0, return_full_image=True)
    ref_ssim = ssim_map[..., 5:-5, 5:-5].mean()
    assert ssim(y, x, value_range=(0, 1)) == pytest.approx(ref_ssim.item(), rel=1e-6)
    assert ssim(x, x, value_range=(0, 1)) == pytest.approx(1.0)
    assert psnr(x, x, value_range=(0, 1)) == math.inf
    with pytest.raises(MetricInputError, match="same shape"):
        psnr(x, x[:, :, :16], value_range=(0, 1))


def test_sharpness_drops_with_blur():
    x = (torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(5)) * 255).to(torch.uint8)
    blurred = torch.nn.functional.avg_pool2d(x.float(), 3, stride=1, padding=1).round().to(torch.uint8)
    assert sharpness(blurred) < 0.5 * sharpness(x)
