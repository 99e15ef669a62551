"""The 1-D GAN of Prince's chapter 15 (figure 15.1): generator x* = z + theta with z ~ N(0, 1), a
logistic-regression discriminator sig(phi_0 + phi_1 x), alternating gradient steps with hand-derived
gradients (numpy only, so every number can be checked on paper)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from course_lib.core.errors import ConfigError


def sigmoid(a):
    """sig[a] = 1 / (1 + exp(-a)), computed without overflow for large |a|."""
    a = np.asarray(a, dtype=float)
    out = np.empty_like(a)
    pos = a >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-a[pos]))
    e = np.exp(a[~pos])
    out[~pos] = e / (1.0 + e)
    return out


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
    theta: np.ndarray  # (steps + 1,)
    phi: np.ndarray  # (steps + 1, 2)
    d_loss: np.ndarray  # (steps + 1,) on a fixed evaluation batch
    g_grad: np.ndarray  # (steps + 1,) dL_G/dtheta on the evaluation batch
    settings: dict = field(default_factory=dict)


def train_toy_gan_1d(
    real_mean: float = 3.0,
    real_std: float = 1.0,
    theta0: float = 0.0,
    phi0: tuple[float, float] = (0.0, 0.0),
    steps: int = 200,
    d_steps: int = 1,
    lr_d: float = 0.1,
    lr_g: float = 0.1,
    batch_size: int = 64,
    generator_loss: str = "minimax",
    seed: int = 0,
) -> ToyGAN1DHistory:
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
    settings = dict(
        theta0=theta0,
        phi0=phi0,
        steps=steps,
        d_steps=d_steps,
        lr_d=lr_d,
        lr_g=lr_g,
        batch_size=batch_size,
        generator_loss=generator_loss,
        seed=seed,
    )
    return ToyGAN1DHistory(
        real_mean, real_std, np.array(thetas), np.array(phis), np.array(d_losses), np.array(g_grads), settings
    )


def fit_discriminator_1d(
    real_mean: float,
    theta: float,
    real_std: float = 1.0,
    steps: int = 2000,
    lr: float = 0.2,
    batch_size: int = 512,
    seed: int = 0,
) -> np.ndarray:
    """Train only the logistic discriminator, generator frozen at theta, by minibatch gradient
    descent on L_D; returns (phi_0, phi_1). Inputs are centred and scaled inside the fit (and the
    parameters mapped back) because plain gradient descent on uncentred x is badly conditioned."""
    if steps < 1 or batch_size < 1 or lr <= 0 or real_std <= 0:
        raise ConfigError("steps, batch_size and lr must be positive, real_std > 0")
    rng = np.random.default_rng(seed)
    centre, scale = 0.5 * (real_mean + theta), max(abs(real_mean - theta) / 2, real_std, 1.0)
    psi = np.zeros(2)  # parameters for u = (x - centre) / scale
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
    return np.array([(theta**2 - real_mean**2) / (2 * std**2), (real_mean - theta) / std**2])
