"""Perceptual path length (PPL; Karras, Laine, Aila 2019, "A Style-Based Generator Architecture", sec. 4.2).

How much the image changes when the latent moves a tiny step along an interpolation path:

    PPL = E[ d(G(interp(e0, e1; t)), G(interp(e0, e1; t + eps))) / eps^2 ],   eps = 1e-4

with e0, e1 two random latents, t ~ U(0, 1), and d a squared perceptual distance. A low PPL means a
smooth latent space with no abrupt changes between images. StyleGAN measures it

- in Z, with spherical interpolation (slerp) of z0, z1 ~ N(0, I), and
- in W, with linear interpolation (lerp) of w0 = f(z0), w1 = f(z1) (the mapping network),

and reports W's as lower: the mapping network "unwarps" the latent space. As in StyleGAN's code,
the 1% smallest and 1% largest distances are discarded before averaging (np.percentile with
'lower' and 'higher' interpolation), and noise inputs are held fixed (`noise_mode='const'`) so that
only the latent moves.

Conventions here (they differ from StyleGAN's FFHQ numbers, which are NOT comparable):
- d: StyleGAN uses LPIPS (VGG-16, learned weights), which cannot be downloaded here. course_lib uses
  the squared L2 distance between the features of a registered extractor (`similarity='mnist'`: the
  shipped MNIST classifier's 128-d features; 'pixels': its 8x8 pooled pixels), or 'l2': the mean
  squared difference of the raw pixels in [-1, 1]. Any function (a, b) -> (N,) distances works too.
- Crop / resize: none. StyleGAN crops FFHQ images to the face and resizes to 256x256 for LPIPS;
  MNIST digits are centred in their 28x28 frame, which the classifier reads at its native size.
- Slerp is the great-circle formula on the unnormalised latents (torch-fidelity's 'slerp_any'); for
  a generator that normalises z first (StyleGAN's mapping network), it equals StyleGAN's unit-sphere
  slerp.
- `t`: None draws t ~ U(0, 1) per pair (StyleGAN); a number fixes it (torch-fidelity evaluates every
  pair at t = 0).

tests/test_ppl.py checks this against torch-fidelity's PPL (same latents, same distance) and
against a closed form (a linear generator, where PPL = ||A u||^2 exactly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import MetricInputError

SPACES = ("z", "w")


@dataclass(frozen=True)
class PathLength:
    """A PPL estimate: mean and std of the kept distances, and how they were obtained."""

    mean: float
    std: float
    space: str
    n_samples: int  # pairs drawn
    n_kept: int  # pairs left after discarding the extreme percentiles
    epsilon: float
    similarity: str
    distances: np.ndarray  # every pair's d / eps^2, before discarding

    def __float__(self) -> float:
        return self.mean

    def __str__(self) -> str:
        return (
            f"PPL({self.space.upper()}) = {self.mean:.4g} ± {self.std:.4g} [{self.similarity}, "
            f"eps={self.epsilon:g}, n={self.n_kept} of {self.n_samples} pairs]"
        )

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "space": self.space,
            "n_samples": self.n_samples,
            "n_kept": self.n_kept,
            "epsilon": self.epsilon,
            "similarity": self.similarity,
        }


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation sin((1-t) W)/sin W a + sin(t W)/sin W b, W the angle between a and b
    (lerp where they are (anti)parallel)."""
    cos = ((a / a.norm(dim=-1, keepdim=True).clamp_min(eps)) * (b / b.norm(dim=-1, keepdim=True).clamp_min(eps))).sum(
        dim=-1, keepdim=True
    )
    omega = cos.clamp(-1.0, 1.0).acos()
    sin = omega.sin().clamp_min(eps)
    out = ((1 - t) * omega).sin() / sin * a + (t * omega).sin() / sin * b
    parallel = (cos > 1 - eps) | (cos < -1 + eps)
    return torch.where(parallel, lerp(a, b, t), out)


def feature_distance(extractor: str = "mnist", device="cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(a, b) -> squared L2 distances of a registered extractor's features, for images in [-1, 1]; or,
    for extractor 'l2', the mean squared pixel difference."""
    if extractor == "l2":
        return lambda a, b: (a.float() - b.float()).pow(2).flatten(1).mean(dim=1)
    from .features import get_extractor

    net = get_extractor(extractor, device)

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        both = (torch.cat([a, b]).float().clamp(-1, 1) + 1) / 2  # [-1, 1] -> [0, 1], what extractors take
        features = net(both)[0].float()
        fa, fb = features.chunk(2)
        return (fa - fb).pow(2).sum(dim=1)

    return distance


def _check_generator(generator, space: str) -> None:
    if not isinstance(generator, torch.nn.Module) or not hasattr(generator, "latent_dim"):
        raise MetricInputError("PPL needs a generator: an nn.Module with a `latent_dim` attribute")
    if space == "w" and not (hasattr(generator, "mapping") and hasattr(generator, "synthesis")):
        raise MetricInputError(
            f"PPL in W needs a style generator with mapping() and synthesis(); "
            f"{type(generator).__name__} has no intermediate latent space (use space='z')"
        )


def _images_of(generator, space: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """latent of the space -> images, with fixed noise inputs where the generator has them."""
    if hasattr(generator, "synthesis"):
        if space == "w":
            return lambda w: generator.synthesis(w, noise_mode="const")
        return lambda z: generator.synthesis(generator.mapping(z), noise_mode="const")
    return generator


def perceptual_path_length(
    generator: torch.nn.Module,
    n_samples: int = 2000,
    space: str = "z",
    *,
    epsilon: float = 1e-4,
    similarity: str | Callable = "mnist",
    seed: int = 0,
    t: float | None = None,
    latents: tuple[torch.Tensor, torch.Tensor] | None = None,
    discard_percentiles: tuple[float, float] | None = (1, 99),
    batch_size: int = 250,
    device=None,
) -> PathLength:
    """PPL of `generator` in Z (slerp) or W (lerp); see the module docstring.

    latents: the endpoints (z0, z1), each (n_samples, latent_dim), instead of drawing them from `seed`
    (W endpoints are their mapped values). similarity: 'mnist', 'pixels', 'inception' (features of
    that extractor), 'l2' (raw pixels), or a function (a, b) -> (N,) squared distances.
    """
    if space not in SPACES:
        raise MetricInputError(f"space must be 'z' or 'w', got {space!r}")
    _check_generator(generator, space)
    if not (isinstance(epsilon, float) and 0 < epsilon < 1):
        raise MetricInputError(f"epsilon must be a small positive float, got {epsilon!r}")
    if t is not None and not 0 <= t <= 1 - epsilon:
        raise MetricInputError(f"t must be in [0, 1 - epsilon], got {t!r}")
    if discard_percentiles is not None and not 0 <= discard_percentiles[0] < discard_percentiles[1] <= 100:
        raise MetricInputError(
            f"discard_percentiles must be (low, high) with 0 <= low < high <= 100, got {discard_percentiles!r}"
        )
    if device is None:
        device = next(generator.parameters()).device
    if latents is not None:
        z0, z1 = (torch.as_tensor(x, dtype=torch.float32) for x in latents)
        if z0.shape != z1.shape or z0.dim() != 2 or z0.shape[1] != generator.latent_dim or len(z0) < 2:
            raise MetricInputError(
                f"latents must be two (N, {generator.latent_dim}) tensors with N >= 2, got "
                f"{tuple(z0.shape)} and {tuple(z1.shape)}"
            )
        n_samples = len(z0)
    else:
        if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 2:
            raise MetricInputError(f"n_samples must be an integer >= 2, got {n_samples!r}")
        rng = torch.Generator().manual_seed(seed)
        z0 = torch.randn(n_samples, generator.latent_dim, generator=rng)
        z1 = torch.randn(n_samples, generator.latent_dim, generator=rng)
    ts = (
        torch.rand(n_samples, 1, generator=torch.Generator().manual_seed(seed + 1))
        if t is None
        else torch.full((n_samples, 1), float(t))
    )
    distance = similarity if callable(similarity) else feature_distance(similarity, device)
    name = similarity if isinstance(similarity, str) else getattr(similarity, "__name__", "custom")
    interpolate = slerp if space == "z" else lerp
    images = _images_of(generator, space)

    was_training = generator.training
    generator.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, n_samples, batch_size):
                e0, e1 = z0[start : start + batch_size].to(device), z1[start : start + batch_size].to(device)
                tb = ts[start : start + batch_size].to(device)
                if space == "w":
                    e0, e1 = generator.mapping(e0), generator.mapping(e1)
                pair = torch.cat([interpolate(e0, e1, tb), interpolate(e0, e1, tb + epsilon)])
                a, b = images(pair).chunk(2)
                out.append((distance(a, b).double() / epsilon**2).cpu())
    finally:
        generator.train(was_training)
    distances = torch.cat(out).numpy()
    if not np.all(np.isfinite(distances)):
        return PathLength(float("nan"), float("nan"), space, n_samples, 0, epsilon, name, distances)
    kept = distances
    if discard_percentiles is not None:
        low = np.percentile(distances, discard_percentiles[0], method="lower")
        high = np.percentile(distances, discard_percentiles[1], method="higher")
        kept = distances[(distances >= low) & (distances <= high)]
    return PathLength(float(kept.mean()), float(kept.std()), space, n_samples, len(kept), epsilon, name, distances)
