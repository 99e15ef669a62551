"""Intervals of the report tables (issue 31: no shipped table lacks its sample size and uncertainty).

The helpers are checked against independent references (scipy's Wilson and t intervals, a plain k-NN pass per
bootstrap resample); the shipped reports are checked to print an interval in every metric cell and to hold its
bounds and n in the JSON, so a report table without intervals fails here."""

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.metrics.errors import MetricInputError
from course_lib.metrics.precision_recall import precision_recall_from_features, precision_recall_intervals
from course_lib.metrics.uncertainty import (
    Interval,
    bootstrap_interval,
    interval_cell,
    interval_record,
    mean_interval,
    wilson_interval,
)


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (3, 10), (577, 1000), (1000, 1000), (1, 2)])
def test_wilson_interval_is_scipys(successes, n):
    ours = wilson_interval(successes, n)
    theirs = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours.low == pytest.approx(theirs.low, abs=1e-12) and ours.high == pytest.approx(theirs.high, abs=1e-12)
    assert ours.n == n and "Wilson" in ours.method


def test_wilson_interval_refuses_impossible_counts():
    for successes, n in [(5, 4), (-1, 4), (0, 0)]:
        with pytest.raises(MetricInputError, match="successes"):
            wilson_interval(successes, n)


def test_mean_interval_is_scipys_t_interval():
    values = np.random.default_rng(0).normal(3.0, 2.0, 50)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    interval = mean_interval(values)
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)
    assert interval.method == "t over 50 samples" and interval.n == 50


def test_precision_recall_intervals_match_a_knn_pass_per_resample():
    rng = np.random.default_rng(1)
    generated = torch.as_tensor(rng.normal(0.3, 1.0, (60, 4)))
    real = torch.as_tensor(rng.normal(0.0, 1.0, (70, 4)))
    precision, recall = precision_recall_intervals(generated, real, resamples=20, seed=5)

    def plain(which):  # the slow way: a full k-NN pass on each resample, as bootstrap_ci would run it
        return bootstrap_interval(
            lambda index: precision_recall_from_features(generated[torch.as_tensor(index)], real)[which],
            len(generated),
            resamples=20,
            seed=5,
        )

    for ours, theirs in [(precision, plain(0)), (recall, plain(1))]:
        assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), abs=1e-12)
        assert ours.n == 60


def test_interval_cell_and_record():
    symmetric = Interval(11.0, 12.0, 0.95, "bootstrap over 2000 samples, B=200", 2000)
    assert interval_cell(11.5, symmetric, digits=2) == "11.50 ± 0.50"
    lopsided = Interval(0.996, 1.0, 0.95, "Wilson over 1000 samples", 1000)
    assert interval_cell(1.0, lopsided, digits=1, scale=100, unit="%") == "100.0% [99.6%, 100.0%]"
    assert interval_record(symmetric) == {
        "low": 11.0,
        "high": 12.0,
        "level": 0.95,
        "method": "bootstrap over 2000 samples, B=200",
        "n": 2000,
    }
