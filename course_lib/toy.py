"""Toy GANs small enough to watch: the 1-D GAN of Prince's chapter 15, the divergences its loss
relates to, and 2-D Gaussian mixtures for comparing the standard GAN with Wasserstein GANs.

Sections:
1. The 1-D GAN (figure 15.1): generator x* = z + theta with z ~ N(0, 1), a logistic-regression
   discriminator sig(phi_0 + phi_1 x), alternating gradient steps with hand-derived gradients.
2. The GAN loss at the optimal discriminator D*(x) = Pr(x) / (Pr(x) + Pr(x*)) and its divergences:
   KL, reverse KL, Jensen-Shannon, closed forms for problems 15.4 (shifted uniforms) and 15.5
   (Gaussians), and numerical versions on a grid.
3. 2-D mixtures (the 8-Gaussian ring and the 5x5 grid), small MLPs, and one training loop for the
   standard GAN, WGAN with weight clipping (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017).
4. Mode coverage (Srivastava et al. 2017, VEEGAN): a sample is high quality when it lies within
   3 standard deviations of its nearest mode centre; a mode is covered when enough high-quality
   samples land on it.
5. Vanishing generator gradients (Arjovsky & Bottou 2017, book figure 15.7): freeze the generator,
   keep training the discriminator, and record the norm of the generator's gradient (on any small
   GAN; notebook 2 uses an MLP GAN on MNIST).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, DataError
from .losses import discriminator_bce, generator_minimax, generator_non_saturating, get_loss

LOG2 = math.log(2.0)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@contextmanager
def single_thread():
    """Run torch on one thread inside the block. These networks are tiny (a few thousand weights), so
    splitting each matrix product across threads costs more in synchronisation than it saves; on a
    busy machine two threads were measured 25x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sigmoid(a):
    """sig[a] = 1 / (1 + exp(-a)), computed without overflow for large |a|."""
    a = np.asarray(a, dtype=float)
    out = np.empty_like(a)
    pos = a >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-a[pos]))
    e = np.exp(a[~pos])
    out[~pos] = e / (1.0 + e)
    return out


# =============================================================== 1. the 1-D GAN (figure 15.1)
GENERATOR_LOSSES_1D = ("minimax", "non-saturating")


def discriminator_1d(x, phi) -> np.ndarray:
    """Pr(x is real) = sig[phi_0 + phi_1 x], a logistic-regression discriminator."""
    return sigmoid(phi[0] + phi[1] * np.asarray(x, dtype=float))


def log_sigmoid(a) -> np.ndarray:
    """log sig[a] = -log(1 + exp(-a)), stable for large |a|."""
    a = np.asarray(a, dtype=float)
    return -np.logaddexp(0.0, -a)


def discriminator_loss_1d(x_real, x_fake, phi) -> float:
    """The binary cross-entropy the discriminator minimises (book eq. 15.5, first line):

        L_D = -mean_i log sig[f(x_i)] - mean_j log(1 - sig[f(x*_j)]),   f(x) = phi_0 + phi_1 x.
    """
    f_real = phi[0] + phi[1] * np.asarray(x_real, dtype=float)
    f_fake = phi[0] + phi[1] * np.asarray(x_fake, dtype=float)
    # log(1 - sig[a]) = log sig[-a]
    return float(-log_sigmoid(f_real).mean() - log_sigmoid(-f_fake).mean())


def discriminator_grad_1d(x_real, x_fake, phi) -> np.ndarray:
    """dL_D/d(phi_0, phi_1). With s = sig[f(x)]: d(-log s)/df = -(1 - s), d(-log(1 - s))/df = s,
    and df/dphi = (1, x)."""
    x_real, x_fake = np.asarray(x_real, dtype=float), np.asarray(x_fake, dtype=float)
    d_real = -(1.0 - discriminator_1d(x_real, phi))
    d_fake = discriminator_1d(x_fake, phi)
    return np.array([d_real.mean() + d_fake.mean(), (d_real * x_real).mean() + (d_fake * x_fake).mean()])


def generator_loss_1d(z, theta: float, phi, kind: str = "minimax") -> float:
    """The generator's loss for x* = z + theta:
    minimax (book eq. 15.5, second line): L_G = mean_j log(1 - sig[f(x*_j)]);
    non-saturating: L_G = -mean_j log sig[f(x*_j)]."""
    f_fake = phi[0] + phi[1] * (np.asarray(z, dtype=float) + theta)
    if kind == "minimax":
        return float(log_sigmoid(-f_fake).mean())
    if kind == "non-saturating":
        return float(-log_sigmoid(f_fake).mean())
    raise ConfigError(f"unknown generator loss {kind!r}; choose one of {GENERATOR_LOSSES_1D}")


def generator_grad_1d(z, theta: float, phi, kind: str = "minimax") -> float:
    """dL_G/dtheta. With s_j = sig[phi_0 + phi_1 (z_j + theta)] and ds/dtheta = s (1 - s) phi_1:
    minimax:        dL_G/dtheta = -mean_j s_j phi_1        (tiny when D rejects the fakes, s -> 0)
    non-saturating: dL_G/dtheta = -mean_j (1 - s_j) phi_1  (large exactly then)."""
    s = discriminator_1d(np.asarray(z, dtype=float) + theta, phi)
    if kind == "minimax":
        return float(-(s * phi[1]).mean())
    if kind == "non-saturating":
        return float(-((1.0 - s) * phi[1]).mean())
    raise ConfigError(f"unknown generator loss {kind!r}; choose one of {GENERATOR_LOSSES_1D}")


@dataclass
class ToyGAN1DHistory:
    """Everything a 1-D run records, one entry per generator step (index 0 = the start)."""

    real_mean: float
    real_std: float
    theta: np.ndarray          # (steps + 1,)
    phi: np.ndarray            # (steps + 1, 2)
    d_loss: np.ndarray         # (steps + 1,) on a fixed evaluation batch
    g_grad: np.ndarray         # (steps + 1,) dL_G/dtheta on the evaluation batch
    settings: dict = field(default_factory=dict)


def train_toy_gan_1d(real_mean: float = 3.0, real_std: float = 1.0, theta0: float = 0.0,
                     phi0: tuple[float, float] = (0.0, 0.0), steps: int = 200, d_steps: int = 1,
                     lr_d: float = 0.1, lr_g: float = 0.1, batch_size: int = 64,
                     generator_loss: str = "minimax", seed: int = 0) -> ToyGAN1DHistory:
    """Alternate `d_steps` gradient-descent steps on the discriminator's loss with one on the
    generator's, for `steps` generator steps (book figure 15.1). Each step draws fresh batches of
    real samples x ~ N(real_mean, real_std^2) and latents z ~ N(0, 1).

    With real_std = 1 the logistic discriminator can represent the optimal one exactly
    (see `optimal_logistic_parameters_1d`), and the equilibrium is theta = real_mean, phi = (0, 0).
    """
    if generator_loss not in GENERATOR_LOSSES_1D:
        raise ConfigError(f"unknown generator loss {generator_loss!r}; choose one of {GENERATOR_LOSSES_1D}")
    if steps < 0 or d_steps < 0 or batch_size < 1:
        raise ConfigError("steps and d_steps must be >= 0 and batch_size >= 1")
    if real_std <= 0 or lr_d < 0 or lr_g < 0:
        raise ConfigError("real_std must be > 0 and learning rates >= 0")
    rng = np.random.default_rng(seed)
    # A fixed evaluation batch makes the recorded curves smooth and comparable between runs.
    eval_real = rng.normal(real_mean, real_std, 2000)
    eval_z = rng.normal(0.0, 1.0, 2000)
    theta, phi = float(theta0), np.array(phi0, dtype=float)
    thetas, phis, d_losses, g_grads = [theta], [phi.copy()], [], []

    def record():
        d_losses.append(discriminator_loss_1d(eval_real, eval_z + theta, phi))
        g_grads.append(generator_grad_1d(eval_z, theta, phi, generator_loss))

    record()
    for _ in range(steps):
        for _ in range(d_steps):
            x_real = rng.normal(real_mean, real_std, batch_size)
            x_fake = rng.normal(0.0, 1.0, batch_size) + theta
            phi = phi - lr_d * discriminator_grad_1d(x_real, x_fake, phi)
        z = rng.normal(0.0, 1.0, batch_size)
        theta = theta - lr_g * generator_grad_1d(z, theta, phi, generator_loss)
        thetas.append(theta)
        phis.append(phi.copy())
        record()
    settings = dict(theta0=theta0, phi0=phi0, steps=steps, d_steps=d_steps, lr_d=lr_d, lr_g=lr_g,
                    batch_size=batch_size, generator_loss=generator_loss, seed=seed)
    return ToyGAN1DHistory(real_mean, real_std, np.array(thetas), np.array(phis), np.array(d_losses),
                           np.array(g_grads), settings)


def fit_discriminator_1d(real_mean: float, theta: float, real_std: float = 1.0, steps: int = 2000,
                         lr: float = 0.2, batch_size: int = 512, seed: int = 0) -> np.ndarray:
    """Train only the logistic discriminator, generator frozen at theta, by minibatch gradient
    descent on L_D; returns (phi_0, phi_1). Inputs are centred and scaled inside the fit (and the
    parameters mapped back) because plain gradient descent on uncentred x is badly conditioned."""
    if steps < 1 or batch_size < 1 or lr <= 0 or real_std <= 0:
        raise ConfigError("steps, batch_size and lr must be positive, real_std > 0")
    rng = np.random.default_rng(seed)
    centre, scale = 0.5 * (real_mean + theta), max(abs(real_mean - theta) / 2, real_std, 1.0)
    psi = np.zeros(2)   # parameters for u = (x - centre) / scale
    for _ in range(steps):
        u_real = (rng.normal(real_mean, real_std, batch_size) - centre) / scale
        u_fake = (rng.normal(theta, 1.0, batch_size) - centre) / scale
        psi = psi - lr * discriminator_grad_1d(u_real, u_fake, psi)
    # psi_0 + psi_1 (x - centre) / scale = phi_0 + phi_1 x
    return np.array([psi[0] - psi[1] * centre / scale, psi[1] / scale])


def optimal_logistic_parameters_1d(real_mean: float, theta: float, std: float = 1.0) -> np.ndarray:
    """(phi_0, phi_1) of the optimal discriminator between N(real_mean, std^2) and N(theta, std^2).

    log Pr(x) - log Pr(x*) = ((x - theta)^2 - (x - real_mean)^2) / (2 std^2) is linear in x, so
    D*(x) = sig[phi_0 + phi_1 x] with phi_1 = (real_mean - theta) / std^2 and
    phi_0 = (theta^2 - real_mean^2) / (2 std^2).
    """
    return np.array([(theta ** 2 - real_mean ** 2) / (2 * std ** 2), (real_mean - theta) / std ** 2])


# ============================================= 2. optimal discriminator, GAN loss, divergences
def optimal_discriminator(p_real, p_gen) -> np.ndarray:
    """D*(x) = Pr(x) / (Pr(x) + Pr(x*)) (book eq. 15.7), from the two densities at the same points.

    Where both densities are 0 the discriminator's value never enters the loss; we return 0.5 there.
    """
    p_real, p_gen = _density(p_real, "p_real"), _density(p_gen, "p_gen")
    if p_real.shape != p_gen.shape:
        raise DataError(f"p_real has shape {p_real.shape} but p_gen has {p_gen.shape}")
    total = p_real + p_gen
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p_real / np.where(total > 0, total, 1.0), 0.5)


def _density(values, what: str) -> np.ndarray:
    d = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise DataError(f"{what}: a density must be finite and >= 0 everywhere")
    return d


def _grid_weights(x) -> np.ndarray:
    """Trapezoid-rule weights w with int h(x) dx ~ sum_k w_k h(x_k)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2 or np.any(np.diff(x) <= 0):
        raise DataError("x must be a strictly increasing 1-D grid with at least 2 points")
    dx = np.diff(x)
    w = np.zeros_like(x)
    w[:-1] += dx / 2
    w[1:] += dx / 2
    return w


def _grid_pair(p, q, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = _grid_weights(x)
    p, q = _density(p, "p"), _density(q, "q")
    if p.shape != w.shape or q.shape != w.shape:
        raise DataError(f"densities have shapes {p.shape} and {q.shape} but the grid has {w.size} points")
    return p, q, w


def _xlogy_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p log(p / q) pointwise, with 0 log(0 / q) = 0 and p log(p / 0) = inf for p > 0."""
    out = np.zeros_like(p)
    pos = p > 0
    with np.errstate(divide="ignore"):
        out[pos] = p[pos] * (np.log(p[pos]) - np.log(q[pos]))
    return out


def kl_divergence(p, q, x) -> float:
    """D_KL[p || q] = int p(x) log(p(x) / q(x)) dx on grid x; inf where p has mass and q has none."""
    p, q, w = _grid_pair(p, q, x)
    if np.any((p > 0) & (q == 0) & (w > 0)):
        return math.inf
    return float(np.sum(w * _xlogy_ratio(p, q)))


def js_quality_coverage(p_gen, p_real, x) -> tuple[float, float]:
    """The two halves of D_JS[Pr(x*) || Pr(x)] (book eq. 15.9), with m = (Pr(x*) + Pr(x)) / 2:

    quality  = 1/2 int Pr(x*) log(Pr(x*) / m) dx*   (penalises fakes where there is no real data)
    coverage = 1/2 int Pr(x)  log(Pr(x)  / m) dx    (penalises real data the generator never makes)
    """
    p_gen, p_real, w = _grid_pair(p_gen, p_real, x)
    m = 0.5 * (p_gen + p_real)
    return float(0.5 * np.sum(w * _xlogy_ratio(p_gen, m))), float(0.5 * np.sum(w * _xlogy_ratio(p_real, m)))


def js_divergence(p, q, x) -> float:
    """D_JS[p || q] = 1/2 D_KL[p || m] + 1/2 D_KL[q || m] with m = (p + q) / 2; always in [0, log 2]."""
    return float(sum(js_quality_coverage(p, q, x)))


def gan_loss_at_optimum(p_real, p_gen, x) -> float:
    """The discriminator's cross-entropy at the optimal discriminator D* (a number >= 0):

        L* = -int Pr(x) log D*(x) dx - int Pr(x*) log(1 - D*(x*)) dx*.

    This is minus the book's eq. 15.8 (which writes the log-likelihood the discriminator maximises),
    and L* = 2 log 2 - 2 D_JS, i.e. D_JS = -L*/2 + log 2 (problem 15.2); at Pr(x*) = Pr(x) it is
    2 log 2 = log 4 (problem 15.1).
    """
    p_real, p_gen, w = _grid_pair(p_real, p_gen, x)
    # p log D* = p log(p / (p + p*)) and p* log(1 - D*) = p* log(p* / (p + p*)), written as log ratios
    # so that a D* that underflows to 0 in the far tails cannot give 0 * log 0.
    total = p_real + p_gen
    return float(-np.sum(w * (_xlogy_ratio(p_real, total) + _xlogy_ratio(p_gen, total))))


def js_from_gan_loss(loss_at_optimum: float) -> float:
    """Problem 15.2: D_JS = -L*/2 + log 2 for the discriminator's cross-entropy L* at its optimum."""
    return -0.5 * loss_at_optimum + LOG2


def uniform_density(x, low: float = 0.0, width: float = 1.0) -> np.ndarray:
    """Density of U[low, low + width] at x."""
    x = np.asarray(x, dtype=float)
    return np.where((x >= low) & (x <= low + width), 1.0 / width, 0.0)


def gaussian_density(x, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """Density of N(mean, std^2) at x."""
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def uniform_shift_divergences(a: float) -> dict[str, float]:
    """Problem 15.4, closed forms, between p = U[0, 1] and q = U[a, a + 1]:

    KL[p||q] = KL[q||p] = 0 if a = 0, else inf (each has mass where the other has none);
    JS = min(|a|, 1) log 2  (the non-overlapping fraction min(|a|, 1) of each contributes log 2 / 2,
    the overlap contributes 0; constant log 2 once the supports are disjoint);
    W = |a|  (every bit of mass moves by exactly |a|; the same for W_1 and W_2).
    """
    a = float(a)
    kl = 0.0 if a == 0 else math.inf
    return {"kl": kl, "reverse_kl": kl, "js": min(abs(a), 1.0) * LOG2, "wasserstein": abs(a)}


def uniform_shift_divergences_numerical(a: float, x=None) -> dict[str, float]:
    """Problem 15.4 computed numerically from the densities on a fine grid (checks the closed forms)."""
    from .wasserstein import wasserstein_1d_densities

    if x is None:
        x = np.linspace(min(0.0, a) - 0.5, max(1.0, a + 1.0) + 0.5, 20_001)
    p, q = uniform_density(x, 0.0), uniform_density(x, a)
    return {"kl": kl_divergence(p, q, x), "reverse_kl": kl_divergence(q, p, x), "js": js_divergence(p, q, x),
            "wasserstein": wasserstein_1d_densities(x, p, q)}


def gaussian_kl(mu1, sigma1, mu2, sigma2):
    """Problem 15.5 (book eq. 15.20), KL[N(mu1, sigma1^2) || N(mu2, sigma2^2)]
    = log(sigma2 / sigma1) + (sigma1^2 + (mu1 - mu2)^2) / (2 sigma2^2) - 1/2."""
    mu1, sigma1, mu2, sigma2 = (np.asarray(v, dtype=float) for v in (mu1, sigma1, mu2, sigma2))
    if np.any(sigma1 <= 0) or np.any(sigma2 <= 0):
        raise DataError("standard deviations must be > 0")
    return np.log(sigma2 / sigma1) + (sigma1 ** 2 + (mu1 - mu2) ** 2) / (2 * sigma2 ** 2) - 0.5


def gaussian_w2(mu1, sigma1, mu2, sigma2):
    """Problem 15.5, the 2-Wasserstein distance between N(mu1, sigma1^2) and N(mu2, sigma2^2):

        W_2^2 = (mu1 - mu2)^2 + (sigma1 - sigma2)^2.

    The book's eq. 15.21 is this squared distance written with variances s_k = sigma_k^2:
    (mu1 - mu2)^2 + s1 + s2 - 2 sqrt(s1 s2).
    """
    mu1, sigma1, mu2, sigma2 = (np.asarray(v, dtype=float) for v in (mu1, sigma1, mu2, sigma2))
    if np.any(sigma1 <= 0) or np.any(sigma2 <= 0):
        raise DataError("standard deviations must be > 0")
    return np.sqrt((mu1 - mu2) ** 2 + (sigma1 - sigma2) ** 2)


def gaussian_divergences_numerical(mu1: float, sigma1: float, mu2: float, sigma2: float) -> dict[str, float]:
    """Problem 15.5 numerically: KL by quadrature on a grid, W_2 from the quantile functions."""
    from scipy.stats import norm

    from .wasserstein import wasserstein_1d_quantiles

    lo = min(mu1 - 12 * sigma1, mu2 - 12 * sigma2)
    hi = max(mu1 + 12 * sigma1, mu2 + 12 * sigma2)
    x = np.linspace(lo, hi, 40_001)
    # p log(p / q) from log densities: far in the tails the densities underflow to 0 before the ratio does.
    log_p, log_q = norm.logpdf(x, mu1, sigma1), norm.logpdf(x, mu2, sigma2)
    kl = float(np.sum(_grid_weights(x) * np.exp(log_p) * (log_p - log_q)))
    w2 = wasserstein_1d_quantiles(lambda u: norm.ppf(u, mu1, sigma1), lambda u: norm.ppf(u, mu2, sigma2), order=2)
    return {"kl": kl, "w2": w2}


# ===================================================================== 3. 2-D mixtures and MLPs
@dataclass(frozen=True)
class GaussianMixture2D:
    """An equal-weight mixture of isotropic 2-D Gaussians with the given centres and one std."""

    name: str
    centres: np.ndarray   # (K, 2)
    std: float

    @property
    def n_modes(self) -> int:
        return len(self.centres)

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """n samples (float32, shape (n, 2)): pick a centre uniformly, add N(0, std^2 I) noise."""
        if n < 1:
            raise DataError(f"need n >= 1 samples, got {n}")
        rng = _rng(seed)
        idx = rng.integers(0, self.n_modes, n)
        return (self.centres[idx] + self.std * rng.standard_normal((n, 2))).astype(np.float32)

    def plot_limits(self, margin: float = 1.0) -> tuple[float, float]:
        r = float(np.abs(self.centres).max()) + margin
        return -r, r


def ring_mixture(n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    """n_modes Gaussians evenly spaced on a circle of the given radius.

    The unrolled-GAN / VEEGAN papers use std 0.02 and tens of thousands of training steps; our default
    0.05 keeps the "within 3 std" quality test reachable in the ~1000 steps a CPU notebook can afford
    (the modes stay far apart: neighbouring centres are 1.5 apart, 30 std).
    """
    if n_modes < 1 or radius <= 0 or std <= 0:
        raise ConfigError("the ring needs n_modes >= 1, radius > 0 and std > 0")
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return GaussianMixture2D("ring", radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), std)


def grid_mixture(side: int = 5, spacing: float = 2.0, std: float = 0.1) -> GaussianMixture2D:
    """side x side Gaussians on a square grid centred at 0, `spacing` apart.

    The literature's 5x5 grid uses std 0.05; our default 0.1 is, like the ring's, chosen so that a
    short CPU run can reach the "within 3 std" zone (neighbouring centres are still 20 std apart).
    """
    if side < 1 or spacing <= 0 or std <= 0:
        raise ConfigError("the grid needs side >= 1, spacing > 0 and std > 0")
    ticks = spacing * (np.arange(side) - (side - 1) / 2)
    xx, yy = np.meshgrid(ticks, ticks)
    return GaussianMixture2D("grid", np.stack([xx.ravel(), yy.ravel()], axis=1), std)


MIXTURES: dict[str, Callable[[], GaussianMixture2D]] = {"ring": ring_mixture, "grid": grid_mixture}


def get_mixture(name: str) -> GaussianMixture2D:
    try:
        return MIXTURES[name]()
    except KeyError:
        raise ConfigError(f"unknown mixture {name!r}; choose one of {', '.join(MIXTURES)}") from None


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


# ============================================================ 3b. losses and the training loop
def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic minimises mean f(x*) - mean f(x) (book eq. 15.16, averaged instead of summed):
    it raises its score on real samples and lowers it on generated ones."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator minimises -mean f(x*): it moves its samples uphill on the critic."""
    return -fake_scores.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP's penalty mean_k (||grad_x f(x_hat_k)|| - 1)^2 at x_hat = alpha x + (1 - alpha) x*,
    alpha ~ U[0, 1] per pair (pass `alpha`, shape (N, 1), to fix it). It softly enforces the
    1-Lipschitz constraint (book eq. 15.17) on the segments between real and generated points."""
    if real.shape != fake.shape:
        raise DataError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} batches must match")
    if alpha is None:
        alpha = torch.rand(real.shape[0], 1)
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.norm(dim=1) - 1.0) ** 2).mean()


METHODS = ("gan", "minimax", "lsgan", "hinge", "wgan-clip", "wgan-gp")
# Methods trained with a loss pair from course_lib.losses ("gan" is the non-saturating GAN).
LOSS_OF_METHOD = {"gan": "non-saturating", "minimax": "minimax", "lsgan": "lsgan", "hinge": "hinge"}


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
    optimizer: str = "adam"            # "adam" or "rmsprop" (WGAN with clipping, as in its paper)
    clip: float = 0.01                 # wgan-clip: critic weights kept in [-clip, clip]
    gp_weight: float = 0.1             # wgan-gp: lambda (Gulrajani et al. use 0.1 for toy data)
    latent_dim: int = 2
    hidden: int = 64
    depth: int = 3
    snapshot_every: int = 0            # keep generated samples every k steps (0: only at the end)
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
        "gan": gan, "minimax": gan, "lsgan": gan, "hinge": gan,  # minimax, lsgan, hinge: the loss differs
        "wgan-clip": dict(steps=800, critic_steps=5, lr_g=5e-4, lr_d=5e-4, optimizer="rmsprop", clip=0.01),
        "wgan-gp": dict(steps=800, critic_steps=5, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.9), optimizer="adam",
                        gp_weight=0.1),
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
    gan:       D minimises BCE (softplus form); G minimises -mean log D(G(z)) (non-saturating).
    minimax, lsgan, hinge: the same loop with that loss pair from course_lib.losses.
    wgan-clip: critic minimises mean f(x*) - mean f(x), then its weights are clipped to [-c, c].
    wgan-gp:   the same critic loss + lambda * gradient_penalty; no clipping.
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
            real_scores, fake_scores = scores[:n], scores[n:]
            if config.method in LOSS_OF_METHOD:
                d_loss = get_loss(LOSS_OF_METHOD[config.method]).discriminator(real_scores, fake_scores)
            else:
                d_loss = wgan_critic_loss(real_scores, fake_scores)
                if config.method == "wgan-gp":
                    d_loss = d_loss + config.gp_weight * gradient_penalty(D, real, fake)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            if config.method == "wgan-clip":
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-config.clip, config.clip)
        fake_scores = D(G(torch.randn(n, config.latent_dim)))
        if config.method in LOSS_OF_METHOD:
            g_loss = get_loss(LOSS_OF_METHOD[config.method]).generator(fake_scores)
        else:
            g_loss = wgan_generator_loss(fake_scores)
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


# ======================================================================== 4. mode coverage
@dataclass
class ModeCoverage:
    """How well samples cover a mixture: modes covered (of n_modes), the high-quality fraction,
    and the number of high-quality samples assigned to each mode."""

    modes_covered: int
    n_modes: int
    high_quality_fraction: float
    counts: np.ndarray


def mode_coverage(samples, mixture: GaussianMixture2D, n_std: float = 3.0, min_share: float = 0.2) -> ModeCoverage:
    """VEEGAN-style mode coverage.

    A sample is high quality when its distance to the nearest centre is at most n_std * std; it then
    counts for that centre. A mode is covered when it gets at least min_share * N / K high-quality
    samples, i.e. min_share of what it would get if the N samples matched the K-mode mixture
    exactly (0.2 x 2500 / 25 = 20 samples for the 5x5 grid), so a few stray points do not count as a
    mode learned.
    """
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
        raise DataError(f"samples must have shape (N, 2) with N >= 1, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("samples contain NaN or infinite values (did training diverge?)")
    if n_std <= 0 or not 0 < min_share <= 1:
        raise ConfigError("n_std must be > 0 and min_share in (0, 1]")
    dist = np.linalg.norm(x[:, None, :] - mixture.centres[None, :, :], axis=2)
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(x)), nearest] <= n_std * mixture.std
    counts = np.bincount(nearest[good], minlength=mixture.n_modes)
    covered = int(np.sum(counts >= min_share * len(x) / mixture.n_modes))
    return ModeCoverage(covered, mixture.n_modes, float(good.mean()), counts)


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


def compare_methods(mixtures: list[str], configs: dict[str, ToyTrainConfig], seeds: list[int],
                    n_samples: int = 2500, progress: Callable[[str], None] | None = None) -> list[CoverageRow]:
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
                    progress(f"{name} {label} seed {seed}: {cov.modes_covered}/{cov.n_modes} modes, "
                             f"{100 * cov.high_quality_fraction:.1f}% high quality")
            rows.append(row)
    return rows


def format_coverage_table(rows: list[CoverageRow]) -> str:
    """A plain-text table: modes covered and high-quality samples, mean ± std over seeds."""
    seeds = len(rows[0].modes) if rows else 0
    head = f"{'data':<5} {'method':<15} {'modes covered':>18} {'high-quality samples':>22}   ({seeds} seeds, mean ± std)"
    return "\n".join([head, "-" * len(head)] + [r.summary() for r in rows])


# ============================================== 5. vanishing gradients with a frozen generator
def small_image_gan(pixels: int = 784, latent_dim: int = 64, hidden: int = 256) -> tuple[nn.Module, nn.Module]:
    """A small MLP GAN for flattened images in [-1, 1]: G = z -> hidden (ReLU) -> pixels (tanh),
    D = pixels -> hidden (LeakyReLU 0.2) -> one logit. Small enough to train on a CPU in seconds."""
    G = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, pixels), nn.Tanh())
    D = nn.Sequential(nn.Linear(pixels, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1), nn.Flatten(0))
    G.latent_dim = latent_dim
    return G, D


SampleReal = Callable[[int, np.random.Generator], torch.Tensor]


def train_gan_snapshots(G: nn.Module, D: nn.Module, sample_real: SampleReal, latent_dim: int, steps: int,
                        snapshot_at: list[int], lr: float = 2e-4, batch_size: int = 64,
                        seed: int = 0) -> dict[int, tuple[dict, dict]]:
    """Train a standard GAN (BCE discriminator, non-saturating generator, Adam(lr, betas 0.5/0.999),
    one D step per G step) and return copies of both networks' weights after each step in
    `snapshot_at` (0 = before training): {step: (G state_dict, D state_dict)}."""
    import copy

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

    d_steps: np.ndarray          # discriminator updates done when each norm was measured
    grad_norm_minimax: np.ndarray
    grad_norm_non_saturating: np.ndarray
    d_accuracy: np.ndarray       # fraction of real and generated points classified correctly


def _generator_grad_norm(G: nn.Module, D: nn.Module, z: torch.Tensor, loss_fn) -> float:
    G.zero_grad(set_to_none=True)
    loss_fn(D(G(z))).backward()
    return float(torch.sqrt(sum((p.grad ** 2).sum() for p in G.parameters() if p.grad is not None)))


def frozen_generator_gradients(G: nn.Module, D: nn.Module, sample_real: SampleReal, latent_dim: int,
                               d_steps: int = 1000, measure_every: int = 50, lr_d: float = 2e-4,
                               batch_size: int = 64, n_eval: int = 500, seed: int = 0) -> FrozenGeneratorRun:
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
