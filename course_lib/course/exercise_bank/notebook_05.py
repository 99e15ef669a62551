"""Notebook 05 (an MLP GAN on MNIST): the discriminator's loss from logits."""

import torch
import torch.nn.functional as F

from course_lib.course.exercise_bank import Exercise, register
from course_lib.nn.losses import discriminator_bce


def _cases():
    gen = torch.Generator().manual_seed(0)
    return [
        (torch.randn(n, generator=gen) * s, torch.randn(n, generator=gen) * s) for n, s in [(4, 1), (64, 5), (8, 40)]
    ]


register(
    Exercise(
        name="my_discriminator_loss",
        notebook="05_mlp_gan_mnist",
        reference=discriminator_bce,
        cases=_cases,
        mistakes={
            "the labels are swapped: real images have target 1 (loss softplus(-logit)), fakes target 0 "
            "(loss softplus(logit))": lambda real, fake: F.softplus(real).mean() + F.softplus(-fake).mean(),
            "log of a probability rounded to 0 or 1 (here for logits of about ±40): use the softplus forms of the "
            "hint": lambda real, fake: (
                -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
            ),
        },
        rtol=1e-5,
        atol=1e-6,
        fallback="course_lib.nn.losses.discriminator_bce",
    )
)
