"""How well an attribute classifier works, and directions with the correlated attributes projected out.

An attribute direction is only as good as the classifier that labelled the latents it was built from, and
accuracy alone hides a useless one: a classifier that always says "no glasses" is 92% accurate on CelebA,
where 8% of faces wear glasses. `binary_scores` reports what does not hide it: balanced accuracy (the mean
of the true-positive and true-negative rates: 0.5 for any constant answer) and the ROC AUC (the probability
that a random face with the attribute scores higher than a random one without: 0.5 for chance), beside the
accuracy of always answering the majority class.

`AttributeNet` is the small CNN that labels faces for the directions (scripts/train_pretrained_celeba_dcgan.py) and
checks them (scripts/check_celeba_attribute_directions.py, which ships its class-balanced version:
`course_lib.latent.pretrained.attribute_classifier()`).

`decorrelated_direction` is InterFaceGAN's conditional manipulation (Shen et al., 2020): the direction with
its components along the other attributes' directions removed, so that moving along it changes the others
less (it cannot undo an entanglement the generator itself has).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from course_lib.core.errors import DataError


def roc_auc(scores, truth) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2
    (the Mann-Whitney U statistic over n_pos * n_neg)."""
    scores, truth = np.asarray(scores, dtype=float).ravel(), np.asarray(truth).ravel().astype(bool)
    if scores.shape != truth.shape:
        raise DataError(f"need one score per label: {scores.shape[0]} scores, {truth.shape[0]} labels")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        raise DataError("the AUC needs examples both with and without the attribute")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_scores(probabilities, truth, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, true-positive and true-negative rates, AUC, and the accuracy of always
    answering the majority class, for one attribute."""
    p, t = np.asarray(probabilities, dtype=float).ravel(), np.asarray(truth).ravel().astype(bool)
    if t.all() or not t.any():
        raise DataError("scoring a classifier needs examples both with and without the attribute")
    said = p > threshold
    tpr, tnr = float(said[t].mean()), float((~said[~t]).mean())
    base_rate = float(t.mean())
    return {
        "n": int(len(t)),
        "positives": int(t.sum()),
        "accuracy": float((said == t).mean()),
        "balanced_accuracy": (tpr + tnr) / 2,
        "true_positive_rate": tpr,
        "true_negative_rate": tnr,
        "auc": roc_auc(p, t),
        "majority_baseline_accuracy": max(base_rate, 1 - base_rate),
    }


def balanced_threshold(probabilities, truth) -> float:
    """The threshold on p that maximises the balanced accuracy on these (training) examples (Youden's J):
    with 8% positives a classifier's p rarely crosses 0.5 even where it ranks faces well (a high AUC)."""
    p, t = np.asarray(probabilities, dtype=float).ravel(), np.asarray(truth).ravel().astype(bool)
    if t.all() or not t.any():
        raise DataError("choosing a threshold needs examples both with and without the attribute")
    candidates = np.unique(p)
    said = p[None, :] > candidates[:, None]  # (thresholds, examples)
    balanced = (said[:, t].mean(1) + (~said[:, ~t]).mean(1)) / 2
    best = int(np.argmax(balanced))
    upper = candidates[best + 1] if best + 1 < len(candidates) else 1.0
    return float((candidates[best] + upper) / 2)  # midway to the next score: the same split, not on a score


def bootstrap_interval(statistic, *arrays, resamples: int = 1000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of statistic(*arrays) over resamplings of the rows (the held-out faces)."""
    rng = np.random.default_rng(seed)
    n = len(arrays[0])
    values = []
    for _ in range(resamples):
        rows = rng.integers(0, n, n)
        try:
            values.append(statistic(*(np.asarray(a)[rows] for a in arrays)))
        except DataError:  # a resample without positives has no AUC: leave it out
            continue
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def decorrelated_direction(direction: torch.Tensor, others: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """`direction` minus its projection on the span of `others` (InterFaceGAN's conditional manipulation),
    rescaled to the length of `direction` so that the same alpha moves as far."""
    d = torch.as_tensor(direction, dtype=torch.float64).reshape(-1)
    basis = torch.stack([torch.as_tensor(o, dtype=torch.float64).reshape(-1) for o in others], dim=1)
    q, _ = torch.linalg.qr(basis)  # orthonormal basis of the others' span
    rest = d - q @ (q.T @ d)
    if rest.norm() < 1e-6 * d.norm():
        raise DataError("the direction lies in the span of the others: nothing is left after projecting them out")
    return (rest * (d.norm() / rest.norm())).to(torch.as_tensor(direction).dtype)


class AttributeNet(nn.Module):
    """A small CNN on 64x64 faces shrunk to 32x32 (cheap on a CPU; smiles, glasses and hair survive it): one logit
    per attribute it is trained for."""

    def __init__(self, n_out: int):
        super().__init__()
        layers, channels = [nn.AvgPool2d(2)], 3
        for width in (16, 32, 64):
            layers += [
                nn.Conv2d(channels, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, n_out)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))
