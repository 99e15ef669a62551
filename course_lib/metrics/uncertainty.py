"""Confidence intervals for metric values: a bootstrap over the generated samples, and a t-interval over seeds.

A metric computed from n generated samples is itself a random quantity: another n samples would give
another number. Two intervals say how far it could move:

- **bootstrap over samples** (`bootstrap_interval`, `bootstrap_ci`): resample the n samples' features with
  replacement B times (seeded), recompute the metric on each resample, and take the percentile interval
  (the (1 - level)/2 and (1 + level)/2 quantiles of the B values; Efron & Tibshirani 1993, ch. 13). The
  reference side is held fixed: the interval is the uncertainty due to the generated samples only. It
  describes the spread of the estimator at this n, not its bias: FID and IS are biased at finite n (see
  `unbiased` for the extrapolation to n = infinity). For k-NN metrics whose radii are computed among the
  generated samples (recall, 1-NN accuracy) a resample's duplicates shrink those radii, so their bootstrap
  intervals are rougher than for FID, IS, KID or precision.
- **t-interval over seeds** (`seeds_interval`): k independent runs (training seeds) give k values; the
  mean's interval is mean ± t_{k-1, (1+level)/2} s / sqrt(k). This is the uncertainty a report with seeds
  should print: it contains the training's randomness, which no resampling of one run's samples can.

Both return an `Interval`; `with_interval` puts one into a `MetricResult`, which then prints as
`FID = 12.3000 ± 0.4100 (95% CI, n=2000)`.

    from course_lib import metrics
    from course_lib.metrics.uncertainty import bootstrap_ci
    gen = metrics.extract_features(generator, "mnist", n_samples=2000)
    print(bootstrap_ci(metrics.fid, gen, "mnist:test", resamples=200, extractor="mnist"))  # FID = ... ± ...
    print(metrics.fid(generator, "mnist:test", extractor="mnist", n_samples=2000, ci=0.95))  # the same, in one call
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import MetricInputError
from .features import FeatureSet
from .results import MetricResult

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 200


@dataclass(frozen=True)
class Interval:
    """A confidence interval [low, high] at `level`, from `method` over `n` samples or seeds."""

    low: float
    high: float
    level: float
    method: str
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def _check_level(level: float) -> float:
    if not isinstance(level, (int, float)) or not 0 < level < 1:
        raise MetricInputError(f"a confidence level must lie strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    return float(level)


def _check_resamples(resamples: int) -> int:
    if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 10:
        raise MetricInputError(f"bootstrap needs at least 10 resamples (200 is usual), got {resamples!r}")
    return resamples


def check_settings(level: float | None, resamples: int) -> None:
    """Raise MetricInputError now for a confidence level or resample count that an interval would refuse later."""
    if level is not None:
        _check_level(level)
        _check_resamples(resamples)


def percentile_interval(replicates: Sequence[float], level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The (1 - level)/2 and (1 + level)/2 quantiles of bootstrap replicates (non-finite ones are an error)."""
    values = np.asarray(replicates, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise MetricInputError(f"{bad} of {len(values)} bootstrap replicates are NaN or infinite; no interval")
    tail = (1 - _check_level(level)) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of `statistic(index)`, index being n draws with replacement from range(n).

    Resample b uses its own generator seeded (seed, b), so an interval is reproduced exactly by its seed
    and a larger B extends a smaller one instead of replacing it.
    """
    resamples = _check_resamples(resamples)
    if n < 2:
        raise MetricInputError(f"a bootstrap needs at least 2 samples, got {n}")
    replicates = [float(statistic(np.random.default_rng([seed, b]).integers(0, n, n))) for b in range(resamples)]
    low, high = percentile_interval(replicates, level)
    return Interval(low, high, level, f"bootstrap over {n} samples, B={resamples}", n)


def _value(result: Any) -> float:
    """The number a metric function returned: a MetricResult, a float, or an object with `.value`."""
    if isinstance(result, MetricResult):
        return result.value
    if hasattr(result, "value"):
        return float(result.value)
    return float(result)


def bootstrap_ci(
    metric: Callable[..., Any],
    features,
    *args,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    value: Callable[[Any], float] = _value,
    **kwargs,
) -> MetricResult:
    """`metric(features, *args, **kwargs)` with a bootstrap interval over the rows of `features` (a FeatureSet).

    `metric` is any metric function whose first argument is the generated side (fid, inception_score, kid,
    ...); the other arguments (the reference: pass Statistics for FID, so the reference covariance is not
    recomputed B times) stay fixed. `value` picks the number from what `metric` returns (default: `.value`,
    or the float itself). Returns the point estimate on all samples as a MetricResult carrying the interval.
    """
    if not isinstance(features, FeatureSet):
        raise MetricInputError(
            "bootstrap_ci resamples features: pass a FeatureSet (metrics.extract_features(images, extractor))"
        )
    point = metric(features, *args, **kwargs)
    interval = bootstrap_interval(
        lambda index: value(metric(features.subset(torch.as_tensor(index)), *args, **kwargs)),
        len(features),
        resamples=resamples,
        level=level,
        seed=seed,
    )
    if not isinstance(point, MetricResult):
        point = MetricResult(getattr(metric, "__name__", "metric"), value(point), n=(len(features),))
    return with_interval(point, interval)


def with_interval(result: MetricResult, interval: Interval | None) -> MetricResult:
    """A copy of `result` carrying `interval` (None: unchanged)."""
    if interval is None:
        return result
    return dataclasses.replace(
        result,
        ci_low=interval.low,
        ci_high=interval.high,
        ci_level=interval.level,
        ci_method=interval.method,
        ci_n=interval.n,
    )


def seeds_interval(values: Sequence[float], level: float = DEFAULT_LEVEL) -> Interval:
    """t-interval of the mean of k values from independent runs: mean ± t_{k-1,(1+level)/2} * s / sqrt(k)."""
    from scipy import stats  # imported here: scipy is heavy and only intervals over seeds need it

    x = np.asarray(list(values), dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise MetricInputError(f"an interval over seeds needs at least 2 values, got {len(x.ravel())}")
    if not np.isfinite(x).all():
        raise MetricInputError("values over seeds contain NaN or infinite entries (a diverged run?)")
    level = _check_level(level)
    mean, sem = float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1)) * sem
    return Interval(mean - half, mean + half, level, f"t over {len(x)} seeds", len(x))


def welch_difference(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """(mean(a) - mean(b), half-width of Welch's t-interval for it): whether two sets of runs (seeds) differ.
    None unless both have two values or more."""
    from scipy import stats  # imported here, as in seeds_interval

    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    diff = float(np.mean(a) - np.mean(b))
    if va + vb == 0:
        return diff, 0.0
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return diff, float(stats.t.ppf(0.5 + level / 2, dof) * math.sqrt(va + vb))


def seeds_result(
    values: Sequence[float], metric: str = "metric", level: float = DEFAULT_LEVEL, **result_fields
) -> MetricResult:
    """The mean over seeds as a MetricResult with its t-interval (prints `mean ± half (95% CI, n=k)`)."""
    interval = seeds_interval(values, level)
    x = np.asarray(list(values), dtype=np.float64)
    std = float(x.std(ddof=1))
    return with_interval(MetricResult(metric, float(x.mean()), std, **result_fields), interval)


def seeds_text(values: Sequence[float], digits: int = 3, level: float = DEFAULT_LEVEL, scale: float = 1.0) -> str:
    """A table cell for a value over seeds: `mean ± half-width (95% CI, n=k seeds)` (`scale`: e.g. 1000 for KID)."""
    interval = seeds_interval(values, level)
    mean = float(np.mean(np.asarray(list(values), dtype=np.float64)))
    return (
        f"{mean * scale:.{digits}f} ± {interval.half_width * scale:.{digits}f} "
        f"({100 * interval.level:g}% CI, n={interval.n} seeds)"
    )


# ------------------------------------------------------------------------------ the evaluator's hook
# Metric classes computed from the samples' features alone (and the fixed reference): the ones a bootstrap over
# the samples can recompute. Latent-space metrics (Lipschitz, PPL) need the generator and get no interval.
RESAMPLABLE_NEEDS = ("features", "logits", "reference")


def evaluator_intervals(evaluator, features, values: dict) -> dict[str, Interval]:
    """Bootstrap intervals of every resamplable metric of a GeneratorEvaluator (its `ci` and `bootstrap`
    settings), from the samples' features, the reference held fixed. Seeded by the evaluator's seed."""
    names = [
        name
        for name, cls in evaluator.metric_classes.items()
        if cls.needs in RESAMPLABLE_NEEDS and values.get(name) is not None and math.isfinite(values[name])
    ]
    if not names:
        return {}
    replicates: dict[str, list[float]] = {name: [] for name in names}
    n, resamples = len(features), _check_resamples(evaluator.bootstrap)
    for b in range(resamples):
        index = torch.as_tensor(np.random.default_rng([evaluator.seed, b]).integers(0, n, n))
        scored = evaluator.score_resampled(features.subset(index))
        for name in names:
            replicates[name].append(float(scored[name]))
    out = {}
    for name in names:
        low, high = percentile_interval(replicates[name], evaluator.ci)
        out[name] = Interval(low, high, evaluator.ci, f"bootstrap over {n} samples, B={resamples}", n)
    return out


def evaluator_results(evaluator) -> dict[str, MetricResult]:
    """A GeneratorEvaluator's last values as MetricResults, with their intervals and the evaluator's protocol."""
    values, intervals = evaluator.last_values, evaluator.last_intervals
    protocol = evaluator.protocol if evaluator.extractor is not None else ""
    out = {}
    for name in evaluator.metrics:
        if name not in values or values[name] is None:
            continue
        cls = evaluator.metric_classes.get(name)
        result = MetricResult(
            cls.label if cls is not None and cls.label else name,
            float(values[name]),
            extractor=evaluator.label,
            comparable_with_inception=bool(getattr(evaluator.extractor, "comparable_with_inception", False)),
            n=(evaluator.last_count,),
            protocol=protocol,
        )
        out[name] = with_interval(result, intervals.get(name))
    return out


def binomial_interval(successes: int, n: int, level: float = DEFAULT_LEVEL) -> Interval:
    """Wilson score interval of a proportion successes / n (Wilson 1927): an accuracy, a base rate, the fraction of
    samples a classifier calls positive. Unlike the normal approximation p ± z sqrt(p(1-p)/n) it stays inside
    [0, 1] and does not collapse to a zero-width interval at 0 or n successes."""
    from scipy import stats  # imported here, as in seeds_interval

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise MetricInputError(f"a proportion needs a whole number of trials n >= 1, got {n!r}")
    if isinstance(successes, bool) or not isinstance(successes, (int, np.integer)) or not 0 <= successes <= n:
        raise MetricInputError(f"successes must be a whole number from 0 to n = {n}, got {successes!r}")
    level = _check_level(level)
    z = float(stats.norm.ppf((1 + level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(max(0.0, centre - half), min(1.0, centre + half), level, f"Wilson over {n} samples", int(n))


# ------------------------------------------------------------------------------ intervals for report tables
def mean_interval(values: Sequence[float], level: float = DEFAULT_LEVEL) -> Interval:
    """t-interval of the mean of n per-sample values (e.g. a path length per latent pair, a pixel mean per image)."""
    interval = seeds_interval(values, level)  # the same formula: mean ± t_{n-1} s / sqrt(n)
    return dataclasses.replace(interval, method=f"t over {interval.n} samples")


def interval_cell(value: float, interval: Interval, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """A table cell: `value ± half-width` when the interval is symmetric about the value (within a tenth of its
    half-width), else `value [low, high]` (a bootstrap or Wilson interval near a bound is not symmetric)."""
    low, high, half = interval.low * scale, interval.high * scale, interval.half_width * scale
    shown = value * scale
    if abs((low + high) / 2 - shown) <= max(0.1 * half, 0.5 * 10**-digits):  # symmetric, or as printed
        return f"{shown:.{digits}f}{unit} ± {half:.{digits}f}{unit}"
    return f"{shown:.{digits}f}{unit} [{low:.{digits}f}{unit}, {high:.{digits}f}{unit}]"


def spread_interval(
    value: float, replicates: Sequence[float], level: float = DEFAULT_LEVEL, what: str = ""
) -> Interval:
    """value ± t_{k-1,(1+level)/2} s: the interval of one estimate from the spread s of k independent replicates of
    it (e.g. recall on k fresh draws of n samples), for metrics a bootstrap over samples gets wrong: resampling with
    replacement duplicates samples, which shrinks the k-NN radii recall is measured with, so its bootstrap
    replicates sit well below the estimate. (value - mean) / s follows t_{k-1} when value is independent of s."""
    from scipy import stats  # imported here, as in seeds_interval

    x = np.asarray(list(replicates), dtype=np.float64)
    if x.ndim != 1 or len(x) < 2 or not np.isfinite(x).all():
        raise MetricInputError(f"an interval from replicates needs at least 2 finite values, got {x.ravel()[:5]}")
    half = float(stats.t.ppf((1 + _check_level(level)) / 2, len(x) - 1)) * float(x.std(ddof=1))
    method = f"t from the spread over {len(x)} independent draws" + (f" of {what}" if what else "")
    return Interval(value - half, value + half, level, method, len(x))


def interval_record(interval: Interval) -> dict:
    """An interval as a report's JSON holds it next to its value: bounds, level, method and n."""
    return {
        "low": interval.low,
        "high": interval.high,
        "level": interval.level,
        "method": interval.method,
        "n": interval.n,
    }
