"""Improved precision and recall (Kynkaanniemi et al. 2019).

FID mixes two failures into one number: samples that look wrong (low fidelity) and parts of the
data distribution the generator never produces (low coverage). Precision and recall separate them.
Each set's manifold is estimated as the union of balls around its feature vectors, each ball's
radius being the distance to that vector's k-th nearest neighbour in the same set (k = 3):

    precision = fraction of generated samples inside the real manifold,
    recall    = fraction of real samples inside the generated manifold.

Distances are Euclidean, in float64, computed in blocks so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import MetricInputError
from .features import FeatureSet, features_of_pair
from .options import FeatureOptions
from .uncertainty import Interval, bootstrap_interval


def _as_features(x) -> torch.Tensor:
    x = x.features if isinstance(x, FeatureSet) else x
    x = torch.as_tensor(x).double()
    if x.ndim != 2 or len(x) == 0 or not torch.isfinite(x).all():
        raise MetricInputError(f"features must be a finite, non-empty (N, D) array, got shape {tuple(x.shape)}")
    return x


def kth_neighbour_radii(x: torch.Tensor, k: int = 3, block: int = 2048) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row (the row itself, at distance 0, is not counted)."""
    if not 1 <= k < len(x):
        raise MetricInputError(f"k = {k} nearest neighbours need at least {k + 1} samples, got {len(x)}")
    return torch.cat([torch.cdist(part, x).kthvalue(k + 1, dim=1).values for part in x.split(block)])


def inside_mask(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """For each of `points`, whether it lies within distance radii[j] of some centres[j] (a bool vector).
    Precision is its mean over generated points (real centres), recall over real points (generated centres);
    kept per point so an interval can resample the points without recomputing distances."""
    return torch.cat([(torch.cdist(part, centres) <= radii[None, :]).any(1) for part in points.split(block)])


def fraction_inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block: int = 2048) -> float:
    """Fraction of `points` within distance radii[j] of some centres[j]."""
    return float(inside_mask(points, centres, radii, block).double().mean())


@dataclass(frozen=True)
class PrecisionRecall:
    precision: float
    recall: float
    k: int
    extractor: str = ""
    n: tuple = ()

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 0.0 if total == 0 else 2 * self.precision * self.recall / total

    def __str__(self) -> str:
        return f"precision = {self.precision:.4f}, recall = {self.recall:.4f} (k={self.k})" + (
            f" [{self.extractor}, n={self.n[0]} generated vs {self.n[1]} real]" if self.extractor else ""
        )


def precision_recall_from_features(generated, real, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of generated features against real ones (both (N, D))."""
    g, r = _as_features(generated), _as_features(real)
    if g.shape[1] != r.shape[1]:
        raise MetricInputError(f"feature dimensions differ: {g.shape[1]} vs {r.shape[1]}")
    precision = fraction_inside(g, r, kth_neighbour_radii(r, k))
    recall = fraction_inside(r, g, kth_neighbour_radii(g, k))
    return precision, recall


def precision_recall(
    generated: Any, real: Any, *, k: int = 3, options: FeatureOptions | None = None, **settings
) -> PrecisionRecall:
    """Improved precision and recall (k-NN manifolds) of generated images (or a FeatureSet) against real ones.

    `options` / `settings`: the shared metric settings (`FeatureOptions`: extractor, device, n_samples, ...).
    """
    fg, fr = features_of_pair(generated, real, FeatureOptions.of(options, **settings))
    p, r = precision_recall_from_features(fg.features, fr.features, k)
    return PrecisionRecall(p, r, k, fg.extractor_label, (len(fg), len(fr)))


def precision_recall_intervals(
    generated, real, k: int = 3, *, resamples: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[Interval, Interval]:
    """Percentile bootstrap intervals of (precision, recall) over the generated samples, the real ones held fixed.

    The same replicates as `uncertainty.bootstrap_ci(precision_recall, ...)` (resample b draws seeded (seed, b)),
    computed from the distance matrices once instead of B k-NN passes: precision is a mean over generated samples
    of "inside the real manifold" (whose radii do not change), and recall re-finds the k-th neighbour radii among
    each resample (duplicates count as neighbours at distance 0, as a k-NN pass over the resample would).
    """
    g, r = _as_features(generated), _as_features(real)
    if g.shape[1] != r.shape[1]:
        raise MetricInputError(f"feature dimensions differ: {g.shape[1]} vs {r.shape[1]}")
    if not 1 <= k < len(g):
        raise MetricInputError(f"k = {k} nearest neighbours need at least {k + 1} samples, got {len(g)}")
    generated_to_real = torch.cdist(g, r)
    inside_real = (generated_to_real <= kth_neighbour_radii(r, k)[None, :]).any(1).double()
    generated_to_generated = torch.cdist(g, g)

    def recall_of(index) -> float:
        index = torch.as_tensor(index)
        radii = generated_to_generated[index][:, index].kthvalue(k + 1, dim=1).values
        return float((generated_to_real[index].T <= radii[None, :]).any(1).double().mean())

    precision = bootstrap_interval(
        lambda index: float(inside_real[torch.as_tensor(index)].mean()),
        len(g),
        resamples=resamples,
        level=level,
        seed=seed,
    )
    recall = bootstrap_interval(recall_of, len(g), resamples=resamples, level=level, seed=seed)
    return precision, recall
