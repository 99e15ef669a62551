"""Moving through a generator's latent space: truncation, interpolation, latent arithmetic, inversion.

Truncation trades diversity for quality by keeping z near the prior's mode. Two forms are in use:

- resampling (BigGAN, Brock et al. 2019; Marchesi 2017): draw z ~ N(0, I) and redraw every
  component with |z_i| > tau until none is left, i.e. sample each component from N(0, 1) truncated
  to [-tau, tau];
- scaling towards the mean (StyleGAN's psi, Karras et al. 2019): z' = mean + psi (z - mean), psi in
  [0, 1]; for a N(0, I) prior the mean is 0, so this shrinks every z by psi.

How much of N(0, I_d) a threshold rejects (Prince, *Understanding Deep Learning*, problem 15.6) depends
on what "beyond tau standard deviations" is applied to, so `rejected_fraction` gives all three:

    component:  P(|z_i| > tau)                          = 2 Phi(-tau) = erfc(tau / sqrt 2)
    vector:     P(some |z_i| > tau), i.e. the mass of N(0, I_d) outside the cube [-tau, tau]^d
                                                        = 1 - (1 - 2 Phi(-tau))^d
    norm:       P(||z|| > tau)                           = P(chi2_d > tau^2) = Q(d/2, tau^2/2)

(Q is the regularised upper incomplete gamma function, evaluated here by its finite closed form.)

Interpolation: `lerp` cuts straight through the ball, where a high-dimensional Gaussian has almost no
mass (the midpoint of two independent draws has norm about ||z|| / sqrt 2); `slerp` (Shoemake 1985,
used for GANs by White 2016) follows the great circle between the directions, with the norm moving
linearly between the endpoints' norms, so the path stays on the shell where the prior's samples lie.

Latent arithmetic (Radford et al. 2015): the mean latent of samples with an attribute minus the mean
latent of those without gives a direction; adding it to z adds the attribute. Inversion (Zhu et al.
2016; Creswell & Bharath 2018) finds the z whose image is closest to a given image by gradient descent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from course_lib.core.errors import ConfigError, DataError

RULES = ("component", "vector", "norm")


# ------------------------------------------------------------------------------------------ truncation
def _check_tau(tau: float) -> float:
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not tau > 0 or not math.isfinite(tau):
        raise ConfigError(f"truncation threshold tau must be a positive finite number, got {tau!r}")
    return float(tau)


def _chi2_sf(x: float, d: int) -> float:
    """P(chi2_d > x) by the closed form of Q(d/2, x/2) (Abramowitz & Stegun 26.4.4 and 26.4.5).

    With y = x/2:  even d = 2k:  Q = e^{-y} sum_{j<k} y^j / j!
                   odd  d = 2k+1: Q = erfc(sqrt y) + e^{-y} sum_{j<k} y^{j+1/2} / Gamma(j + 3/2)
    Terms are added in log space, so d in the hundreds and large x stay exact to rounding.
    """
    y = x / 2
    if y == 0:
        return 1.0
    if d % 2 == 0:
        logs = [j * math.log(y) - math.lgamma(j + 1) - y for j in range(d // 2)]
        head = 0.0
    else:
        logs = [(j + 0.5) * math.log(y) - math.lgamma(j + 1.5) - y for j in range(d // 2)]
        head = math.erfc(math.sqrt(y))
    if not logs:
        return head
    top = max(logs)
    return min(1.0, head + math.exp(top) * sum(math.exp(v - top) for v in logs))


def rejected_fraction(tau: float, d: int = 1, rule: str = "vector") -> float:
    """Fraction of N(0, I_d) that truncation at tau standard deviations throws away (see the module docstring).

    rule="component": one coordinate beyond tau (does not depend on d);
    rule="vector": at least one of the d coordinates beyond tau (the per-component truncation BigGAN
    uses, seen as a rejection of whole vectors: each such vector needs at least one redraw);
    rule="norm": the vector's length beyond tau.
    """
    tau = _check_tau(tau)
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise ConfigError(f"latent dimension d must be a positive integer, got {d!r}")
    outside = math.erfc(tau / math.sqrt(2))  # 2 Phi(-tau), accurate also when it is tiny
    if rule == "component":
        return outside
    if rule == "vector":
        return -math.expm1(d * math.log1p(-outside))  # 1 - (1 - p)^d without cancellation for small p
    if rule == "norm":
        return _chi2_sf(tau * tau, d)
    raise ConfigError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")


def _ndtr(x: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(x)


def truncated_normal(
    n: int, d: int, tau: float, seed: int = 0, method: str = "resample", max_rounds: int = 64
) -> torch.Tensor:
    """(n, d) draws of N(0, 1) truncated to [-tau, tau] in every component, from a private seeded stream.

    method="resample" is BigGAN's: redraw the components beyond tau. When tau is tiny almost every draw is
    rejected, so after `max_rounds` rounds the few components still outside are drawn by the inverse CDF
    instead (the same distribution). method="inverse_cdf" draws u ~ U(0, 1) and returns
    Phi^-1(Phi(-tau) + u (Phi(tau) - Phi(-tau))): one draw, and for a fixed seed each z moves continuously
    with tau (tau -> infinity gives Phi^-1(u), an ordinary normal draw), which is what a slider wants.
    """
    tau = _check_tau(tau)
    rng = torch.Generator().manual_seed(seed)
    if method == "inverse_cdf":
        return truncated_from_uniform(torch.rand(n, d, generator=rng, dtype=torch.float64), tau).float()
    if method != "resample":
        raise ConfigError(f"unknown truncation method {method!r}; choose 'resample' or 'inverse_cdf'")
    z = torch.randn(n, d, generator=rng)
    for _ in range(max_rounds):
        outside = z.abs() > tau
        count = int(outside.sum())
        if count == 0:
            return z
        z[outside] = torch.randn(count, generator=rng)
    outside = z.abs() > tau
    z[outside] = truncated_from_uniform(torch.rand(int(outside.sum()), generator=rng, dtype=torch.float64), tau).float()
    return z


def truncated_from_uniform(u: torch.Tensor, tau: float) -> torch.Tensor:
    """Phi^-1(Phi(-tau) + u (Phi(tau) - Phi(-tau))): uniforms u in [0, 1] -> N(0, 1) truncated to [-tau, tau]."""
    lo = _ndtr(torch.tensor(-tau, dtype=torch.float64))
    # Phi(tau) - Phi(-tau) = 1 - 2 Phi(-tau); by symmetry this stays exact for large tau.
    z = torch.special.ndtri(lo + u * (1 - 2 * lo))
    return z.clamp(-tau, tau)  # guards the last ulp of rounding at the edges


def truncated_on_shell(n: int, d: int, tau: float, seed: int = 0, method: str = "resample") -> torch.Tensor:
    """Truncation that keeps the radius: the direction of a draw truncated at tau, at the length of an
    untruncated N(0, I_d) draw (chi-distributed, about sqrt(d)).

    Truncating every component shrinks the whole vector (its mean squared length falls from d towards
    d tau^2 / 3), so at small tau the latents leave the shell of radius ~sqrt(d) that the generator saw in
    training and move towards z = 0, where a DCGAN's images fade. Here only the direction is truncated:
    the latents stay on the typical shell. The radius and the direction come from separate seeded streams.
    """
    radius = torch.randn(n, d, generator=torch.Generator().manual_seed(seed)).norm(dim=1, keepdim=True)
    direction = truncated_normal(n, d, tau, seed=seed + 1, method=method)
    return direction * (radius / direction.norm(dim=1, keepdim=True))


def truncate_psi(z: torch.Tensor, psi: float, mean: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN's truncation: mean + psi (z - mean). psi = 1 changes nothing, psi = 0 gives the mean."""
    if not 0 <= psi <= 1:
        raise ConfigError(f"psi must be in [0, 1], got {psi!r}")
    mean = torch.zeros_like(z) if mean is None else mean.to(z)
    return mean + psi * (z - mean)


def sample_latents(
    n: int, d: int, tau: float | None = None, psi: float | None = None, seed: int = 0, method: str = "resample"
) -> torch.Tensor:
    """(n, d) latents from a private seeded stream: N(0, I), truncated at tau, and/or scaled by psi."""
    if n < 1:
        raise ConfigError(f"number of latents must be at least 1, got {n}")
    if tau is None:
        z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    else:
        z = truncated_normal(n, d, tau, seed=seed, method=method)
    return z if psi is None else truncate_psi(z, psi)


# --------------------------------------------------------------------------------------- interpolation
def _as_t(t, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(t, dtype=like.dtype, device=like.device).reshape(-1, 1)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t) -> torch.Tensor:
    """(1 - t) z0 + t z1 for each t (a number or a 1-D sequence): shape (len(t), d)."""
    z0, z1 = z0.reshape(1, -1), z1.reshape(1, -1)
    t = _as_t(t, z0)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation: direction along the great circle, norm linear between ||z0|| and ||z1||.

        u(t) = [sin((1 - t) W) u0 + sin(t W) u1] / sin W,   W = arccos(u0 . u1),   u = z / ||z||
        slerp(t) = ((1 - t) ||z0|| + t ||z1||) u(t)

    For endpoints of equal norm this is exactly Shoemake's slerp and every point has that norm. Nearly
    parallel endpoints fall back to lerp of the directions; opposite ones have no unique great circle
    and are an error.
    """
    z0, z1 = z0.reshape(1, -1), z1.reshape(1, -1)
    t = _as_t(t, z0)
    n0, n1 = z0.norm(), z1.norm()
    if n0 == 0 or n1 == 0:
        raise ConfigError("slerp needs two non-zero latents (a zero vector has no direction); use lerp")
    u0, u1 = z0 / n0, z1 / n1
    cos = (u0 * u1).sum().clamp(-1, 1)
    if cos < -1 + eps:
        raise ConfigError(
            "slerp between opposite latents is undefined (every great circle joins them); "
            "perturb one endpoint or use lerp"
        )
    omega = torch.arccos(cos)
    if omega < 1e-4:
        direction = (1 - t) * u0 + t * u1
        direction = direction / direction.norm(dim=1, keepdim=True)
    else:
        direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return ((1 - t) * n0 + t * n1) * direction


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int = 9, method: str = "slerp") -> torch.Tensor:
    """`steps` latents evenly spaced in t from z0 (t = 0) to z1 (t = 1), by lerp or slerp."""
    if steps < 2:
        raise ConfigError(f"an interpolation path needs at least 2 steps, got {steps}")
    functions = {"lerp": lerp, "slerp": slerp}
    if method not in functions:
        raise ConfigError(f"unknown interpolation {method!r}; choose 'lerp' or 'slerp'")
    return functions[method](z0, z1, torch.linspace(0, 1, steps, dtype=z0.dtype))


# ----------------------------------------------------------------------------------- latent arithmetic
def attribute_direction(z: torch.Tensor, has_attribute) -> torch.Tensor:
    """mean(z | attribute) - mean(z | no attribute) from labelled latents (labels: bool, or +1/-1 as in CelebA)."""
    mask = torch.as_tensor(has_attribute)
    mask = mask > 0 if mask.dtype != torch.bool else mask
    if mask.shape != (len(z),):
        raise DataError(f"need one label per latent: {len(z)} latents, labels of shape {tuple(mask.shape)}")
    if mask.all() or not mask.any():
        raise DataError("an attribute direction needs latents both with and without the attribute")
    return z[mask].mean(0) - z[~mask].mean(0)


def class_means(z: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """(n_classes, d) mean latent of each class (NaN rows for classes with no latent)."""
    labels = torch.as_tensor(labels).long()
    n_classes = n_classes or int(labels.max()) + 1
    sums = torch.zeros(n_classes, z.shape[1], dtype=z.dtype).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=n_classes).to(z.dtype)
    return sums / counts[:, None]


def class_direction(z: torch.Tensor, labels: torch.Tensor, source: int, target: int) -> torch.Tensor:
    """mean(z | target class) - mean(z | source class): add it to a `source` latent to move towards `target`."""
    labels = torch.as_tensor(labels)
    for c in (source, target):
        if not (labels == c).any():
            raise DataError(f"no latent labelled {c}: draw more samples or lower the confidence threshold")
    return z[labels == target].mean(0) - z[labels == source].mean(0)


def apply_direction(z: torch.Tensor, direction: torch.Tensor, alpha: float) -> torch.Tensor:
    """z + alpha * direction (alpha may be negative: remove the attribute)."""
    return z + alpha * direction.reshape(1, -1).to(z)


def read_celeba_attributes(path: str | Path) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Read CelebA's list_attr_celeba.txt: (attribute names, {file name: int8 tensor of +1/-1 per attribute}).

    Format: first line the image count, second line the 40 attribute names, then `file v1 ... v40`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CelebA attribute file not found at {path} (list_attr_celeba.txt from the official release)")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"{path} is not a CelebA attribute file (expected a count line and a names line)")
    names = lines[1].split()
    table = {}
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DataError(
                f"{path}, line {number}: expected a file name and {len(names)} values, got {len(parts) - 1}"
            )
        table[parts[0]] = torch.tensor([int(v) for v in parts[1:]], dtype=torch.int8)
    return names, table


# --------------------------------------------------------------------------------------------- inversion
@dataclass
class Inversion:
    """Result of `invert`: the latents found, their images and per-image reconstruction errors."""

    z: torch.Tensor  # (N, d)
    reconstruction: torch.Tensor  # (N, C, H, W) in [-1, 1]
    mse: torch.Tensor  # (N,) mean squared error in [-1, 1] pixel units
    history: list[float]  # mean loss of the best restart per step

    @property
    def psnr(self) -> torch.Tensor:
        """Peak signal-to-noise ratio in dB for pixel range 2 ([-1, 1]): 10 log10(4 / mse)."""
        return 10 * torch.log10(4 / self.mse.clamp_min(1e-12))


def invert(
    generator: nn.Module,
    target: torch.Tensor,
    steps: int = 300,
    lr: float = 0.05,
    restarts: int = 4,
    seed: int = 0,
    norm_weight: float = 1e-3,
    progress: bool = False,
) -> Inversion:
    """Find z with G(z) close to `target` (N, C, H, W in [-1, 1], or uint8) by Adam on the pixel MSE.

    loss(z) = mean (G(z) - x)^2 + norm_weight (||z||^2 / d - 1)^2

    The second term keeps z near the shell ||z||^2 ~ d where the prior puts its mass (without it, z
    drifts to norms the generator never saw). Each image gets `restarts` random starts; the best is kept.
    Only z is optimised: the generator's weights get no gradients and stay in eval mode.
    """
    from tqdm.auto import tqdm

    from course_lib.core.images import to_float

    if target.dtype == torch.uint8:
        target = to_float(target)
    if target.ndim != 4:
        raise DataError(f"target images must have shape (N, C, H, W), got {tuple(target.shape)}")
    device = next(generator.parameters()).device
    d = generator.latent_dim
    was_training = generator.training
    generator.eval()
    n = len(target)
    x = target.to(device).float().repeat(restarts, 1, 1, 1)  # restart r of image i sits at row r * n + i
    z = torch.randn(restarts * n, d, generator=torch.Generator().manual_seed(seed)).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    history = []
    try:
        for _ in tqdm(range(steps), desc="inverting", disable=not progress, leave=False):
            per_image = (generator(z) - x).pow(2).flatten(1).mean(1)
            prior = norm_weight * (z.pow(2).sum(1) / d - 1).pow(2)
            loss = (per_image + prior).sum()
            optimizer.zero_grad(set_to_none=True)
            (grad,) = torch.autograd.grad(loss, z)  # only z: no gradients pile up on the generator
            z.grad = grad
            optimizer.step()
            history.append(float(per_image.detach().view(restarts, n).min(0).values.mean()))
        with torch.no_grad():
            images = generator(z)
            mse = (images - x).pow(2).flatten(1).mean(1).view(restarts, n)
            best = mse.argmin(0)
            rows = best * n + torch.arange(n, device=device)
            return Inversion(z.detach()[rows].cpu(), images[rows].cpu(), mse.min(0).values.cpu(), history)
    finally:
        generator.train(was_training)
