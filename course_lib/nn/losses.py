"""GAN losses, all computed from the discriminator's raw logits.

Working with logits instead of probabilities uses log(sigmoid(l)) = -softplus(-l) and
log(1 - sigmoid(l)) = -softplus(l), which never take the log of 0 and stay accurate under mixed
precision (the logits are cast to float32 first).

With D(x) = sigmoid(l(x)):
- discriminator (both "minimax" and "non-saturating"): maximise E[log D(x)] + E[log(1 - D(G(z)))],
  i.e. minimise  softplus(-l_real) + softplus(l_fake).
- generator, minimax (Goodfellow et al. 2014, eq. 1): minimise E[log(1 - D(G(z)))] = -softplus(l_fake).
  Its gradient vanishes when D confidently rejects the fakes, which is early in training.
- generator, non-saturating (the paper's practical fix): maximise E[log D(G(z))], i.e. minimise
  softplus(-l_fake). Same fixed point, strong gradients when the fakes are rejected.

The other losses treat the discriminator's output l as a raw score:
- least squares, LSGAN (Mao et al. 2017, a-b-c = 0-1-1 coding): D minimises
  1/2 E[(l_real - 1)^2] + 1/2 E[l_fake^2]; G minimises 1/2 E[(l_fake - 1)^2]. Fakes far on the right
  side of the boundary are still pulled towards the data, so the gradient does not vanish.
- hinge (Lim & Ye 2017; Miyato et al. 2018): D minimises E[relu(1 - l_real)] + E[relu(1 + l_fake)];
  G minimises -E[l_fake].
- Wasserstein (Arjovsky et al. 2017): the critic minimises E[l_fake] - E[l_real], an estimate of
  -W1 when the critic is 1-Lipschitz; G minimises -E[l_fake]. The Lipschitz constraint comes from
  weight clipping ('wgan-clip') or from the gradient penalty of Gulrajani et al. 2017 ('wgan-gp').

One-sided label smoothing (Salimans et al. 2016) replaces the real target 1 by 1 - s in the
discriminator's loss (BCE and least squares only); fakes keep target 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_lib.core.errors import ConfigError, DataError


def discriminator_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))], the standard discriminator loss."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def generator_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))], which the generator minimises in the original minimax game."""
    return -F.softplus(fake_logits.float()).mean()


def generator_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))], the non-saturating generator loss."""
    return F.softplus(-fake_logits.float()).mean()


def discriminator_bce_smoothed(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy with target `real_target` for real images and 0 for fakes."""
    real = real_logits.float()
    return (real_target * F.softplus(-real) + (1 - real_target) * F.softplus(real)).mean() + F.softplus(
        fake_logits.float()
    ).mean()


def discriminator_least_squares(real_logits, fake_logits, real_target: float = 1.0) -> torch.Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[D(G(z))^2] with b = real_target (LSGAN)."""
    return 0.5 * ((real_logits.float() - real_target) ** 2).mean() + 0.5 * (fake_logits.float() ** 2).mean()


def generator_least_squares(fake_logits: torch.Tensor) -> torch.Tensor:
    """1/2 E[(D(G(z)) - 1)^2] (LSGAN)."""
    return 0.5 * ((fake_logits.float() - 1) ** 2).mean()


def discriminator_hinge(real_logits, fake_logits, real_target: float = 1.0) -> torch.Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


def critic_wasserstein(real_logits, fake_logits, real_target: float = 1.0) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)]: minus the critic's estimate of the Wasserstein-1 distance."""
    return fake_logits.float().mean() - real_logits.float().mean()


def generator_score(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z))]: the generator raises the critic's score of its samples (WGAN, hinge)."""
    return -fake_logits.float().mean()


def gradient_penalty(
    critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
    labels: torch.Tensor | None = None,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gulrajani et al. 2017: E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = alpha x + (1 - alpha) x_fake,
    alpha ~ U[0, 1] drawn per sample (N numbers from `generator`, or torch's global generator). Works for
    inputs of any rank, e.g. points (N, d) or images (N, C, H, W); the norm is over all but the batch axis.
    Pass `alpha` (N numbers, any shape) to fix the mixing weights instead of drawing them. The graph is
    kept (create_graph) so the penalty itself can be minimised."""
    if real.shape != fake.shape or real.dim() < 2:
        raise DataError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must be batches of the same shape")
    per_sample = (real.shape[0],) + (1,) * (real.dim() - 1)  # broadcasts one weight over each sample
    if alpha is None:
        alpha = torch.rand(per_sample, device=real.device, generator=generator)
    elif alpha.numel() != real.shape[0]:
        raise DataError(f"alpha must hold one weight per sample ({real.shape[0]}), got shape {tuple(alpha.shape)}")
    alpha = alpha.to(device=real.device, dtype=torch.float32).reshape(per_sample)
    x_hat = (alpha * real.detach().float() + (1 - alpha) * fake.detach().float()).requires_grad_(True)
    scores = critic(x_hat, labels) if labels is not None else critic(x_hat)
    (grad,) = torch.autograd.grad(scores.float().sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def feature_matching(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Salimans et al. 2016: ||E_x f(x) - E_z f(G(z))||_2^2 for discriminator features f (real side fixed)."""
    return ((real_features.detach().float().mean(0) - fake_features.float().mean(0)) ** 2).sum()


@dataclass(frozen=True)
class GANLoss:
    """A pair of loss functions: discriminator(real_logits, fake_logits, real_target) and generator(fake_logits).

    `probabilistic`: the discriminator's output is a logit of P(real) (the trainer logs sigmoid means
    as D(x), D(G(z))); otherwise it is a raw score, logged as is. `smoothable`: one-sided label
    smoothing applies.
    """

    name: str
    discriminator: Callable[..., torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    probabilistic: bool = True
    smoothable: bool = True


LOSSES: dict[str, GANLoss] = {
    "non-saturating": GANLoss("non-saturating", discriminator_bce_smoothed, generator_non_saturating),
    "minimax": GANLoss("minimax", discriminator_bce_smoothed, generator_minimax),
    "lsgan": GANLoss("lsgan", discriminator_least_squares, generator_least_squares, probabilistic=False),
    "hinge": GANLoss("hinge", discriminator_hinge, generator_score, probabilistic=False, smoothable=False),
    "wgan-clip": GANLoss("wgan-clip", critic_wasserstein, generator_score, probabilistic=False, smoothable=False),
    "wgan-gp": GANLoss("wgan-gp", critic_wasserstein, generator_score, probabilistic=False, smoothable=False),
}


def get_loss(name: str) -> GANLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None


def r1_penalty(critic, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mescheder et al. 2018, eq. 9 without the gamma/2: E_x[||grad_x D(x)||^2] on REAL data only.

    Penalising the discriminator's gradient where the data are makes it flat there, which is what lets
    simultaneous gradient descent converge to the equilibrium (their Theorem 4.1). The graph is kept
    (create_graph) so the penalty itself can be minimised.
    """
    x = real.detach().float().requires_grad_(True)
    scores = critic(x, labels) if labels is not None else critic(x)
    (grad,) = torch.autograd.grad(scores.float().sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()
