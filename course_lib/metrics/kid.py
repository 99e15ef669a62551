"""Kernel Inception Distance (Binkowski et al. 2018).

The squared maximum mean discrepancy between the two feature distributions, with the polynomial
kernel k(x, y) = (x.y / d + 1)^3 (d = feature dimension), estimated without bias:

    MMD^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j) - 2/m^2 sum_{i, j} k(x_i, y_j)

Unlike FID it has an unbiased estimator, so it is fair to compare at small sample counts (it can be
slightly negative when the sets are alike). As in the reference code, it is averaged over `subsets`
random subsets of `subset_size` images from each side (drawn without replacement from a
numpy RandomState(seed): first from the first set, then from the second); mean and std are reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import MetricInputError
from .features import as_numpy64, features_of_pair
from .options import FeatureOptions
from .results import MetricResult


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/d by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> float:
    """The unbiased MMD^2 estimate above for two equally sized samples (m, d)."""
    m = len(x)
    if m < 2 or len(y) != m:
        raise MetricInputError(f"MMD needs two samples of the same size >= 2, got {len(x)} and {len(y)}")
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid_disjoint_blocks(
    features_1, features_2, blocks: int, degree: int = 3, gamma: float | None = None, coef0: float = 1.0, seed: int = 0
) -> list[float]:
    """The unbiased MMD^2 on `blocks` disjoint blocks of each set (block size min(n1, n2) // blocks, rows in a seeded
    random order). Unlike kid_from_features' overlapping subsets, the block values are independent, so a t-interval
    over them (uncertainty.seeds_interval) is an honest interval for KID; the estimate is unbiased at any block
    size, so their mean estimates the same MMD^2 as KID on all samples."""
    f1, f2 = as_numpy64(features_1), as_numpy64(features_2)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise MetricInputError(f"features must be (N, D) arrays of the same D, got {f1.shape} and {f2.shape}")
    size = min(len(f1), len(f2)) // blocks if blocks >= 1 else 0
    if blocks < 2 or size < 2:
        raise MetricInputError(
            f"{blocks} disjoint blocks of {len(f1)} and {len(f2)} rows: need >= 2 blocks of >= 2 rows"
        )
    rng = np.random.RandomState(seed)
    a, b = f1[rng.permutation(len(f1))], f2[rng.permutation(len(f2))]
    return [
        mmd2_unbiased(a[i * size : (i + 1) * size], b[i * size : (i + 1) * size], degree, gamma, coef0)
        for i in range(blocks)
    ]


def kid_from_features(
    features_1,
    features_2,
    subsets: int = 100,
    subset_size: int | None = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over random subsets. subset_size None: min(1000, n1, n2)."""
    f1, f2 = as_numpy64(features_1), as_numpy64(features_2)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise MetricInputError(f"features must be (N, D) arrays of the same D, got {f1.shape} and {f2.shape}")
    n1, n2 = len(f1), len(f2)
    if subset_size is None:
        subset_size = min(1000, n1, n2)
    if subset_size < 2 or subset_size > min(n1, n2):
        raise MetricInputError(
            f"KID subset_size {subset_size} must be between 2 and the smaller set's size "
            f"({n1} and {n2} images); pass a smaller subset_size or more images"
        )
    if subsets < 1:
        raise MetricInputError(f"subsets must be at least 1, got {subsets}")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        a = f1[rng.choice(n1, subset_size, replace=False)]
        b = f2[rng.choice(n2, subset_size, replace=False)]
        values[i] = mmd2_unbiased(a, b, degree, gamma, coef0)
    return float(values.mean()), float(values.std())


def kid(
    a: Any,
    b: Any,
    *,
    subsets: int = 100,
    subset_size: int | None = None,
    options: FeatureOptions | None = None,
    **settings,
) -> MetricResult:
    """KID (mean ± std over `subsets` random subsets of `subset_size`) between two image sets or FeatureSets.

    `options` / `settings`: the shared metric settings (`FeatureOptions`); its `seed` also draws the subsets.
    """
    opts = FeatureOptions.of(options, **settings)
    fa, fb = features_of_pair(a, b, opts)
    mean, std = kid_from_features(fa.features, fb.features, subsets, subset_size, seed=opts.seed)
    return MetricResult("KID", mean, std, fa.extractor_label, fa.comparable_with_inception, (len(fa), len(fb)))
