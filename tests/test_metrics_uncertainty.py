"""Confidence intervals (bootstrap over samples, t over seeds) and the unbiased FID/IS of Chong & Forsyth (2020).

References are distributions whose answers are known: the mean of Gaussians (a bootstrap interval must cover it
at its level), Gaussian features whose Fréchet distance is known in closed form, and class probabilities whose
Inception Score is known in closed form; scipy's t quantiles for the interval over seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib import metrics
from course_lib.metrics import GeneratorEvaluator, MetricInputError, MetricResult
from course_lib.metrics.features import FeatureSet
from course_lib.metrics.fid import frechet_distance
from course_lib.metrics.stats_cache import Statistics
from course_lib.metrics.uncertainty import (
    bootstrap_ci,
    bootstrap_interval,
    seeds_interval,
    seeds_result,
    seeds_text,
    with_interval,
)


def _features(x) -> FeatureSet:
    x = torch.as_tensor(x, dtype=torch.float64)
    return FeatureSet(x, None, "gauss", "Gaussian test features", "gauss-test", False, "test features")


# ------------------------------------------------------------------------------ bootstrap over samples
def test_bootstrap_interval_covers_the_mean_of_gaussians_at_its_level():
    """300 data sets of n=60 from N(0, 1); the 90% percentile interval of the sample mean should contain 0 in about
    90% of them. The percentile bootstrap under-covers slightly at small n (about 0.88-0.89 here); with 300 trials
    the coverage's standard error is sqrt(0.9 * 0.1 / 300) = 0.017, so [0.83, 0.95] is a 3.5-sigma band."""
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(300):
        x = rng.normal(0.0, 1.0, 60)
        interval = bootstrap_interval(lambda i, x=x: x[i].mean(), len(x), resamples=100, level=0.9, seed=trial)
        covered += interval.contains(0.0)
    assert 0.83 <= covered / 300 <= 0.95


def test_bootstrap_is_deterministic_in_its_seed():
    x = np.random.default_rng(1).normal(size=50)
    first = bootstrap_interval(lambda i: x[i].mean(), 50, resamples=50, seed=7)
    assert bootstrap_interval(lambda i: x[i].mean(), 50, resamples=50, seed=7) == first
    assert bootstrap_interval(lambda i: x[i].mean(), 50, resamples=50, seed=8) != first
    with pytest.raises(MetricInputError, match="at least 10 resamples"):
        bootstrap_interval(lambda i: x[i].mean(), 50, resamples=3)
    with pytest.raises(MetricInputError, match="between 0 and 1"):
        bootstrap_interval(lambda i: x[i].mean(), 50, level=95)


def test_bootstrap_fid_interval_has_the_width_of_fids_sampling_distribution():
    """FID of n=400 samples of N(0, I_4) against exact reference statistics N(m, 0.5 I): the bootstrap half-width of one
    sample set should match 1.645 x the standard deviation of FID over 150 independent sample sets (the width a 90%
    interval must have). Both are noisy (each bootstrap width to ~15% with B=60; averaged over 6 sets), so the
    ratio is asserted within [0.7, 1.4]."""
    d, n = 4, 400
    rng = np.random.default_rng(2)
    mu_ref, sigma_ref = np.full(d, 0.3), 0.5 * np.eye(d)
    reference = Statistics(mu_ref, sigma_ref, 10**9)

    def plain_fid(x):
        return frechet_distance(x.mean(0), np.cov(x, rowvar=False), mu_ref, sigma_ref)

    spread = np.std([plain_fid(rng.normal(size=(n, d))) for _ in range(150)])
    halves = []
    for s in range(6):
        gen = _features(rng.normal(size=(n, d)))
        result = bootstrap_ci(metrics.fid, gen, reference, resamples=60, level=0.9, seed=s)
        assert result.ci_low <= result.value <= result.ci_high and result.ci_n == n
        halves.append(result.half_width)
    assert 0.7 <= np.mean(halves) / (stats.norm.ppf(0.95) * spread) <= 1.4


def test_metric_results_print_value_plus_minus_half_width():
    result = with_interval(MetricResult("FID", 12.3, extractor="pixels", n=(2000, 500)), None)
    assert "CI" not in str(result) and result.half_width is None
    ranged = bootstrap_ci(lambda f: MetricResult("mean", float(f.features.mean())), _features(np.arange(20.0)))
    text = str(ranged)
    assert f"mean = {9.5:.4f} ± {ranged.half_width:.4f} (95% CI, n=20)" in text
    assert ranged.to_dict()["ci_level"] == 0.95 and "bootstrap over 20 samples, B=200" == ranged.ci_method


# ------------------------------------------------------------------------------ t-interval over seeds
def test_seeds_interval_is_the_t_interval_of_the_mean():
    values = [21.4, 19.8, 23.1, 20.6]
    interval = seeds_interval(values, level=0.95)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-12)
    result = seeds_result(values, "FID")
    assert str(result).startswith(f"FID = {np.mean(values):.4f} ± {interval.half_width:.4f} (95% CI, n=4)")
    half = (high - low) / 2
    assert seeds_text(values, digits=2) == f"{np.mean(values):.2f} ± {half:.2f} (95% CI, n=4 seeds)"
    with pytest.raises(MetricInputError, match="at least 2"):
        seeds_interval([3.0])
    with pytest.raises(MetricInputError, match="NaN"):
        seeds_interval([3.0, math.nan])


# ------------------------------------------------------------------------------ the evaluator
def test_evaluator_gives_intervals_and_protocol_on_request():
    from course_lib.nn.models import DCGANGenerator

    torch.manual_seed(0)
    generator = DCGANGenerator(latent_dim=8, image_size=28, channels=3, width=8)
    real = torch.randint(0, 256, (400, 3, 28, 28), dtype=torch.uint8)

    def evaluator(**intervals):
        return GeneratorEvaluator(
            ["fid", "kid"], real, extractor="pixels", n_samples=400, seed=3, kid_subset=50, kid_subsets=5, **intervals
        )

    plain, with_ci = evaluator(), evaluator(ci=0.9, bootstrap=20)
    values, ci_values = plain(generator), with_ci(generator)
    assert values == ci_values  # the numbers themselves do not change
    results = with_ci.results()
    for name in ("fid", "kid"):
        r = results[name]
        assert r.value == values[name] and r.ci_level == 0.9 and r.ci_n == 400
        assert r.ci_low < r.ci_high and "(90% CI, n=400)" in str(r)
    assert "400 generated samples" in results["fid"].protocol and "400 reference images" in with_ci.protocol
    assert "8x8 average pooling" in with_ci.protocol
    assert plain.results()["fid"].ci_low is None  # no interval unless asked for
    again = evaluator(ci=0.9, bootstrap=20)
    again(generator)
    assert again.results()["fid"].ci_low == results["fid"].ci_low  # seeded by the evaluator's seed
    import copy

    broken = copy.deepcopy(generator)
    with torch.no_grad():
        next(broken.parameters()).fill_(math.nan)
    assert math.isnan(again(broken)["fid"])  # a diverged generator: NaN scores, and no stale interval
    assert math.isnan(again.results()["fid"].value) and again.results()["fid"].ci_low is None


# ------------------------------------------------------------------------------ unbiased FID and IS
def test_sample_counts_are_the_papers_scaled_to_the_samples():
    from course_lib.metrics.unbiased import sample_counts

    assert sample_counts(50_000).tolist() == np.linspace(5_000, 50_000, 15).astype(int).tolist()
    assert sample_counts(2_000).tolist()[:2] == [200, 328] and sample_counts(2_000)[-1] == 2_000
    with pytest.raises(MetricInputError, match="at least 3"):
        sample_counts(1000, points=2)
    with pytest.raises(MetricInputError, match="too few"):
        sample_counts(3)


def test_fid_infinity_removes_the_sample_size_bias_on_gaussians():
    """Generated features N(0, I_64) against exact reference statistics N(0.2, 0.36 I): the Fréchet distance is
    64 * 0.2^2 + 64 * (1 - 0.6)^2 = 12.8 in closed form. Plain FID of 200 samples overshoots it by about 3.6 (the
    covariance's eigenvalue spread at d/N = 0.32), FID of all 2,000 by about 0.32. In a simulation of 20 data sets
    (seeds 0-19), FID_inf from the 2,000 samples had error -0.05 +- 0.11 (sd), FID_2000 +0.32 +- 0.10 and FID_200
    +3.6 +- 0.34; the bounds below sit 4 or more standard deviations from those means."""
    from course_lib.metrics.unbiased import fid_infinity

    d = 64
    truth = d * 0.2**2 + d * (1 - 0.6) ** 2
    reference = Statistics(np.full(d, 0.2), 0.36 * np.eye(d), 10**9)
    x = np.random.default_rng(0).normal(size=(2000, d))
    plain_small = frechet_distance(x[:200].mean(0), np.cov(x[:200], rowvar=False), reference.mu, reference.sigma)
    result = fid_infinity(_features(x), reference)
    assert plain_small - truth > 2.0  # biased upward at small N
    assert abs(result.value - truth) < 0.5
    assert abs(result.value - truth) < (plain_small - truth) / 5
    fit = result.details["extrapolation"]
    assert fit.slope > 0 and len(fit.counts) == 15 and fit.counts[0] == 200
    assert result.metric == "FID_inf" and result.n == (2000, 10**9)


def test_inception_score_infinity_removes_the_sample_size_bias_of_known_class_probabilities():
    """Images of K = 200 types, type t with probability pi_t (pi proportional to 1 + sin(t)/2), each classified as
    p(y|x) = 0.7 onehot(t) + 0.3 / K: IS = exp(sum_t pi_t KL(p_t || sum_s pi_s p_s)) in closed form (21.71). The
    marginal estimated from N images has too little entropy, so IS_N is biased low: in a simulation over 20 data sets
    IS_400 erred by -2.44 +- 0.23 (sd), IS_4000 by -0.25 +- 0.05 and IS_inf from 4,000 images by -0.01 +- 0.06;
    the bounds below are 4 or more standard deviations from those means."""
    from course_lib.metrics.inception_score import inception_score_from_probabilities
    from course_lib.metrics.unbiased import inception_score_infinity

    k, eps, n = 200, 0.3, 4000
    pi = 1 + 0.5 * np.sin(np.arange(k))
    pi /= pi.sum()
    per_type = (1 - eps) * np.eye(k) + eps / k
    marginal = pi @ per_type
    truth = float(np.exp(np.sum(pi[:, None] * per_type * np.log(per_type / marginal[None, :]))))
    types = np.random.default_rng(100).choice(k, size=n, p=pi)
    probabilities = per_type[types]
    small = inception_score_from_probabilities(probabilities[:400], splits=1)[0]
    result = inception_score_infinity(probabilities, probabilities=True)
    assert small - truth < -1.5  # biased downward at small N
    assert abs(result.value - truth) < 0.25
    assert abs(result.value - truth) < abs(result.details["is_at_n"] - truth)
    # From logits: the same numbers (log-softmax of log-probabilities gives the probabilities back).
    from_logits = inception_score_infinity(np.log(probabilities))
    assert from_logits.value == pytest.approx(result.value, rel=1e-9)


def test_binomial_interval_is_scipys_wilson_interval():
    """The proportions of the reports (accuracies, base rates, fractions of samples) get Wilson's interval: checked
    against scipy's own implementation (scipy.stats.binomtest(...).proportion_ci(method="wilson"))."""
    from scipy.stats import binomtest

    from course_lib.metrics.uncertainty import binomial_interval

    for successes, n, level in [(447, 911, 0.95), (0, 1000, 0.95), (1000, 1000, 0.95), (70, 911, 0.9), (3, 7, 0.99)]:
        ours = binomial_interval(successes, n, level)
        theirs = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
        assert ours.low == pytest.approx(theirs.low, abs=1e-12) and ours.high == pytest.approx(theirs.high, abs=1e-12)
        assert ours.n == n and ours.level == level
    assert binomial_interval(0, 1000).high > 0  # no zero-width interval at 0 successes (the normal one has)
    for bad in [(5, 0), (-1, 10), (11, 10), (2.5, 10), (True, 10)]:
        with pytest.raises(MetricInputError):
            binomial_interval(*bad)
