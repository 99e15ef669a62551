"""Notebook 03 (the Wasserstein distance): the cost of a transport plan, W1 between two samples."""

import numpy as np
from scipy.stats import wasserstein_distance

from course_lib.course import wasserstein as ws
from course_lib.course.exercise_bank import Exercise, register

# the notebook's two histograms on bins 0..9
P = np.array([0.00, 0.05, 0.20, 0.25, 0.10, 0.00, 0.05, 0.15, 0.20, 0.00])
Q = np.array([0.10, 0.15, 0.05, 0.00, 0.05, 0.20, 0.30, 0.10, 0.05, 0.00])


def _bins_cost(plan):  # C_ij = |i - j| from course_lib, for any plan shape
    return ws.cost_matrix(np.arange(plan.shape[0]), np.arange(plan.shape[1]))


def _plan_cases():
    rng = np.random.default_rng(3)
    return [(np.outer(P, Q),), (np.diag(P),), (rng.random((4, 6)),), (rng.random((1, 5)),)]


def _square_from_rows(plan):  # a cost matrix built as if the plan were n x n, n = its number of rows
    n = plan.shape[0]
    return float(np.sum(plan * np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])))


def _not_square(exc, args, kwargs):
    plan = np.asarray(args[0] if args else kwargs["plan"])
    return isinstance(exc, (ValueError, IndexError)) and plan.ndim == 2 and plan.shape[0] != plan.shape[1]


_SQUARE_HINT = (
    "a plan need not be square: an n x m plan moves mass from n bins to m bins, so build |i - j| from both "
    "plan.shape[0] and plan.shape[1] (e.g. np.indices(plan.shape))"
)

register(
    Exercise(
        name="my_plan_cost",
        notebook="03_wasserstein_distance",
        reference=lambda plan: float(np.sum(plan * _bins_cost(plan))),
        cases=_plan_cases,
        mistakes={
            "moving mass costs the distance |i - j|, which is never negative": lambda plan: float(
                np.sum(plan * (np.indices(plan.shape)[0] - np.indices(plan.shape)[1]))
            ),
            "W1 costs |i - j| per unit of mass, not (i - j)² (that is the cost of the 2-Wasserstein distance)": (
                lambda plan: float(np.sum(plan * _bins_cost(plan) ** 2))
            ),
            _SQUARE_HINT: _square_from_rows,
        },
        error_hints={_SQUARE_HINT: _not_square},
    )
)


def _sample_cases():
    rng = np.random.default_rng(7)
    return [
        (rng.normal(0, 1, n), rng.normal(shift, 2, n)) for n, shift in [(1, 0.0), (5, 1.0), (50, -2.0), (1000, 0.5)]
    ]


register(
    Exercise(
        name="my_wasserstein_samples",
        notebook="03_wasserstein_distance",
        reference=wasserstein_distance,
        cases=_sample_cases,
        mistakes={
            "sort both samples first: the k-th smallest value of one goes to the k-th smallest of the other": (
                lambda a, b: float(np.mean(np.abs(a - b)))
            ),
            "you sorted only one of the two samples: sort both": lambda a, b: float(np.mean(np.abs(np.sort(a) - b))),
        },
        rtol=1e-7,
        atol=1e-9,
        fallback="scipy.stats.wasserstein_distance",
    )
)
