"""The GAN loss at the optimal discriminator D*(x) = Pr(x) / (Pr(x) + Pr(x*)) and the divergences it
relates to: KL, reverse KL, Jensen-Shannon on a grid of density values, and the closed forms of
problems 15.4 (shifted uniforms) and 15.5 (Gaussians) with numerical versions that check them."""

from __future__ import annotations

import math

import numpy as np

from course_lib.core.errors import DataError
from course_lib.course.wasserstein import wasserstein_1d_densities, wasserstein_1d_quantiles

LOG2 = math.log(2.0)


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
    if x is None:
        x = np.linspace(min(0.0, a) - 0.5, max(1.0, a + 1.0) + 0.5, 20_001)
    p, q = uniform_density(x, 0.0), uniform_density(x, a)
    return {
        "kl": kl_divergence(p, q, x),
        "reverse_kl": kl_divergence(q, p, x),
        "js": js_divergence(p, q, x),
        "wasserstein": wasserstein_1d_densities(x, p, q),
    }


def gaussian_kl(mu1, sigma1, mu2, sigma2):
    """Problem 15.5 (book eq. 15.20), KL[N(mu1, sigma1^2) || N(mu2, sigma2^2)]
    = log(sigma2 / sigma1) + (sigma1^2 + (mu1 - mu2)^2) / (2 sigma2^2) - 1/2."""
    mu1, sigma1, mu2, sigma2 = (np.asarray(v, dtype=float) for v in (mu1, sigma1, mu2, sigma2))
    if np.any(sigma1 <= 0) or np.any(sigma2 <= 0):
        raise DataError("standard deviations must be > 0")
    return np.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5


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
    from scipy.stats import norm  # imported here: scipy.stats takes a while to load

    lo = min(mu1 - 12 * sigma1, mu2 - 12 * sigma2)
    hi = max(mu1 + 12 * sigma1, mu2 + 12 * sigma2)
    x = np.linspace(lo, hi, 40_001)
    # p log(p / q) from log densities: far in the tails the densities underflow to 0 before the ratio does.
    log_p, log_q = norm.logpdf(x, mu1, sigma1), norm.logpdf(x, mu2, sigma2)
    kl = float(np.sum(_grid_weights(x) * np.exp(log_p) * (log_p - log_q)))
    w2 = wasserstein_1d_quantiles(lambda u: norm.ppf(u, mu1, sigma1), lambda u: norm.ppf(u, mu2, sigma2), order=2)
    return {"kl": kl, "w2": w2}
