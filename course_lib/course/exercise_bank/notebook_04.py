"""Notebook 04 (WGAN on toy data): the high-quality fraction of samples, the gradient penalty."""

import numpy as np
import torch

from course_lib.course import toy
from course_lib.course.exercise_bank import Exercise, register
from course_lib.nn.losses import gradient_penalty


def _reference_high_quality_fraction(samples, centres, std):
    return toy.mode_coverage(samples, toy.GaussianMixture2D("check", centres, std)).high_quality_fraction


def _fraction_cases():
    ring, grid = toy.ring_mixture(), toy.grid_mixture()
    rng = np.random.default_rng(0)
    return [
        (ring.sample(500, seed=1), ring.centres, ring.std),
        (grid.sample(500, seed=2) + rng.normal(0, 0.1, (500, 2)), grid.centres, grid.std),
        (rng.uniform(-5, 5, (300, 2)), grid.centres, grid.std),
    ]


def _distances_to_centres(samples, centres):  # (N, K)
    return np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=2)


register(
    Exercise(
        name="my_high_quality_fraction",
        notebook="04_wgan_toy",
        reference=_reference_high_quality_fraction,
        cases=_fraction_cases,
        mistakes={
            "for each sample take the distance to its *nearest* centre (min over the centres) before comparing "
            "with 3 std": lambda s, c, std: float(np.mean(_distances_to_centres(s, c) <= 3 * std)),
            "the quality zone reaches 3 standard deviations from a centre, not 1": lambda s, c, std: float(
                np.mean(_distances_to_centres(s, c).min(axis=1) <= std)
            ),
        },
        fallback="toy.mode_coverage",
    )
)


def _penalty_cases():
    torch.manual_seed(0)
    critic = toy.ToyCritic(hidden=16)
    return [
        dict(critic=critic, real=torch.randn(n, 2), fake=torch.randn(n, 2) * 2, alpha=torch.rand(n, 1))
        for n in (1, 8, 64)
    ]


def _critic_gradient(critic, x):
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(critic(x).sum(), x)[0]


register(
    Exercise(
        name="my_gradient_penalty",
        notebook="04_wgan_toy",
        reference=gradient_penalty,
        cases=_penalty_cases,
        mistakes={
            "take one gradient norm per sample (grad.norm(dim=1)), not one norm of the whole batch's gradient": (
                lambda critic, real, fake, alpha: (
                    (_critic_gradient(critic, alpha * real + (1 - alpha) * fake).norm() - 1) ** 2
                )
            ),
            "evaluate the gradient at the interpolates alpha * real + (1 - alpha) * fake, not at the real points": (
                lambda critic, real, fake, alpha: ((_critic_gradient(critic, real).norm(dim=1) - 1) ** 2).mean()
            ),
        },
        rtol=1e-5,
        atol=1e-7,
        fallback="course_lib.nn.losses.gradient_penalty",
    )
)
