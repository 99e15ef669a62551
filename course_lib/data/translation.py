"""Image-to-image translation data, built from any shipped image set (the embedded MNIST by default).

A translation turns an image (the target domain, e.g. a digit) into its source-domain version:

    superres   4x smaller (the mean of each 4x4 block), blown back up by pixel repetition: 28x28 -> 7x7 -> 28x28
    edges      the morphological gradient (3x3 dilation minus 3x3 erosion): the outline of the strokes
    thicken    3x3 dilation (a per-pixel max over the neighbourhood): every stroke ~2 pixels thicker
    invert     255 - x: white digits on black become black on white

- Paired (pix2pix): `PairedImages` holds each source image next to its own target (same index), with the
  class labels; `PairedLoader` draws both with one permutation, so pairs stay aligned.
- Unpaired (CycleGAN): `UnpairedImages` splits the images in two halves: domain A is the source
  version of the first half, domain B the unchanged second half. No image of A has its partner in
  B, and `UnpairedLoader` shuffles the two with independent permutations.

Both keep the class labels (not used in training) so that a classifier can check whether a
translation preserved the digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_lib.core.errors import DataError
from course_lib.data.datasets import ImageData, load_dataset
from course_lib.data.loader import BatchLoader


def _downsample_upsample(images: torch.Tensor, factor: int = 4) -> torch.Tensor:
    size = images.shape[-1]
    if size % factor:
        raise DataError(f"superres needs an image side divisible by {factor}, got {size}")
    small = F.avg_pool2d(images.float(), factor)
    return F.interpolate(small, scale_factor=factor, mode="nearest").round().clamp(0, 255).to(torch.uint8)


def _dilate(images: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(images.float(), 3, 1, 1)


def _edges(images: torch.Tensor) -> torch.Tensor:
    x = images.float()
    eroded = -F.max_pool2d(-x, 3, 1, 1)
    return (_dilate(x) - eroded).clamp(0, 255).to(torch.uint8)


TRANSLATIONS = {
    "superres": _downsample_upsample,
    "edges": _edges,
    "thicken": lambda images: _dilate(images).to(torch.uint8),
    "invert": lambda images: 255 - images,
}


def translate(images: torch.Tensor, translation: str) -> torch.Tensor:
    """The source-domain version (uint8 (N, C, H, W)) of uint8 images, for one of TRANSLATIONS."""
    if translation not in TRANSLATIONS:
        raise DataError(f"unknown translation {translation!r}; choose one of {', '.join(TRANSLATIONS)}")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        raise DataError(
            f"translate expects uint8 images (N, C, H, W), got "
            f"{getattr(images, 'dtype', type(images).__name__)} of shape {tuple(getattr(images, 'shape', ()))}"
        )
    return TRANSLATIONS[translation](images)


@dataclass
class PairedImages:
    """sources[i] is translation(targets[i]); both ImageData with the same labels. `source` says where
    the images come from, as ImageData.source does."""

    sources: ImageData
    targets: ImageData
    translation: str

    def __post_init__(self):
        if self.sources.images.shape != self.targets.images.shape:
            raise DataError(
                f"paired images need the same shape, got {tuple(self.sources.images.shape)} "
                f"and {tuple(self.targets.images.shape)}"
            )

    def __len__(self) -> int:
        return len(self.targets)

    name = property(lambda self: f"{self.targets.name}-{self.translation}")
    source = property(lambda self: f"{self.translation} pairs of {self.targets.source}")
    image_size = property(lambda self: self.targets.image_size)
    channels = property(lambda self: self.targets.channels)
    labels = property(lambda self: self.targets.labels)

    def numel(self) -> int:
        return 2 * self.targets.images.numel()

    def subset(self, n: int) -> PairedImages:
        return PairedImages(self.sources.subset(n), self.targets.subset(n), self.translation)


@dataclass
class UnpairedImages:
    """Two domains without pairs: a (source versions of some images) and b (other, unchanged images)."""

    a: ImageData
    b: ImageData
    translation: str

    def __post_init__(self):
        if self.a.images.shape[1:] != self.b.images.shape[1:]:
            raise DataError(
                f"the two domains need images of the same shape, got {tuple(self.a.images.shape[1:])} "
                f"and {tuple(self.b.images.shape[1:])}"
            )

    def __len__(self) -> int:
        return min(len(self.a), len(self.b))

    name = property(lambda self: f"{self.b.name}-{self.translation}-unpaired")
    source = property(lambda self: f"unpaired {self.translation} domains of {self.b.source}")
    image_size = property(lambda self: self.b.image_size)
    channels = property(lambda self: self.b.channels)
    labels = None

    def numel(self) -> int:
        return self.a.images.numel() + self.b.images.numel()


def make_paired(data: ImageData, translation: str) -> PairedImages:
    """Every image of `data` as a target, next to its translated source."""
    source = ImageData(
        translate(data.images, translation),
        data.labels,
        f"{data.name}-{translation}",
        f"{translation} of {data.source}",
    )
    return PairedImages(source, data, translation)


def make_unpaired(data: ImageData, translation: str) -> UnpairedImages:
    """Domain A: the translated first half of `data`; domain B: its untouched second half."""
    if len(data) < 2:
        raise DataError(f"unpaired domains need at least 2 images, got {len(data)}")
    half = len(data) // 2
    first, second = data.images[:half], data.images[half : 2 * half]
    labels = (None, None) if data.labels is None else (data.labels[:half], data.labels[half : 2 * half])
    a = ImageData(
        translate(first, translation),
        labels[0],
        f"{data.name}-{translation}",
        f"{translation} of the first {half:,} of {data.source}",
    )
    b = ImageData(second.clone(), labels[1], data.name, f"the last {half:,} of {data.source}")
    return UnpairedImages(a, b, translation)


def load_translation(
    task: str,
    translation: str,
    dataset: str = "mnist",
    root=None,
    split: str = "train",
    image_size: int | None = None,
    limit: int | None = None,
) -> PairedImages | UnpairedImages:
    """Paired ('pix2pix') or unpaired ('cyclegan') translation data built from a dataset (see load_dataset)."""
    data = load_dataset(dataset, root, split, image_size, limit=limit)
    if task == "pix2pix":
        return make_paired(data, translation)
    if task == "cyclegan":
        return make_unpaired(data, translation)
    raise DataError(f"translation data is for the tasks pix2pix (paired) and cyclegan (unpaired), got {task!r}")


class PairedLoader:
    """(source, target, labels) batches in [-1, 1]: two BatchLoaders with the same seed, hence the same
    permutation (and flips) of the same indices, so every source stays next to its own target."""

    def __init__(self, data: PairedImages, batch_size: int, seed: int = 0, **options):
        self.sources = BatchLoader(data.sources, batch_size, seed=seed, **options)
        self.targets = BatchLoader(data.targets, batch_size, seed=seed, **options)

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        source, labels = self.sources.batch(index)
        target, _ = self.targets.batch(index)
        return source, target, labels


class UnpairedLoader:
    """(a, b) batches in [-1, 1] from two BatchLoaders with different seeds: independent shuffles."""

    def __init__(self, data: UnpairedImages, batch_size: int, seed: int = 0, **options):
        self.a = BatchLoader(data.a, batch_size, seed=seed, **options)
        self.b = BatchLoader(data.b, batch_size, seed=seed + 7919, **options)

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a.batch(index)[0], self.b.batch(index)[0]
