"""The Inception Score's formulas on class probabilities or logits: exp(E_x KL(p(y|x) || p(y))) over consecutive
splits (see `inception_score` for the metric, its conventions and its front door). Kept apart so that the
estimators built on them (`unbiased`, the IS relatives in `scores`) need not import the front door.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import MetricInputError


def _check_probabilities(p: torch.Tensor) -> torch.Tensor:
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise MetricInputError(
            f"expected class probabilities of shape (N, K) with N >= 1 and K >= 2, got {tuple(p.shape)}"
        )
    if not torch.isfinite(p).all():
        raise MetricInputError("class probabilities contain NaN or infinite values")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-6):
        raise MetricInputError(
            "each row of class probabilities must be non-negative and sum to 1 "
            "(pass logits to inception_score_from_logits instead)"
        )
    return p


def _split_bounds(n: int, splits: int) -> list[tuple[int, int]]:
    if splits < 1:
        raise MetricInputError(f"splits must be at least 1, got {splits}")
    if n < splits:
        raise MetricInputError(f"{n} images cannot be cut into {splits} splits; use more images or fewer splits")
    return [(i * n // splits, (i + 1) * n // splits) for i in range(splits)]


def mean_kl_to_marginal(p: torch.Tensor, log_p: torch.Tensor) -> float:
    """E_x KL(p(y|x) || p(y)) for one split, p(y) being the split's mean of p(y|x). Terms with p = 0 count 0."""
    marginal = p.mean(0, keepdim=True)
    kl = torch.where(p > 0, p * (log_p - marginal.log()), torch.zeros_like(p)).sum(1)
    return float(kl.mean())


def inception_score_from_probabilities(probabilities, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of exp(E_x KL(p(y|x) || p(y))) over `splits` consecutive splits of (N, K) probabilities."""
    p = _check_probabilities(
        torch.as_tensor(
            np.asarray(probabilities) if not isinstance(probabilities, torch.Tensor) else probabilities
        ).double()
    )
    log_p = torch.where(p > 0, p.log(), torch.zeros_like(p))
    scores = [np.exp(mean_kl_to_marginal(p[a:b], log_p[a:b])) for a, b in _split_bounds(len(p), splits)]
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_from_logits(logits, splits: int = 10) -> tuple[float, float]:
    """Like inception_score_from_probabilities, from logits (log-softmax keeps tiny probabilities exact)."""
    z = torch.as_tensor(logits).double()
    if z.ndim != 2 or not torch.isfinite(z).all():
        raise MetricInputError(f"logits must be a finite (N, K) array, got shape {tuple(z.shape)}")
    log_p = torch.log_softmax(z, 1)
    p = log_p.exp()
    scores = [np.exp(mean_kl_to_marginal(p[a:b], log_p[a:b])) for a, b in _split_bounds(len(p), splits)]
    return float(np.mean(scores)), float(np.std(scores))
