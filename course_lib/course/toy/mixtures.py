"""2-D Gaussian mixtures (the 8-Gaussian ring and the 5x5 grid) and their mode coverage
(Srivastava et al. 2017, VEEGAN): a sample is high quality when it lies within 3 standard deviations
of its nearest mode centre; a mode is covered when enough high-quality samples land on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from course_lib.core.errors import ConfigError, DataError


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@dataclass(frozen=True)
class GaussianMixture2D:
    """An equal-weight mixture of isotropic 2-D Gaussians with the given centres and one std."""

    name: str
    centres: np.ndarray  # (K, 2)
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
