"""Training tricks that live outside the models and losses, and the named recipes that combine them.

Each is a small piece the one trainer (`course_lib.train`) composes; none copies the training loop.

- `ExponentialMovingAverage`: an EMA copy of the generator, used for evaluation and sampling
  (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"; Karras et al.).
  After every generator step, theta_ema <- d theta_ema + (1 - d) theta, with a warm-up
  d_t = min(d, (1 + t) / (10 + t)) so that short runs are not dominated by the initial weights.
  Buffers (batch-norm running statistics) are copied, not averaged.
- `HistoricalAverage` (Salimans et al. 2016, sec. 3.3): adds lambda ||theta - (1/t) sum_i theta_i||^2
  to a player's loss, the running mean over all past parameter values.
- `instance_noise_std` (Sonderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise of standard
  deviation sigma_t added to every image the discriminator sees, real or fake, annealed linearly
  from sigma_0 to 0 over the run, so the two distributions overlap early in training.
- `PRESETS`: the published settings for each improvement, so that `course-lib train --preset wgan-gp`
  or `preset: wgan-gp` in an experiment config is one switch away. Explicit settings override them.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class ExponentialMovingAverage:
    """An EMA copy of a module (see the module docstring)."""

    def __init__(self, module: nn.Module, decay: float = 0.999):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        d = self.current_decay()
        for ema_p, p in zip(self.module.parameters(), module.parameters()):
            ema_p.lerp_(p.detach(), 1 - d)  # ema + (1 - d)(p - ema) = d ema + (1 - d) p
        for ema_b, b in zip(self.module.buffers(), module.buffers()):
            ema_b.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


class HistoricalAverage:
    """lambda ||theta - mean of past thetas||^2 for one module (see the module docstring)."""

    def __init__(self, module: nn.Module, weight: float):
        self.weight = weight
        self.mean = [p.detach().clone() for p in module.parameters()]
        self.count = 1

    def penalty(self, module: nn.Module) -> torch.Tensor:
        return self.weight * sum(((p - m) ** 2).sum() for p, m in zip(module.parameters(), self.mean))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.count += 1
        for m, p in zip(self.mean, module.parameters()):
            m.add_((p.detach() - m) / self.count)  # running mean of all parameter values so far

    def state_dict(self) -> dict:
        return {"mean": [m.clone() for m in self.mean], "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        for m, saved in zip(self.mean, state["mean"]):
            m.copy_(saved)
        self.count = int(state["count"])


def instance_noise_std(initial: float, step: int, total_steps: int) -> float:
    """sigma_0 (1 - step / total), reaching 0 at the end of the run."""
    return initial * max(0.0, 1.0 - step / max(total_steps, 1))


# Published settings per improvement. Values are TrainConfig fields.
PRESETS: dict[str, dict] = {
    "dcgan": {},  # Radford et al.: the defaults (Adam 2e-4, betas (0.5, 0.999), non-saturating loss)
    "lsgan": {"loss": "lsgan"},
    "hinge": {"loss": "hinge"},
    # Arjovsky et al. 2017, Algorithm 1: RMSprop, lr 5e-5, clip 0.01, n_critic 5.
    "wgan-clip": {"loss": "wgan-clip", "optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5, "clip_value": 0.01,
                  "d_steps": 5},
    # Gulrajani et al. 2017, Algorithm 1: lambda 10, n_critic 5, Adam(1e-4, 0, 0.9), no batch norm in the critic.
    "wgan-gp": {"loss": "wgan-gp", "gp_weight": 10.0, "d_steps": 5, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0,
                "beta2": 0.9, "d_norm": "layer"},
    # Miyato et al. 2018: spectral norm in D with the hinge loss, Adam(2e-4, 0.5, 0.999) at n_dis 1 for DCGAN-sized models.
    "spectral-norm": {"spectral_norm": True, "d_norm": "none", "loss": "hinge"},
    "label-smoothing": {"label_smoothing": 0.1},  # Salimans et al.: real targets 0.9
    "instance-noise": {"instance_noise": 0.1},
    "feature-matching": {"feature_matching": 1.0},
    "minibatch-discrimination": {"minibatch_discrimination": 50},
    "minibatch-stddev": {"minibatch_stddev": True},
    "historical-averaging": {"historical_averaging": 1e-4},
    # Heusel et al. 2017: a faster discriminator than generator (here 4e-4 vs 1e-4).
    "ttur": {"lr_g": 1e-4, "lr_d": 4e-4},
    "ema": {"ema": 0.999},
    "upsample-conv": {"g_upsample": "nearest"},
    "cgan": {"conditional": "cgan"},
    "acgan": {"conditional": "acgan"},
    # Chen et al. 2016 (MNIST): 62 noise dims, one 10-way categorical and two continuous codes, lambda 1, and
    # the paper's faster generator, Adam lr 1e-3 for G vs 2e-4 for D. The learning rates matter: at 2e-4 for
    # both, the categorical code settled on style (17% code-to-digit accuracy after 3,000 steps); with the
    # paper's, it picks the digit (about 40-50% after 1,000-2,000 steps; see tests/test_conditional.py).
    "infogan": {"conditional": "infogan", "latent_dim": 62, "info_cat": 10, "info_cont": 2, "info_weight": 1.0,
                "lr_g": 1e-3, "lr_d": 2e-4},
}
