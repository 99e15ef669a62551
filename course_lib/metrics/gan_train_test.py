"""GAN-train and GAN-test (Shmelkov, Schmid, Alahari 2018, "How good is my GAN?").

Two classifier experiments on labelled images:
- GAN-test: train a classifier on real training images, measure its accuracy on generated images.
  High when generated images look like their class (precision-like); a memorising generator scores
  as high as the real test set.
- GAN-train: train the same classifier on generated images, measure its accuracy on the real test
  set. High only when the generated set covers the real distribution (recall/diversity-like).
- The baseline: trained on real training images, tested on real test images. Good generators get
  GAN-train and GAN-test close to it.

The paper uses class-conditional GANs, whose samples come with labels. For unconditional generators
pass `generated_labels=None` and the embedded MNIST classifier labels them (digits only): GAN-test
then measures agreement between two classifiers and should be read with that in mind.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.core.runtime import pick_device

from .errors import MetricInputError
from .inputs import as_image_source


class SmallClassifier(nn.Module):
    """A quick convolutional classifier for any image size and 1 or 3 channels.

    Two conv-BN-ReLU-maxpool stages (16 and 32 channels), average-pooled to 4x4, then one linear
    layer: batch norm and the spatial head let it learn MNIST within an epoch on a CPU.
    """

    def __init__(self, channels: int, num_classes: int, width: int = 16):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]

        self.net = nn.Sequential(
            *block(channels, width),
            *block(width, 2 * width),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PixelMLP(nn.Module):
    """The fastest option: images average-pooled to at most 28x28, one hidden layer of 256 units."""

    def __init__(self, channels: int, num_classes: int, image_size: int = 28):
        super().__init__()
        side = min(28, image_size)
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(side),
            nn.Flatten(),
            nn.Linear(channels * side * side, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


CLASSIFIERS = ("conv", "mlp")


@dataclass(frozen=True)
class GanTrainTest:
    gan_train: float  # accuracy on real test images of a classifier trained on generated images
    gan_test: float  # accuracy on generated images of a classifier trained on real images
    real_baseline: float  # accuracy on real test images of the classifier trained on real images
    pseudo_labels: bool  # generated labels came from the MNIST classifier, not from the generator
    n: tuple = ()

    def __str__(self) -> str:
        note = " (generated images labelled by the MNIST classifier)" if self.pseudo_labels else ""
        return (
            f"GAN-train = {self.gan_train:.4f}, GAN-test = {self.gan_test:.4f}, real baseline = "
            f"{self.real_baseline:.4f}{note}"
        )


def _load_all(images: Any, value_range, what: str) -> torch.Tensor:
    """All images of a (small) set as float [0, 1] (N, C, H, W): training needs them in memory."""
    source = as_image_source(images, value_range=value_range, what=what)
    batches = [b.float() / 255 if b.dtype == torch.uint8 else b.float() for b in source.batches(1024)]
    return torch.cat(batches).cpu()


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    device="cpu",
    kind: str = "conv",
) -> nn.Module:
    """Train a SmallClassifier ('conv') or PixelMLP ('mlp') with Adam; deterministic for a seed on the CPU."""
    if kind not in CLASSIFIERS:
        raise MetricInputError(f"unknown classifier {kind!r}; choose one of {', '.join(CLASSIFIERS)}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = (
        SmallClassifier(images.shape[1], num_classes)
        if kind == "conv"
        else PixelMLP(images.shape[1], num_classes, images.shape[-1])
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(model(images[idx].to(device)), labels[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


# The classifier trained on the real images is the same for every generated set scored against them (same images,
# labels, settings and seed; training is deterministic on the CPU), so notebook 07's six sets train it once, not six
# times. Keyed by the contents (sha256), a few kept.
_REAL_CLASSIFIERS: OrderedDict = OrderedDict()
REAL_CLASSIFIER_CACHE_SIZE = 4


def _real_classifier(images, labels, num_classes, epochs, batch_size, seed, device, kind) -> nn.Module:
    if torch.device(device).type != "cpu":  # not bit-for-bit deterministic: train afresh, as asked
        return train_classifier(images, labels, num_classes, epochs, batch_size, seed=seed, device=device, kind=kind)
    digest = hashlib.sha256(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    key = (digest.hexdigest(), tuple(images.shape), num_classes, epochs, batch_size, seed, kind)
    if key in _REAL_CLASSIFIERS:
        _REAL_CLASSIFIERS.move_to_end(key)
        return _REAL_CLASSIFIERS[key]
    model = train_classifier(images, labels, num_classes, epochs, batch_size, seed=seed, device=device, kind=kind)
    _REAL_CLASSIFIERS[key] = model
    while len(_REAL_CLASSIFIERS) > REAL_CLASSIFIER_CACHE_SIZE:
        _REAL_CLASSIFIERS.popitem(last=False)
    return model


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device="cpu") -> float:
    correct = sum(
        (model(x.to(device)).argmax(1).cpu() == y).sum().item() for x, y in zip(images.split(512), labels.split(512))
    )
    return correct / len(images)


def gan_train_test(
    generated: Any,
    real_train: Any,
    real_train_labels,
    real_test: Any,
    real_test_labels,
    generated_labels=None,
    *,
    num_classes: int | None = None,
    classifier: str = "conv",
    epochs: int = 3,
    batch_size: int = 32,
    value_range=None,
    seed: int = 0,
    device="auto",
) -> GanTrainTest:
    """GAN-train, GAN-test and the real baseline (see the module docstring). Images: tensors/arrays (uint8,
    or float with value_range), folders, .npz files; the three image sets must share size and channels.
    `classifier`: 'conv' (SmallClassifier, the default) or 'mlp' (PixelMLP, much faster on a CPU)."""
    dev = pick_device(device)
    gen_x = _load_all(generated, value_range, "generated images")
    train_x = _load_all(real_train, value_range, "real training images")
    test_x = _load_all(real_test, value_range, "real test images")
    shapes = {tuple(t.shape[1:]) for t in (gen_x, train_x, test_x)}
    if len(shapes) != 1:
        raise MetricInputError(
            f"generated, real training and real test images must have the same (C, H, W); got "
            f"{tuple(gen_x.shape[1:])}, {tuple(train_x.shape[1:])}, {tuple(test_x.shape[1:])}"
        )
    train_y, test_y = torch.as_tensor(real_train_labels).long(), torch.as_tensor(real_test_labels).long()
    for x, y, what in ((train_x, train_y, "real training"), (test_x, test_y, "real test")):
        if len(x) != len(y):
            raise MetricInputError(f"{what} set: {len(y)} labels for {len(x)} images")
    pseudo = generated_labels is None
    if pseudo:
        from .features import get_extractor

        mnist = get_extractor("mnist", dev)
        gen_y = torch.cat([mnist(b, want_logits=True)[1].argmax(1).cpu() for b in gen_x.split(512)])
    else:
        gen_y = torch.as_tensor(generated_labels).long()
        if len(gen_y) != len(gen_x):
            raise MetricInputError(f"{len(gen_y)} generated labels for {len(gen_x)} generated images")
    k = num_classes or int(max(train_y.max(), test_y.max(), gen_y.max())) + 1
    on_real = _real_classifier(train_x, train_y, k, epochs, batch_size, seed, dev, classifier)
    on_generated = train_classifier(gen_x, gen_y, k, epochs, batch_size, seed=seed, device=dev, kind=classifier)
    return GanTrainTest(
        gan_train=accuracy(on_generated, test_x, test_y, dev),
        gan_test=accuracy(on_real, gen_x, gen_y, dev),
        real_baseline=accuracy(on_real, test_x, test_y, dev),
        pseudo_labels=pseudo,
        n=(len(gen_x), len(train_x), len(test_x)),
    )
