"""Effectively unbiased FID and Inception Score: the extrapolation to infinitely many samples of Chong & Forsyth
(2020, "Effectively Unbiased FID and Inception Score and where to find them", CVPR).

FID computed from N generated samples is biased upward, and the bias depends on the generator, so two models'
FID_N can rank them differently than their true FIDs do. Chong & Forsyth show that, to first order, the expected
value is linear in 1/N:

    E[FID_N] = FID_inf + k / N          (k > 0 depends on the generator),

so they compute FID_N at several N (15 counts spaced evenly between 5,000 and 50,000 in the paper), each on a
random subset of the generated samples, fit a straight line in 1/N by least squares, and report its value at
1/N = 0: FID_inf. The Inception Score is biased downward (the marginal p(y) estimated from N images has too
little entropy) and is extrapolated the same way, each IS_N computed on one split of N images.

Here the counts default to `sample_counts(n)`: the paper's 15 points scaled to the samples at hand (from n/10 to
n, as 5k to 50k is for n = 50k). The reference side is held fixed (pass its statistics from as many real images
as you have: its own finite-sample bias is not extrapolated away). What is left is the estimate's variance:
FID_inf from n samples is about as noisy as FID_n (the paper's Sobol-sequence latents, which reduce that
variance, are not used here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import MetricInputError
from .frechet import frechet_distance
from .results import MetricResult
from .score_formulas import inception_score_from_logits, inception_score_from_probabilities
from .stats_cache import Statistics, gaussian_statistics

PAPER_POINTS = 15
PAPER_RANGE = (5_000, 50_000)


@dataclass(frozen=True)
class Extrapolation:
    """The fit value(N) = intercept + slope / N over the sample counts; `intercept` is the value at 1/N = 0."""

    intercept: float
    slope: float
    counts: tuple[int, ...]
    values: tuple[float, ...]


def sample_counts(n: int, points: int = PAPER_POINTS, lowest: int | None = None) -> np.ndarray:
    """`points` sample counts spaced evenly from `lowest` (default n // 10, as the paper's 5k of 50k) to n."""
    if not isinstance(points, int) or points < 3:
        raise MetricInputError(f"an extrapolation in 1/N needs at least 3 sample counts, got {points!r}")
    lowest = max(2, n // 10) if lowest is None else int(lowest)
    if not 2 <= lowest < n:
        raise MetricInputError(f"the smallest sample count must be at least 2 and below the {n} samples, got {lowest}")
    counts = np.unique(np.linspace(lowest, n, points).astype(np.int64))
    if len(counts) < 3:
        raise MetricInputError(f"{n} samples are too few for an extrapolation over {points} sample counts")
    return counts


def extrapolate(counts, values) -> Extrapolation:
    """Least-squares line of `values` against 1 / `counts`, and its value at 1/N = 0."""
    counts = np.asarray(counts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise MetricInputError("a metric value at some sample count is NaN or infinite; no extrapolation")
    design = np.stack([np.ones_like(counts), 1.0 / counts], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, values, rcond=None)
    return Extrapolation(float(intercept), float(slope), tuple(int(c) for c in counts), tuple(float(v) for v in values))


def _subsets(n: int, counts, seed: int):
    """For each count, a random subset of range(n) of that size (without replacement), each from its own seed."""
    for i, count in enumerate(counts):
        yield np.random.default_rng([seed, i]).permutation(n)[: int(count)]


def _as_rows(x, what: str) -> np.ndarray:
    if hasattr(x, "features"):
        x = x.features
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise MetricInputError(f"{what} must be an (N, D) array, got shape {x.shape}")
    return x


def fid_infinity(
    generated,
    reference,
    *,
    counts=None,
    points: int = PAPER_POINTS,
    seed: int = 0,
) -> MetricResult:
    """FID_inf of generated features (a FeatureSet or an (N, D) array) against reference Statistics (or a
    FeatureSet / array of reference features, reduced to their statistics once).

    `counts`: the sample counts N to compute FID_N at (default `sample_counts(N, points)`). The result's
    `details` hold the fit's slope and FID at all N samples; `extrapolation` the counts and values.
    """
    x = _as_rows(generated, "generated features")
    if not isinstance(reference, Statistics):
        mu_r, sigma_r = gaussian_statistics(torch.as_tensor(_as_rows(reference, "reference features")))
        reference = Statistics(mu_r, sigma_r, len(_as_rows(reference, "reference features")))
    if x.shape[1] != reference.dim:
        raise MetricInputError(f"generated features are {x.shape[1]}-d but the reference statistics {reference.dim}-d")
    counts = sample_counts(len(x), points) if counts is None else np.asarray(sorted(set(int(c) for c in counts)))
    if len(counts) < 3 or counts[0] < 2 or counts[-1] > len(x):
        raise MetricInputError(f"need at least 3 distinct sample counts between 2 and {len(x)}, got {counts.tolist()}")

    def fid_of(rows):
        return frechet_distance(rows.mean(0), np.cov(rows, rowvar=False), reference.mu, reference.sigma)

    values = [fid_of(x[index]) for index in _subsets(len(x), counts, seed)]
    fit = extrapolate(counts, values)
    label = getattr(generated, "extractor_label", "")
    return MetricResult(
        "FID_inf",
        fit.intercept,
        extractor=label,
        comparable_with_inception=bool(getattr(generated, "comparable_with_inception", False)),
        n=(len(x), reference.n),
        details={"slope": fit.slope, "fid_at_n": fid_of(x), "extrapolation": fit},
    )


def inception_score_infinity(
    logits,
    *,
    counts=None,
    points: int = PAPER_POINTS,
    seed: int = 0,
    probabilities: bool = False,
) -> MetricResult:
    """IS_inf from class logits (a FeatureSet with logits, or an (N, K) array; `probabilities=True` when the
    array holds p(y|x) instead): IS_N on one split of N images at each count, extrapolated to 1/N = 0."""
    source = logits
    if hasattr(logits, "logits"):
        if logits.logits is None:
            raise MetricInputError("these features have no class logits; IS_inf needs a classifier head")
        logits = logits.logits
    z = _as_rows(logits, "class logits")
    score = inception_score_from_probabilities if probabilities else inception_score_from_logits
    counts = sample_counts(len(z), points) if counts is None else np.asarray(sorted(set(int(c) for c in counts)))
    if len(counts) < 3 or counts[0] < 2 or counts[-1] > len(z):
        raise MetricInputError(f"need at least 3 distinct sample counts between 2 and {len(z)}, got {counts.tolist()}")
    values = [score(z[index], splits=1)[0] for index in _subsets(len(z), counts, seed)]
    fit = extrapolate(counts, values)
    return MetricResult(
        "IS_inf",
        fit.intercept,
        extractor=getattr(source, "extractor_label", ""),
        comparable_with_inception=bool(getattr(source, "comparable_with_inception", False)),
        n=(len(z),),
        details={"slope": fit.slope, "is_at_n": score(z, splits=1)[0], "extrapolation": fit},
    )
