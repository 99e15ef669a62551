"""The Fréchet distance between two Gaussians, the formula FID is built on (see `fid` for FID itself).

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^{1/2} )

Only the trace of the matrix square root is needed: the sum of the square roots of the eigenvalues of S1 S2,
which are those of the symmetric M = L^T S2 L with S1 = L L^T (module docstring of `fid` for the details).
Kept apart from `fid` so that the estimators built on the formula (`unbiased`) need not import FID's front door.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import MetricInputError


def trace_sqrt_product(sigma1, sigma2) -> float:
    """tr((S1 S2)^{1/2}) for symmetric PSD S1, S2: sum of sqrt(eigenvalues of L^T S2 L), S1 = L L^T."""
    s1 = torch.as_tensor(np.asarray(sigma1, dtype=np.float64))
    s2 = torch.as_tensor(np.asarray(sigma2, dtype=np.float64))
    # Cholesky and eigvalsh read one triangle only, so rounding asymmetry in a covariance is harmless.
    factor, info = torch.linalg.cholesky_ex(s1)
    if info.item() != 0:  # singular S1 (fewer samples than dimensions): a PSD factor from its eigendecomposition
        w, v = torch.linalg.eigh((s1 + s1.T) / 2)
        factor = v * w.clamp_min(0).sqrt()
    eigenvalues = torch.linalg.eigvalsh(factor.T @ (s2 @ factor))
    # Eigenvalues of a PSD matrix are >= 0; tiny negatives are rounding error.
    return float(eigenvalues.clamp_min(0).sqrt().sum())


def trace_sqrt_product_scipy(sigma1, sigma2, eps: float = 1e-6) -> float:
    """The same trace through scipy.linalg.sqrtm(S1 S2), pytorch-fid's way (slow; a cross-check)."""
    from scipy import linalg

    s1, s2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    root = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(root).all():  # singular product: pytorch-fid's remedy, a small ridge
        offset = np.eye(len(s1)) * eps
        root = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    return float(np.trace(root).real)


def frechet_distance(mu1, sigma1, mu2, sigma2, method: str = "eigh") -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}) in float64 (`method` 'eigh' or 'scipy')."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, dtype=np.float64)),
        np.atleast_2d(np.asarray(sigma2, dtype=np.float64)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise MetricInputError(
            f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
            f"{sigma2.shape} (were they computed with different feature extractors?)"
        )
    for name, a in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(a).all():
            raise MetricInputError(f"{name} contains NaN or infinite values")
    if method == "eigh":
        tr_root = trace_sqrt_product(sigma1, sigma2)
    elif method == "scipy":
        tr_root = trace_sqrt_product_scipy(sigma1, sigma2)
    else:
        raise MetricInputError(f"unknown method {method!r}: 'eigh' or 'scipy'")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_root)


class FrechetToReference:
    """Fréchet distances of many sets of feature rows to one fixed reference Gaussian (mu, sigma), fast.

    A bootstrap over generated samples recomputes the distance B times against the same reference. Here the
    reference's square root R = sigma^{1/2} is computed once; then for centred sample rows X (n, d) with
    covariance S = X^T X / (n - 1), tr((sigma S)^{1/2}) = tr((R S R)^{1/2}) is the sum of the square roots of the
    eigenvalues of (X R)(X R)^T / (n - 1): an n x n matrix when n < d, else the d x d one (X R)^T (X R) / (n - 1)
    (both have the same nonzero eigenvalues). With 500 Inception vectors that is a 500 x 500 eigenproblem per
    resample instead of a 2048 x 2048 one, and no covariance of the rows is formed.
    """

    def __init__(self, mu, sigma):
        self.mu = torch.as_tensor(np.atleast_1d(np.asarray(mu, dtype=np.float64)))
        sigma = torch.as_tensor(np.atleast_2d(np.asarray(sigma, dtype=np.float64)))
        if sigma.shape != (len(self.mu), len(self.mu)) or not (
            torch.isfinite(sigma).all() and torch.isfinite(self.mu).all()
        ):
            raise MetricInputError(
                f"reference statistics must be finite, mu (d,) and sigma (d, d); got {tuple(self.mu.shape)}, {tuple(sigma.shape)}"
            )
        w, v = torch.linalg.eigh((sigma + sigma.T) / 2)
        self.root = (v * w.clamp_min(0).sqrt()) @ v.T
        self.trace = float(torch.trace(sigma))

    def __call__(self, rows) -> float:
        """The Fréchet distance of the Gaussian fitted to `rows` ((n, d), n >= 2; unbiased covariance) to the reference."""
        x = torch.as_tensor(np.asarray(rows, dtype=np.float64) if not isinstance(rows, torch.Tensor) else rows).double()
        if x.ndim != 2 or x.shape[1] != len(self.mu) or len(x) < 2:
            raise MetricInputError(f"rows must be (n >= 2, {len(self.mu)}) features, got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise MetricInputError("rows contain NaN or infinite values")
        n = len(x)
        mean = x.mean(0)
        centred = x - mean
        projected = centred @ self.root
        gram = projected @ projected.T if n <= x.shape[1] else projected.T @ projected
        eigenvalues = torch.linalg.eigvalsh(gram / (n - 1)).clamp_min(0)
        trace_rows = float((centred * centred).sum()) / (n - 1)
        diff = mean - self.mu
        return float(diff @ diff + trace_rows + self.trace - 2 * eigenvalues.sqrt().sum())
