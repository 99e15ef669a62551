"""The generator's empirical Lipschitz constant: how far apart two samples can be, per unit of latent distance.

For a generator G mapping latents z to images (flattened, pixel values in [-1, 1]) and p in {1, 2},

    L_p(G) = sup over z1 != z2 of ||G(z1) - G(z2)||_p / ||z1 - z2||_p,

and the estimate is the maximum of that ratio over sampled pairs, a lower bound of the true constant
("max norm" in the diversity-controller seed). Pairs are either independent draws z1, z2 ~ N(0, I)
(the default: how far the generator stretches typical latent distances) or, with `radius`, local
pairs z2 = z1 + radius * u / ||u||_p (the local slope).

Optional refinement moves each of the best pairs towards a larger ratio, keeping z1 and ||z2 - z1||_p
fixed: with g(d) = ||G(z1 + d) - G(z1)||_p and w = grad g(d), the new offset is the maximiser of the
linearisation w . d' over the sphere ||d'||_p = ||d||_p (the dual-norm direction): for p = 2,
d' ~ w, which for a linear G(z) = A z + b is exactly the power iteration d <- A^T A d (so the estimate
converges to the spectral norm sigma_max(A)); for p = 1, d' = +-||d||_1 e_j at j = argmax |w_j|,
Hager's (1984) / Higham's (1988) 1-norm estimator (converging to max_j ||A e_j||_1 for a linear G).

The generator is evaluated in eval mode (batch-norm running statistics), without touching its
parameters' gradients, and the noise comes from a private seeded torch.Generator.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import MetricInputError
from .results import MetricResult

NORMS = (1, 2)


def _check_p(p) -> int:
    if p not in NORMS:
        raise MetricInputError(f"the Lipschitz estimate supports p = 1 or p = 2, got p = {p!r}")
    return int(p)


def lipschitz_ratios(
    z1: torch.Tensor, z2: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, p: int = 2
) -> torch.Tensor:
    """Per pair i: ||x1_i - x2_i||_p / ||z1_i - z2_i||_p, every sample flattened to a vector (float64)."""
    p = _check_p(p)
    if not (len(z1) == len(z2) == len(x1) == len(x2)) or len(z1) == 0:
        raise MetricInputError(
            f"need the same positive number of latents and images on both sides, got "
            f"{len(z1)}, {len(z2)}, {len(x1)}, {len(x2)}"
        )
    dz = (z1.flatten(1).double() - z2.flatten(1).double()).norm(p=p, dim=1)
    if (dz == 0).any():
        raise MetricInputError("a pair of identical latents has no Lipschitz ratio; draw distinct latents")
    dx = (x1.flatten(1).double() - x2.flatten(1).double()).norm(p=p, dim=1)
    return dx / dz


def _dual_direction(w: torch.Tensor, radius: torch.Tensor, p: int) -> torch.Tensor:
    """argmax over ||d||_p = radius of w . d, row by row (w: (N, d), radius: (N,))."""
    if p == 2:
        return w * (radius / w.norm(dim=1).clamp_min(1e-30)).unsqueeze(1)
    j = w.abs().argmax(dim=1)
    d = torch.zeros_like(w)
    d[torch.arange(len(w)), j] = torch.sign(w[torch.arange(len(w)), j]) * radius
    return d


def _refine(generator: nn.Module, z1: torch.Tensor, d: torch.Tensor, p: int, steps: int) -> torch.Tensor:
    """The best ratio per pair over `steps` dual-norm ascent steps (see the module docstring)."""
    radius = d.norm(p=p, dim=1)
    with torch.no_grad():
        x1 = generator(z1).flatten(1).double()
    best = torch.zeros(len(z1), dtype=torch.float64, device=z1.device)
    for _ in range(steps + 1):
        d = d.detach().requires_grad_(True)
        with torch.enable_grad():  # gradients w.r.t. the offsets only: the parameters' .grad stay untouched
            g = (generator(z1 + d).flatten(1).double() - x1).norm(p=p, dim=1)
            (w,) = torch.autograd.grad(g.sum(), d)
        best = torch.maximum(best, g.detach() / radius.double())
        d = _dual_direction(w.detach(), radius, p)
    return best


def empirical_lipschitz(
    generator: nn.Module,
    n_pairs: int = 1000,
    p: int = 2,
    *,
    radius: float | None = None,
    refine_steps: int = 0,
    refine_top: int = 16,
    latent_dim: int | None = None,
    batch_size: int = 250,
    seed: int = 0,
    device=None,
) -> MetricResult:
    """max over sampled latent pairs of ||G(z1) - G(z2)||_p / ||z1 - z2||_p (see the module docstring).

    Returns a MetricResult whose value is the maximum ratio; details hold the mean ratio (the typical
    stretch), the settings, and the maximum before refinement.
    """
    p = _check_p(p)
    if n_pairs < 1:
        raise MetricInputError(f"n_pairs must be at least 1, got {n_pairs}")
    if radius is not None and not radius > 0:
        raise MetricInputError(f"radius must be positive (or None for independent pairs), got {radius}")
    latent_dim = latent_dim or getattr(generator, "latent_dim", None)
    if not latent_dim:
        raise MetricInputError("the generator has no `latent_dim` attribute; pass latent_dim=")
    first = next(iter(generator.parameters()), torch.zeros(0))
    device = first.device if device is None else device
    dtype = first.dtype if first.is_floating_point() else torch.float32
    rng = torch.Generator().manual_seed(seed)
    was_training = generator.training
    generator.eval()
    try:
        z1s, ds, ratios = [], [], []
        for start in range(0, n_pairs, batch_size):
            n = min(batch_size, n_pairs - start)
            z1 = torch.randn(n, latent_dim, generator=rng)
            if radius is None:
                d = torch.randn(n, latent_dim, generator=rng) - z1
            else:
                u = torch.randn(n, latent_dim, generator=rng)
                d = radius * u / u.norm(p=p, dim=1, keepdim=True)
            z1, d = z1.to(device, dtype), d.to(device, dtype)
            with torch.no_grad():
                ratios.append(lipschitz_ratios(z1, z1 + d, generator(z1), generator(z1 + d), p).cpu())
            z1s.append(z1)
            ds.append(d)
        ratios = torch.cat(ratios)
        sampled_max = float(ratios.max())
        value = sampled_max
        if refine_steps > 0:
            top = ratios.topk(min(refine_top, len(ratios))).indices
            z1, d = torch.cat(z1s)[top.to(device)], torch.cat(ds)[top.to(device)]
            value = max(value, float(_refine(generator, z1, d, p, refine_steps).max()))
    finally:
        generator.train(was_training)
    details = {
        "mean_ratio": float(ratios.mean()),
        "sampled_max": sampled_max,
        "p": p,
        "n_pairs": n_pairs,
        "radius": radius,
        "refine_steps": refine_steps,
    }
    return MetricResult(f"Lipschitz (p={p})", value, None, "pixel space, values in [-1, 1]", True, (n_pairs,), details)
