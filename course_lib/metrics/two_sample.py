"""The 1-nearest-neighbour two-sample test (Lopez-Paz & Oquab 2017; Xu et al. 2018).

Pool the real and generated feature vectors, label them by origin, and classify each one by the
label of its nearest *other* vector (leave-one-out 1-NN). If the two sets come from the same
distribution no classifier can tell them apart and the accuracy is about 0.5. Accuracy near 1 means
the sets are easy to separate (poor samples or missing modes); accuracy well *below* 0.5 is the
signature of memorisation: every generated sample sits on top of a training image, so each one's
nearest neighbour has the other label. Use the training set as the real set to detect that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import MetricInputError
from .features import features_of_pair
from .options import FeatureOptions
from .precision_recall import _as_features


@dataclass(frozen=True)
class OneNNResult:
    accuracy: float  # over all 2N samples; 0.5 is ideal
    real_accuracy: float  # fraction of real samples whose nearest neighbour is real
    generated_accuracy: float
    extractor: str = ""
    n: tuple = ()

    def __float__(self) -> float:
        return self.accuracy

    def __str__(self) -> str:
        return (
            f"1-NN accuracy = {self.accuracy:.4f} (real {self.real_accuracy:.4f}, generated "
            f"{self.generated_accuracy:.4f}; 0.5 is ideal)"
            + (f" [{self.extractor}, n={self.n}]" if self.extractor else "")
        )


def one_nn_from_features(generated, real, block: int = 2048, seed: int = 0) -> tuple[float, float, float]:
    """(accuracy, real accuracy, generated accuracy) of the leave-one-out 1-NN classifier.

    The test assumes two sets of equal size (otherwise always guessing the larger set's label already
    beats 0.5): the larger set is cut to a random subset (seeded) of the smaller one's size.
    """
    g, r = _as_features(generated), _as_features(real)
    if g.shape[1] != r.shape[1]:
        raise MetricInputError(f"feature dimensions differ: {g.shape[1]} vs {r.shape[1]}")
    if len(g) < 2 or len(r) < 2:
        raise MetricInputError("the 1-NN test needs at least 2 samples on each side")
    n = min(len(g), len(r))
    gen = torch.Generator().manual_seed(seed)
    if len(g) > n:
        g = g[torch.randperm(len(g), generator=gen)[:n]]
    if len(r) > n:
        r = r[torch.randperm(len(r), generator=gen)[:n]]
    pooled = torch.cat([r, g])
    is_real = torch.cat([torch.ones(len(r), dtype=torch.bool), torch.zeros(len(g), dtype=torch.bool)])
    nearest = []
    for start in range(0, len(pooled), block):
        d = torch.cdist(pooled[start : start + block], pooled)
        idx = torch.arange(start, min(start + block, len(pooled)))
        d[idx - start, idx] = float("inf")  # leave one out: a sample is not its own neighbour
        nearest.append(d.argmin(1))
    correct = is_real[torch.cat(nearest)] == is_real
    return (
        float(correct.double().mean()),
        float(correct[: len(r)].double().mean()),
        float(correct[len(r) :].double().mean()),
    )


def one_nn_accuracy(generated: Any, real: Any, *, options: FeatureOptions | None = None, **settings) -> OneNNResult:
    """1-NN two-sample test accuracy between generated and real images (or FeatureSets).

    `options` / `settings`: the shared metric settings (`FeatureOptions`); its `seed` also draws the subset that evens the two sizes.
    """
    opts = FeatureOptions.of(options, **settings)
    fg, fr = features_of_pair(generated, real, opts)
    acc, acc_r, acc_g = one_nn_from_features(fg.features, fr.features, seed=opts.seed)
    n = min(len(fg), len(fr))
    return OneNNResult(acc, acc_r, acc_g, fg.extractor_label, (n, n))
