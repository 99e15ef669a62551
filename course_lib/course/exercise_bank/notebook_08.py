"""Notebook 08 (improving GANs): the discriminator's loss with one-sided label smoothing."""

import torch
import torch.nn.functional as F

from course_lib.course.exercise_bank import Exercise, register
from course_lib.nn.losses import discriminator_bce, discriminator_bce_smoothed


def _cases():
    gen = torch.Generator().manual_seed(0)
    return [
        (torch.randn(n, generator=gen) * s, torch.randn(n, generator=gen) * s, t)
        for n, s, t in [(8, 1.0, 0.9), (64, 4.0, 0.9), (16, 2.0, 0.7), (4, 1.0, 1.0)]
    ]


register(
    Exercise(
        name="my_smoothed_discriminator_loss",
        notebook="08_improving_gans",
        reference=discriminator_bce_smoothed,
        cases=_cases,
        mistakes={
            "one-sided: only the real images' target moves to real_target; the fakes keep target 0": (
                lambda real, fake, t: (
                    discriminator_bce_smoothed(real, fake, t)
                    + ((1 - t) * (F.softplus(-fake) - F.softplus(fake))).mean()
                )
            ),
            "your loss does not use real_target: the real images' target is real_target, not 1": (
                lambda real, fake, t: discriminator_bce(real, fake)
            ),
        },
        rtol=1e-5,
        atol=1e-6,
        fallback="the trainer's own loss (label_smoothing=0.1)",
    )
)
