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

from .errors import MetricInputError
from .features import FeatureSet, extractor_for, features_with
from .options import FeatureOptions
from .results import MetricResult
from .score_formulas import (  # noqa: F401 (their old home)
    _check_probabilities,
    inception_score_from_logits,
    inception_score_from_probabilities,
    mean_kl_to_marginal,
)
from .unbiased import inception_score_infinity
from .uncertainty import bootstrap_ci, check_settings


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
        if unbiased:
            return inception_score_infinity(feats, seed=opts.seed)
        check_settings(ci, bootstrap)
        return bootstrap_ci(inception_score, feats, resamples=bootstrap, level=ci, seed=opts.seed, splits=splits)
    mean, std = inception_score_from_logits(feats.logits, splits)
    name = "IS" if feats.comparable_with_inception else "MNIST-IS" if feats.extractor == "mnist" else "IS"
    return MetricResult(
        name, mean, std, feats.extractor_label, feats.comparable_with_inception, (len(feats),), {"splits": splits}
    )
