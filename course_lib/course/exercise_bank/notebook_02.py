"""Notebook 02 (the GAN loss and divergences): the optimal discriminator and the Jensen-Shannon divergence."""

import numpy as np
from scipy.integrate import trapezoid

from course_lib.course import toy
from course_lib.course.exercise_bank import Exercise, register

GRID = np.linspace(-8, 12, 4001)  # the notebook's integration grid for 1-D densities


def _real_on_top_flipped(p_real, p_gen):
    total = p_real + p_gen
    return np.where(total > 0, p_gen / np.where(total > 0, total, 1), 0.5)


def _no_zero_guard(p_real, p_gen):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(p_real, float) / (np.asarray(p_real, float) + np.asarray(p_gen, float))


register(
    Exercise(
        name="my_optimal_discriminator",
        notebook="02_gan_loss_and_divergences",
        reference=toy.optimal_discriminator,
        cases=lambda: [
            (toy.gaussian_density(GRID, 3.0), toy.gaussian_density(GRID, 0.0)),
            (toy.uniform_density(GRID, 0.0), toy.uniform_density(GRID, 0.5)),  # includes points where both are 0
            (np.array([0.2, 0.0, 1.0]), np.array([0.2, 0.5, 0.0])),
        ],
        mistakes={
            "D* is the probability that x is *real*: the real density goes on top of the fraction": (
                _real_on_top_flipped
            ),
            "where both densities are 0 the fraction is 0/0 (nan): return 0.5 there, e.g. with np.where": (
                _no_zero_guard
            ),
        },
        fallback="toy.optimal_discriminator",
    )
)


def _half_kl_terms(a, m):  # a log(a / m), with 0 log 0 = 0
    return np.where(a > 0, a * np.log(np.where(a > 0, a, 1) / m), 0.0)


register(
    Exercise(
        name="my_js_divergence",
        notebook="02_gan_loss_and_divergences",
        reference=toy.js_divergence,
        cases=lambda: [
            (toy.gaussian_density(GRID, 0.0), toy.gaussian_density(GRID, 1.0), GRID),
            (toy.gaussian_density(GRID, 0.0), toy.gaussian_density(GRID, 0.0, 2.0), GRID),
            (toy.uniform_density(GRID, 0.0), toy.uniform_density(GRID, 0.5), GRID),
            (toy.uniform_density(GRID, 0.0), toy.uniform_density(GRID, 3.0), GRID),  # disjoint supports: log 2
        ],
        mistakes={
            "D_JS has two halves, 1/2 KL[p || m] + 1/2 KL[q || m]; you returned only the first": lambda p, q, x: (
                0.5 * trapezoid(_half_kl_terms(p, 0.5 * (p + q)), x)
            ),
            "integrate with trapezoid(integrand, x): a plain sum leaves out the grid spacing dx": lambda p, q, x: (
                0.5 * np.sum(_half_kl_terms(p, 0.5 * (p + q)) + _half_kl_terms(q, 0.5 * (p + q)))
            ),
        },
        rtol=1e-6,
        atol=1e-9,
        fallback="toy.js_divergence",
    )
)
