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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import ConfigError


def discriminator_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))], the standard discriminator loss."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def generator_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))], which the generator minimises in the original minimax game."""
    return -F.softplus(fake_logits.float()).mean()


def generator_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))], the non-saturating generator loss."""
    return F.softplus(-fake_logits.float()).mean()


@dataclass(frozen=True)
class GANLoss:
    """A pair of loss functions: discriminator(real_logits, fake_logits) and generator(fake_logits)."""

    name: str
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]


LOSSES: dict[str, GANLoss] = {
    "non-saturating": GANLoss("non-saturating", discriminator_bce, generator_non_saturating),
    "minimax": GANLoss("minimax", discriminator_bce, generator_minimax),
}


def get_loss(name: str) -> GANLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
