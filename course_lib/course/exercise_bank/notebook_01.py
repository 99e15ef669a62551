"""Notebook 01 (a GAN in one dimension): the minimax generator gradient."""

import numpy as np

from course_lib.course import toy
from course_lib.course.exercise_bank import Exercise, register


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _cases():
    rng = np.random.default_rng(0)
    return [
        (rng.normal(size=n), theta, np.array(phi))
        for n, theta, phi in [
            (5, 0.0, (0.0, 1.0)),
            (50, -2.0, (-1.5, 2.0)),
            (200, 4.0, (0.3, -0.7)),
            (10, 1.0, (0.0, 0.0)),
        ]
    ]


register(
    Exercise(
        name="my_generator_grad",
        notebook="01_toy_gan_1d",
        reference=toy.generator_grad_1d,
        cases=_cases,
        mistakes={
            "that is the gradient of the non-saturating loss: the minimax gradient has the factor sig[f(x*)], "
            "not 1 - sig[f(x*)]": lambda z, theta, phi: float(
                -np.mean((1 - _sig(phi[0] + phi[1] * (z + theta))) * phi[1])
            ),
            "the chain rule through f(x*) = phi_0 + phi_1 x* brings a factor phi_1": lambda z, theta, phi: float(
                -np.mean(_sig(phi[0] + phi[1] * (z + theta)))
            ),
        },
        fallback="toy.generator_grad_1d",
    )
)
