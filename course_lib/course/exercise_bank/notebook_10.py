"""Notebook 10 (truncation and interpolation): the fraction of latents the truncation trick ignores."""

import math

from course_lib.course.exercise_bank import Exercise, register
from course_lib.latent.space import rejected_fraction

register(
    Exercise(
        name="ignored_fraction",
        notebook="10_truncation_and_interpolation",
        reference=lambda tau, d: rejected_fraction(tau, d, rule="vector"),
        cases=lambda: [(2.0, 100), (1.0, 100), (0.5, 1), (0.04, 100), (3.0, 7)],
        mistakes={
            "that is one component; the vector is ignored when *any* of its d components is beyond tau": (
                lambda tau, d: math.erfc(tau / math.sqrt(2))
            ),
            "the components are independent: P(all inside) = (1 - p)^d, so the ignored fraction is 1 - (1 - p)^d, "
            "not d p": lambda tau, d: d * math.erfc(tau / math.sqrt(2)),
            "|z_i| > tau has two tails: the per-component fraction is 2 Phi(-tau) = erfc(tau / sqrt 2)": (
                lambda tau, d: 1 - (1 - 0.5 * math.erfc(tau / math.sqrt(2))) ** d
            ),
        },
        rtol=1e-9,
        fallback="course_lib.latent.rejected_fraction",
    )
)
