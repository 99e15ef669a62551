"""Relatives of the Inception Score that fix one of its blind spots. All work on class probabilities.

- Mode Score (Che et al. 2017): IS ignores what the real label distribution is; the Mode Score
  penalises a generated label marginal p(y) that differs from the real one p*(y):
      MS = exp( E_x KL(p(y|x) || p*(y)) - KL(p(y) || p*(y)) ).
- AM Score (Zhou et al. 2018): the same idea as a sum of two costs (lower is better, 0 is ideal):
      AM = KL(p*(y) || p(y)) + E_x H(p(y|x)).
- Modified Inception Score, m-IS (Gurumurthy et al. 2017): IS cannot see a generator that draws the
  same digit 7 every time it draws a 7 (intra-class mode collapse). m-IS measures diversity within
  each class: for samples x_i, x_j predicted to be in the same class,
      m-IS = exp( E_{i != j} KL(p(y|x_i) || p(y|x_j)) ),
  computed per predicted class and averaged over classes with at least two samples. Identical
  samples within a class give 1.

Probabilities are float64; where a probability is exactly 0 in a log, it is clamped to 1e-12.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import MetricInputError
from .features import FeatureSet, extractor_for, features_with
from .options import FeatureOptions
from .results import MetricResult
from .score_formulas import _check_probabilities

EPS = 1e-12


def _probs(x) -> torch.Tensor:
    if isinstance(x, FeatureSet):
        return x.probabilities
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).double()
    return _check_probabilities(t)


def _log(p: torch.Tensor) -> torch.Tensor:
    return p.clamp_min(EPS).log()


def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) along the last axis, with 0 log 0 = 0."""
    return torch.where(p > 0, p * (_log(p) - _log(q)), torch.zeros_like(p)).sum(-1)


def real_label_distribution(real) -> torch.Tensor:
    """p*(y): the mean of real samples' class probabilities, or class frequencies if given integer labels."""
    t = real.probabilities if isinstance(real, FeatureSet) else torch.as_tensor(real)
    if t.ndim == 1:  # integer labels
        counts = torch.bincount(t.long()).double()
        return counts / counts.sum()
    return _probs(t).mean(0)


def _match_classes(p: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    if len(prior) > p.shape[1]:
        raise MetricInputError(
            f"real labels go up to class {len(prior) - 1} but probabilities have {p.shape[1]} classes"
        )
    return torch.nn.functional.pad(prior, (0, p.shape[1] - len(prior)))


def mode_score_from_probabilities(generated, real) -> float:
    """MS = exp(E_x KL(p(y|x) || p*(y)) - KL(p(y) || p*(y))); `real`: probabilities (N, K) or integer labels (N,)."""
    p = _probs(generated)
    prior = _match_classes(p, real_label_distribution(real))
    return float(torch.exp(kl(p, prior[None]).mean() - kl(p.mean(0), prior)))


def am_score_from_probabilities(generated, real) -> float:
    """AM = KL(p*(y) || p(y)) + E_x H(p(y|x)); lower is better."""
    p = _probs(generated)
    prior = _match_classes(p, real_label_distribution(real))
    entropy = -torch.where(p > 0, p * _log(p), torch.zeros_like(p)).sum(1)
    return float(kl(prior, p.mean(0)) + entropy.mean())


def modified_inception_score_from_probabilities(generated) -> float:
    """m-IS: exp of the mean pairwise KL between samples of the same predicted class, averaged over classes."""
    p = _probs(generated)
    log_p = _log(p)
    predicted = p.argmax(1)
    per_class = []
    for c in predicted.unique():
        pc, lc = p[predicted == c], log_p[predicted == c]
        m = len(pc)
        if m < 2:
            continue
        # KL(p_i || p_j) = sum_y p_i log p_i - sum_y p_i log p_j, for all pairs at once.
        neg_entropy = (pc * lc).sum(1, keepdim=True)
        pairwise = neg_entropy - pc @ lc.T
        mean_kl = (pairwise.sum() - pairwise.diagonal().sum()) / (m * (m - 1))
        per_class.append(torch.exp(mean_kl))
    if not per_class:
        raise MetricInputError("m-IS needs at least two samples predicted in the same class")
    return float(torch.stack(per_class).mean())


def _result(metric: str, value: float, feats: FeatureSet, n: tuple) -> MetricResult:
    return MetricResult(metric, value, None, feats.extractor_label, feats.comparable_with_inception, n)


def _generated_and_real(generated, real, options: FeatureOptions):
    """FeatureSets with logits for both sides (real may stay a vector of integer labels)."""
    real_is_labels = _is_label_vector(real)
    ext = extractor_for(options, (generated, None if real_is_labels else real), need_head=True)
    fg = features_with(generated, ext, options, want_logits=True)
    fr = real if real_is_labels else features_with(real, ext, options, want_logits=True)
    if isinstance(fr, FeatureSet) and fr.extractor_identity != fg.extractor_identity:
        raise MetricInputError(
            f"generated and real features come from different extractors ({fg.extractor_label} vs {fr.extractor_label})"
        )
    return fg, fr


def mode_score(generated: Any, real: Any, *, options: FeatureOptions | None = None, **settings) -> MetricResult:
    """Mode Score of generated images against real ones (images, FeatureSets with logits, or integer labels).

    `options` / `settings`: the shared metric settings (`FeatureOptions`); the extractor needs a classifier head.
    """
    fg, fr = _generated_and_real(generated, real, FeatureOptions.of(options, **settings))
    return _result("Mode Score", mode_score_from_probabilities(fg, fr), fg, (len(fg), len(fr)))


def am_score(generated: Any, real: Any, *, options: FeatureOptions | None = None, **settings) -> MetricResult:
    """AM Score (lower is better) of generated images against real ones (as `mode_score` takes them)."""
    fg, fr = _generated_and_real(generated, real, FeatureOptions.of(options, **settings))
    return _result("AM Score", am_score_from_probabilities(fg, fr), fg, (len(fg), len(fr)))


def modified_inception_score(generated: Any, *, options: FeatureOptions | None = None, **settings) -> MetricResult:
    """m-IS (intra-class diversity) of generated images or a FeatureSet with logits."""
    opts = FeatureOptions.of(options, **settings)
    ext = extractor_for(opts, (generated,), need_head=True)
    fg = features_with(generated, ext, opts, want_logits=True)
    return _result("m-IS", modified_inception_score_from_probabilities(fg), fg, (len(fg),))


def _is_label_vector(x) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim == 1 and not torch.as_tensor(x).is_floating_point()
