"""Train small MLP GANs on the 2-D mixtures and compare methods by mode coverage: the standard GAN,
the other loss pairs of course_lib.nn.losses, WGAN with weight clipping (Arjovsky et al. 2017) and
WGAN-GP (Gulrajani et al. 2017). The losses and the gradient penalty are the library's; only the
loop, sized for seconds on a CPU, is the toy's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.course.toy.mixtures import GaussianMixture2D, get_mixture, mode_coverage
from course_lib.course.toy.threads import single_thread
from course_lib.nn.losses import get_loss, gradient_penalty
from course_lib.training.terms import clip_weights_


def mlp(in_dim: int, out_dim: int, hidden: int = 128, depth: int = 3) -> nn.Sequential:
    """`depth` hidden ReLU layers of width `hidden`, then a linear output layer."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    """z ~ N(0, I_latent_dim) -> a point in the plane."""

    def __init__(self, latent_dim: int = 2, hidden: int = 64, depth: int = 3):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(latent_dim, 2, hidden, depth)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self(torch.randn(n, self.latent_dim, generator=gen))


class ToyCritic(nn.Module):
    """A point in the plane -> one raw score: a logit (standard GAN) or a critic value (WGAN)."""

    def __init__(self, hidden: int = 64, depth: int = 3):
        super().__init__()
        self.net = mlp(2, 1, hidden, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


# Each method trains with a loss pair from course_lib.nn.losses ("gan" is the non-saturating GAN); the two
# Wasserstein methods add their Lipschitz constraint in the loop (weight clipping, gradient penalty).
LOSS_OF_METHOD = {
    "gan": "non-saturating",
    "minimax": "minimax",
    "lsgan": "lsgan",
    "hinge": "hinge",
    "wgan-clip": "wgan-clip",
    "wgan-gp": "wgan-gp",
}
METHODS = tuple(LOSS_OF_METHOD)


@dataclass(frozen=True)
class ToyTrainConfig:
    """Settings of one 2-D run. `default_config(method)` gives the ones the course uses.

    steps counts generator updates; the critic takes `critic_steps` updates before each.
    """

    method: str = "gan"
    steps: int = 800
    batch_size: int = 256
    critic_steps: int = 1
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: str = "adam"  # "adam" or "rmsprop" (WGAN with clipping, as in its paper)
    clip: float = 0.01  # wgan-clip: critic weights kept in [-clip, clip]
    gp_weight: float = 0.1  # wgan-gp: lambda (Gulrajani et al. use 0.1 for toy data)
    latent_dim: int = 2
    hidden: int = 64
    depth: int = 3
    snapshot_every: int = 0  # keep generated samples every k steps (0: only at the end)
    snapshot_size: int = 1000

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose adam or rmsprop")
        if min(self.steps, self.batch_size, self.critic_steps, self.latent_dim, self.hidden, self.depth) < 1:
            raise ConfigError("steps, batch_size, critic_steps, latent_dim, hidden and depth must all be >= 1")
        if self.lr_g <= 0 or self.lr_d <= 0 or self.clip <= 0 or self.gp_weight < 0:
            raise ConfigError("learning rates and clip must be > 0, gp_weight >= 0")


def default_config(method: str, **overrides) -> ToyTrainConfig:
    """The course's settings per method, with any field overridden by keyword. All use MLPs with
    3 hidden layers of 64 units, batches of 256 and a 2-D latent.

    All train for 800 generator steps.
    gan:       Adam(1e-3, betas 0.5/0.999); one D step per G step; non-saturating G loss.
    wgan-clip: RMSprop(5e-4); 5 critic steps per G step; weights clipped to [-0.01, 0.01].
               (Arjovsky et al. use 5e-5, which needs far more steps than a CPU notebook can afford.)
    wgan-gp:   Adam(1e-3, betas 0.5/0.9); 5 critic steps; lambda = 0.1 (Gulrajani et al.'s toy setting,
               with a larger learning rate because we train ~100x fewer steps).
    These are sized for a 2-core CPU: seconds to a minute per run, not full convergence.
    """
    gan = dict(steps=800, critic_steps=1, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999), optimizer="adam")
    base = {
        "gan": gan,
        "minimax": gan,
        "lsgan": gan,
        "hinge": gan,  # minimax, lsgan, hinge: the loss differs
        "wgan-clip": dict(steps=800, critic_steps=5, lr_g=5e-4, lr_d=5e-4, optimizer="rmsprop", clip=0.01),
        "wgan-gp": dict(
            steps=800, critic_steps=5, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.9), optimizer="adam", gp_weight=0.1
        ),
    }
    if method not in base:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return ToyTrainConfig(method=method, **{**base[method], **overrides})


@dataclass
class ToyTrainResult:
    """A trained 2-D GAN: its networks, settings, loss curves and sample snapshots (step, (n, 2) array)."""

    generator: ToyGenerator
    critic: ToyCritic
    config: ToyTrainConfig
    mixture: GaussianMixture2D
    seed: int
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def samples(self, n: int = 2500, seed: int = 12345) -> np.ndarray:
        with torch.no_grad(), single_thread():
            return self.generator.sample(n, seed=seed).numpy()


def _optimizer(params, lr: float, config: ToyTrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=config.betas)


def train_toy_gan_2d(mixture: GaussianMixture2D, config: ToyTrainConfig, seed: int = 0) -> ToyTrainResult:
    """Train a 2-D GAN on `mixture` with the method in `config`. Deterministic for a given seed.

    Each generator step: `critic_steps` updates of the discriminator/critic on fresh real and
    generated batches, then one generator update.
    Every method takes its loss pair from course_lib.nn.losses (`LOSS_OF_METHOD`):
    gan:       D minimises BCE (softplus form); G minimises -mean log D(G(z)) (non-saturating).
    minimax, lsgan, hinge: the same loop with that loss pair.
    wgan-clip: critic minimises mean f(x*) - mean f(x) (`critic_wasserstein`), then its weights are
               clipped to [-c, c]; G minimises -mean f(x*) (`generator_score`).
    wgan-gp:   the same losses, plus lambda * `gradient_penalty` in the critic's; no clipping.
    """
    with single_thread():
        return _train_toy_gan_2d(mixture, config, seed)


def _train_toy_gan_2d(mixture: GaussianMixture2D, config: ToyTrainConfig, seed: int) -> ToyTrainResult:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G = ToyGenerator(config.latent_dim, config.hidden, config.depth)
    D = ToyCritic(config.hidden, config.depth)
    opt_g = _optimizer(G.parameters(), config.lr_g, config)
    opt_d = _optimizer(D.parameters(), config.lr_d, config)
    loss = get_loss(LOSS_OF_METHOD[config.method])
    result = ToyTrainResult(G, D, config, mixture, seed)
    fixed_z = torch.randn(config.snapshot_size, config.latent_dim)
    n = config.batch_size

    def snapshot(step: int) -> None:
        with torch.no_grad():
            result.snapshots.append((step, G(fixed_z).numpy().copy()))

    if config.snapshot_every:
        snapshot(0)
    for step in range(1, config.steps + 1):
        for _ in range(config.critic_steps):
            real = torch.from_numpy(mixture.sample(n, rng))
            with torch.no_grad():
                fake = G(torch.randn(n, config.latent_dim))
            # One forward pass over both batches: half the per-call overhead of two small passes.
            scores = D(torch.cat([real, fake]))
            d_loss = loss.discriminator(scores[:n], scores[n:])
            if config.method == "wgan-gp":
                d_loss = d_loss + config.gp_weight * gradient_penalty(D, real, fake)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            if config.method == "wgan-clip":
                clip_weights_(D, config.clip)
        g_loss = loss.generator(D(G(torch.randn(n, config.latent_dim))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        result.d_loss.append(d_loss.item())
        result.g_loss.append(g_loss.item())
        if config.snapshot_every and step % config.snapshot_every == 0:
            snapshot(step)
    if not config.snapshot_every or config.steps % config.snapshot_every:
        snapshot(config.steps)
    return result


def critic_on_grid(critic: nn.Module, limits: tuple[float, float], n: int = 150):
    """(xx, yy, scores): the critic's raw output on an n x n grid over limits x limits, for contours."""
    ticks = np.linspace(limits[0], limits[1], n, dtype=np.float32)
    xx, yy = np.meshgrid(ticks, ticks)
    with torch.no_grad(), single_thread():
        scores = critic(torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], axis=1))).numpy()
    return xx, yy, scores.reshape(xx.shape)


@dataclass
class CoverageRow:
    """Mode coverage of one method on one mixture over several seeds; `example` is the first seed's run."""

    mixture: str
    method: str
    n_modes: int
    modes: list[int] = field(default_factory=list)
    high_quality: list[float] = field(default_factory=list)
    example: ToyTrainResult | None = None

    def summary(self) -> str:
        m, hq = np.array(self.modes, float), 100 * np.array(self.high_quality)
        modes = f"{m.mean():.1f} ± {m.std():.1f} of {self.n_modes}"
        quality = f"{hq.mean():.1f} ± {hq.std():.1f} %"
        return f"{self.mixture:<5} {self.method:<15} {modes:>18} {quality:>22}"


def compare_methods(
    mixtures: list[str],
    configs: dict[str, ToyTrainConfig],
    seeds: list[int],
    n_samples: int = 2500,
    progress: Callable[[str], None] | None = None,
) -> list[CoverageRow]:
    """Train each method (one config per method name) on each mixture once per seed, and measure
    the mode coverage of n_samples generated points. Returns one row per (mixture, method)."""
    if not seeds:
        raise ConfigError("need at least one seed")
    rows = []
    for name in mixtures:
        mixture = get_mixture(name)
        for label, config in configs.items():
            row = CoverageRow(name, label, mixture.n_modes)
            for seed in seeds:
                result = train_toy_gan_2d(mixture, config, seed=seed)
                cov = mode_coverage(result.samples(n_samples, seed=10_000 + seed), mixture)
                row.modes.append(cov.modes_covered)
                row.high_quality.append(cov.high_quality_fraction)
                if row.example is None:
                    row.example = result
                if progress:
                    progress(
                        f"{name} {label} seed {seed}: {cov.modes_covered}/{cov.n_modes} modes, "
                        f"{100 * cov.high_quality_fraction:.1f}% high quality"
                    )
            rows.append(row)
    return rows


def format_coverage_table(rows: list[CoverageRow]) -> str:
    """A plain-text table: modes covered and high-quality samples, mean ± std over seeds."""
    seeds = len(rows[0].modes) if rows else 0
    head = (
        f"{'data':<5} {'method':<15} {'modes covered':>18} {'high-quality samples':>22}   ({seeds} seeds, mean ± std)"
    )
    return "\n".join([head, "-" * len(head)] + [r.summary() for r in rows])
