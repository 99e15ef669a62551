"""Inception Score (Salimans et al. 2016).

A classifier gives each image a label distribution p(y|x). Good samples are recognisable (p(y|x)
peaked) and varied (the marginal p(y) = E_x p(y|x) spread out). The score rewards both:

    IS = exp( E_x KL( p(y|x) || p(y) ) ) = exp( I(y; x) ),

the exponential of the mutual information between image and label, so 1 <= IS <= number of classes.
By the convention of the original code (and torch-fidelity), the N images are cut into 10
consecutive splits (boundaries floor(i N / 10)), the score is computed on each with that split's
own marginal, and the mean and (population) standard deviation over splits are reported. Everything
is float64. The Inception network's head is applied without its bias, as in the original code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import MetricInputError
from .features import FeatureSet, extractor_for, features_with
from .options import FeatureOptions
from .results import MetricResult


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


def inception_score(
    images: Any,
    *,
    splits: int = 10,
    ci: float | None = None,
    bootstrap: int = 200,
    unbiased: bool = False,
    options: FeatureOptions | None = None,
    **settings,
) -> MetricResult:
    """IS (mean ± std over splits) of images (any accepted form) or of a FeatureSet with logits.

    `options` / `settings`: the shared metric settings (`FeatureOptions`: extractor, device, n_samples, ...).
    extractor='inception' needs the weights' 1008-way head (HeadMissing says how to get it);
    extractor='mnist' gives the MNIST-IS (at most 10), not comparable with the Inception Score.
    `ci` (e.g. 0.95): add a percentile bootstrap interval over the samples (`bootstrap` resamples, seeded by the
    options' seed). `unbiased`: IS_inf, the extrapolation to infinitely many samples (Chong & Forsyth 2020).
    """
    opts = FeatureOptions.of(options, **settings)
    if isinstance(images, FeatureSet):
        feats = images
    else:
        ext = extractor_for(opts, (images,), need_head=True)
        feats = features_with(images, ext, opts, want_logits=True)
    if feats.logits is None:
        raise MetricInputError("these features have no class logits; the Inception Score needs a classifier head")
    if unbiased or ci is not None:
        # Imported here: both modules build on this one's formulas (a top-level import would be circular).
        from .unbiased import inception_score_infinity
        from .uncertainty import bootstrap_ci, check_settings

        if unbiased:
            return inception_score_infinity(feats, seed=opts.seed)
        check_settings(ci, bootstrap)
        return bootstrap_ci(inception_score, feats, resamples=bootstrap, level=ci, seed=opts.seed, splits=splits)
    mean, std = inception_score_from_logits(feats.logits, splits)
    name = "IS" if feats.comparable_with_inception else "MNIST-IS" if feats.extractor == "mnist" else "IS"
    return MetricResult(
        name, mean, std, feats.extractor_label, feats.comparable_with_inception, (len(feats),), {"splits": splits}
    )
