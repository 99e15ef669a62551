"""Notebook 07 (evaluating GANs): the unbiased MMD² of KID, precision from k-nearest-neighbour balls."""

import numpy as np

from course_lib.course.exercise_bank import Exercise, register
from course_lib.metrics.kid import mmd2_unbiased
from course_lib.metrics.precision_recall import precision_recall_from_features


def _kernel(a, b):  # KID's cubic polynomial kernel
    return (a @ b.T / a.shape[1] + 1) ** 3


def _kernel_mean(a, b):  # the mean of k(a_i, b_j) over all pairs, i = j included
    return float(np.mean(_kernel(a, b)))


def _diagonal_out_over_m_squared(x, y):
    m = len(x)
    k_xx, k_yy = _kernel(x, x), _kernel(y, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / m**2
    return float(within - 2 * _kernel(x, y).sum() / m**2)


def _mmd_cases():
    rng = np.random.default_rng(1)
    return [
        (rng.standard_normal((5, 3)), rng.standard_normal((5, 3)) + 1),
        (rng.standard_normal((40, 8)), rng.standard_normal((40, 8))),
    ]


register(
    Exercise(
        name="mmd2",
        notebook="07_evaluation",
        reference=mmd2_unbiased,
        cases=_mmd_cases,
        mistakes={
            "leave out the i = j terms of the two within-set sums (divide by m(m - 1)): keeping them is the biased "
            "estimate": lambda x, y: _kernel_mean(x, x) + _kernel_mean(y, y) - 2 * _kernel_mean(x, y),
            "you removed the i = j terms but still divide by m²: m(m - 1) pairs are left in each within-set sum, so "
            "divide those by m(m - 1) (the cross-set sum keeps all m² pairs)": _diagonal_out_over_m_squared,
            "the kernel divides the dot product by the dimension d: k(a, b) = (a·b / d + 1)³": lambda x, y: float(
                mmd2_unbiased(x * np.sqrt(x.shape[1]), y * np.sqrt(x.shape[1]))
            ),
        },
        rtol=1e-8,
        fallback="metrics.kid",
    )
)


def _radii_and_fraction(points, centres, k_index):
    radii = np.sort(np.linalg.norm(centres[:, None] - centres[None], axis=2), axis=1)[:, k_index]
    return float(np.mean((np.linalg.norm(points[:, None] - centres[None], axis=2) <= radii).any(axis=1)))


def _precision_cases():
    rng = np.random.default_rng(4)
    return [
        (rng.standard_normal((30, 4)) + 0.5, rng.standard_normal((40, 4))),
        (rng.standard_normal((50, 2)) * 2, rng.standard_normal((20, 2)), 5),
        (rng.standard_normal((10, 8)), rng.standard_normal((10, 8)), 1),
    ]


register(
    Exercise(
        name="my_precision",
        notebook="07_evaluation",
        reference=lambda g, r, k=3: precision_recall_from_features(g, r, k)[0],
        cases=_precision_cases,
        mistakes={
            "the nearest point to a real point is itself (distance 0): its k-th nearest *other* point is at index k "
            "of the sorted distances, not k - 1": lambda g, r, k=3: _radii_and_fraction(g, r, k - 1),
            "precision puts the balls around the *real* points and counts generated points inside; you computed "
            "recall": lambda g, r, k=3: _radii_and_fraction(r, g, k),
        },
        fallback="metrics.precision_recall",
    )
)
