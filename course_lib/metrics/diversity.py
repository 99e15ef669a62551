"""Pairwise diversity: how far apart generated samples are from each other, in feature space.

    diversity = mean over pairs i < j of ||f(x_i) - f(x_j)||

A collapsed generator that draws the same image every time scores 0. On its own the number has no
scale, so with a reference set (real images) it is reported relative to the reference's own
diversity: about 1 means "as varied as the data", well below 1 means collapse. For large sets a
fixed number of random pairs (seeded) estimates the mean.
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import MetricInputError
from .features import extractor_for, features_with, same_extractor
from .options import FeatureOptions
from .precision_recall import _as_features
from .results import MetricResult


def mean_pairwise_distance(features, max_pairs: int | None = 200_000, seed: int = 0) -> float:
    """Mean Euclidean distance over all pairs i < j, or over `max_pairs` random distinct pairs when there are more."""
    f = _as_features(features)
    n = len(f)
    if n < 2:
        raise MetricInputError("pairwise diversity needs at least 2 samples")
    total_pairs = n * (n - 1) // 2
    if max_pairs is None or total_pairs <= max_pairs:
        rows, cols = torch.triu_indices(n, n, offset=1)
    else:
        gen = torch.Generator().manual_seed(seed)
        rows = torch.randint(0, n, (max_pairs,), generator=gen)
        cols = (rows + torch.randint(1, n, (max_pairs,), generator=gen)) % n  # never equal to rows
    total = 0.0
    for r, c in zip(rows.split(65536), cols.split(65536)):
        total += (f[r] - f[c]).norm(dim=1).sum().item()
    return total / len(rows)


def pairwise_diversity(
    generated: Any,
    reference: Any = None,
    *,
    max_pairs: int | None = 200_000,
    options: FeatureOptions | None = None,
    **settings,
) -> MetricResult:
    """Mean pairwise feature distance of generated samples; divided by the reference's when one is given.

    `options` / `settings`: the shared metric settings (`FeatureOptions`); its `seed` also draws the pairs.
    """
    opts = FeatureOptions.of(options, **settings)
    seed = opts.seed
    ext = extractor_for(opts, (generated, reference))
    fg = features_with(generated, ext, opts, want_logits=False)
    value = mean_pairwise_distance(fg.features, max_pairs, seed)
    details = {"generated": value}
    n = (len(fg),)
    if reference is not None:
        fr = features_with(reference, ext, opts, want_logits=False)
        same_extractor(fg, fr)
        ref_value = mean_pairwise_distance(fr.features, max_pairs, seed)
        if ref_value == 0:
            raise MetricInputError(
                "the reference images are all identical: their diversity is 0, nothing to normalise by"
            )
        details["reference"] = ref_value
        value, n = value / ref_value, (len(fg), len(fr))
    name = "relative diversity" if reference is not None else "diversity"
    return MetricResult(name, value, None, fg.extractor_label, fg.comparable_with_inception, n, details)
