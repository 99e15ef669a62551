"""Conditional generation: asking a generator for a class, and checking that it obeys.

The models are in `course_lib.nn.models` (labels into DCGANGenerator and DCGANDiscriminator,
ACGAN's classifier head, InfoGANGenerator) and the losses in the trainer (`conditional` setting):

- cGAN (Mirza & Osindero 2014): G(z, y) and D(x, y). D judges whether x is a real image *of
  class y*, so G must make images of the class it is asked for. The label enters D as
  one-hot constant feature maps stacked onto the image.
- ACGAN (Odena et al. 2017): G(z, y); D(x) has a second head that classifies x. Both players add
  the classification log-likelihood of the fakes' intended class (D also of the real labels).
- InfoGAN (Chen et al. 2016): no labels at all. G gets noise plus codes c (a 10-way categorical
  and two uniform continuous codes) and a head Q on D predicts c from G(z, c). Maximising this
  lower bound on the mutual information I(c; G(z, c)) makes the codes control visible factors;
  on MNIST the categorical code usually ends up choosing the digit, unsupervised.

This module measures that, with the shipped MNIST classifier as the judge:
`class_accuracy` (cGAN/ACGAN: does class y come out when y is asked for?) and
`infogan_code_accuracy` (InfoGAN: how well does the categorical code predict the digit, under the
best one-to-one matching of codes to digits; chance is about 0.1 to 0.2).
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib.core.errors import ConfigError


def _classify(images: torch.Tensor, classifier=None) -> torch.Tensor:
    from .mnist_classifier import load_mnist_classifier, to_classifier_input

    classifier = classifier or load_mnist_classifier()
    device = next(classifier.parameters()).device
    with torch.no_grad():
        return classifier(to_classifier_input(((images.float() + 1) / 2).clamp(0, 1)).to(device)).argmax(1).cpu()


@torch.no_grad()
def class_samples(generator: torch.nn.Module, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Samples in [-1, 1] of a label-conditional generator for the given labels (fixed noise seed)."""
    if not getattr(generator, "n_classes", 0):
        raise ConfigError("this generator takes no class labels (train with conditional='cgan' or 'acgan')")
    labels = torch.as_tensor(labels).long()
    device = next(generator.parameters()).device
    z = torch.randn(len(labels), generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    generator.eval()
    try:
        return generator(z.to(device), labels.to(device)).float().cpu()
    finally:
        generator.train(was_training)


def class_accuracy(generator: torch.nn.Module, n_per_class: int = 100, seed: int = 0, classifier=None) -> float:
    """Fraction of samples that the MNIST classifier assigns to the class the generator was asked for."""
    labels = torch.arange(generator.n_classes).repeat_interleave(n_per_class)
    predicted = _classify(class_samples(generator, labels, seed), classifier)
    return float((predicted == labels).float().mean())


@torch.no_grad()
def infogan_samples(
    generator: torch.nn.Module, categories, continuous=None, seed: int = 0, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """Samples of an InfoGANGenerator with chosen categorical codes (and continuous codes in (-1, 1);
    default: drawn uniformly). `noise` (N, noise_dim) fixes the incompressible noise."""
    if not hasattr(generator, "codes_to_latent"):
        raise ConfigError("this generator has no InfoGAN codes (train with conditional='infogan')")
    categories = torch.as_tensor(categories).long()
    n = len(categories)
    rng = torch.Generator().manual_seed(seed)
    if noise is None:
        noise = torch.randn(n, generator.noise_dim, generator=rng)
    if continuous is None:
        continuous = torch.rand(n, generator.info_cont, generator=rng) * 2 - 1
    z = generator.codes_to_latent(noise, categories, torch.as_tensor(continuous, dtype=torch.float32).view(n, -1))
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        return generator(z.to(device)).float().cpu()
    finally:
        generator.train(was_training)


def infogan_code_confusion(
    generator: torch.nn.Module, n_per_code: int = 100, seed: int = 0, classifier=None
) -> np.ndarray:
    """counts[c, d]: samples with categorical code c that the classifier reads as digit d."""
    codes = torch.arange(generator.info_cat).repeat_interleave(n_per_code)
    predicted = _classify(infogan_samples(generator, codes, seed=seed), classifier)
    counts = np.zeros((generator.info_cat, 10), dtype=np.int64)
    np.add.at(counts, (codes.numpy(), predicted.numpy()), 1)
    return counts


def infogan_code_accuracy(
    generator: torch.nn.Module, n_per_code: int = 100, seed: int = 0, classifier=None
) -> tuple[float, dict[int, int]]:
    """(accuracy, code -> digit) under the best one-to-one matching of codes to digits (Hungarian
    algorithm on the confusion counts). 1.0: each code value makes exactly one digit."""
    from scipy.optimize import linear_sum_assignment

    counts = infogan_code_confusion(generator, n_per_code, seed, classifier)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / counts.sum()), {int(r): int(c) for r, c in zip(rows, cols)}
