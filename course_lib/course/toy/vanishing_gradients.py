"""Vanishing generator gradients (Arjovsky & Bottou 2017, book figure 15.7): freeze the generator, keep
training the discriminator, and record the norm of the generator's gradient, on any small GAN
(notebook 2 uses the MLP GAN of `small_image_gan` on MNIST)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.course.toy.threads import single_thread
from course_lib.nn.losses import discriminator_bce, generator_minimax, generator_non_saturating


def small_image_gan(pixels: int = 784, latent_dim: int = 64, hidden: int = 256) -> tuple[nn.Module, nn.Module]:
    """A small MLP GAN for flattened images in [-1, 1]: G = z -> hidden (ReLU) -> pixels (tanh),
    D = pixels -> hidden (LeakyReLU 0.2) -> one logit. Small enough to train on a CPU in seconds."""
    G = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, pixels), nn.Tanh())
    D = nn.Sequential(nn.Linear(pixels, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1), nn.Flatten(0))
    G.latent_dim = latent_dim
    return G, D


SampleReal = Callable[[int, np.random.Generator], torch.Tensor]


def train_gan_snapshots(
    G: nn.Module,
    D: nn.Module,
    sample_real: SampleReal,
    latent_dim: int,
    steps: int,
    snapshot_at: list[int],
    lr: float = 2e-4,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[int, tuple[dict, dict]]:
    """Train a standard GAN (BCE discriminator, non-saturating generator, Adam(lr, betas 0.5/0.999),
    one D step per G step) and return copies of both networks' weights after each step in
    `snapshot_at` (0 = before training): {step: (G state_dict, D state_dict)}."""
    if steps < 0 or any(s < 0 or s > steps for s in snapshot_at):
        raise ConfigError(f"snapshot steps must lie in [0, {steps}], got {snapshot_at}")
    with single_thread():
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
        snapshots = {}
        for step in range(steps + 1):
            if step in snapshot_at:
                snapshots[step] = (copy.deepcopy(G.state_dict()), copy.deepcopy(D.state_dict()))
            if step == steps:
                break
            real = sample_real(batch_size, rng)
            fake = G(torch.randn(batch_size, latent_dim))
            d_loss = discriminator_bce(D(real), D(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = generator_non_saturating(D(fake))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
    return snapshots


@dataclass
class FrozenGeneratorRun:
    """Generator-gradient norms while only the discriminator trains (book figure 15.7)."""

    d_steps: np.ndarray  # discriminator updates done when each norm was measured
    grad_norm_minimax: np.ndarray
    grad_norm_non_saturating: np.ndarray
    d_accuracy: np.ndarray  # fraction of real and generated points classified correctly


def _generator_grad_norm(G: nn.Module, D: nn.Module, z: torch.Tensor, loss_fn) -> float:
    G.zero_grad(set_to_none=True)
    loss_fn(D(G(z))).backward()
    return float(torch.sqrt(sum((p.grad**2).sum() for p in G.parameters() if p.grad is not None)))


def frozen_generator_gradients(
    G: nn.Module,
    D: nn.Module,
    sample_real: SampleReal,
    latent_dim: int,
    d_steps: int = 1000,
    measure_every: int = 50,
    lr_d: float = 2e-4,
    batch_size: int = 64,
    n_eval: int = 500,
    seed: int = 0,
) -> FrozenGeneratorRun:
    """Freeze G, keep training D (BCE, Adam(lr_d, betas 0.5/0.999)) for `d_steps` updates, and every
    `measure_every` updates measure the norm of the generator's gradient on a fixed batch of n_eval
    latents, for the minimax loss E[log(1 - D(G(z)))] and the non-saturating -E[log D(G(z))].

    The generator is never updated: its gradients are computed and thrown away. D is trained in place.
    """
    if d_steps < 1 or measure_every < 1 or n_eval < 1:
        raise ConfigError("d_steps, measure_every and n_eval must be >= 1")
    with single_thread():
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        z_eval = torch.randn(n_eval, latent_dim)
        real_eval = sample_real(n_eval, rng)
        opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(0.5, 0.999))
        steps, minimax, non_sat, acc = [], [], [], []
        for k in range(d_steps + 1):
            if k % measure_every == 0 or k == d_steps:
                steps.append(k)
                minimax.append(_generator_grad_norm(G, D, z_eval, generator_minimax))
                non_sat.append(_generator_grad_norm(G, D, z_eval, generator_non_saturating))
                with torch.no_grad():
                    acc.append(float(0.5 * ((D(real_eval) > 0).float().mean() + (D(G(z_eval)) < 0).float().mean())))
            if k == d_steps:
                break
            real = sample_real(batch_size, rng)
            with torch.no_grad():
                fake = G(torch.randn(batch_size, latent_dim))
            loss = discriminator_bce(D(real), D(fake))
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        G.zero_grad(set_to_none=True)
    return FrozenGeneratorRun(np.array(steps), np.array(minimax), np.array(non_sat), np.array(acc))
