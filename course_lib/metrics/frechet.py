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
