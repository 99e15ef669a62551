"""Generators that work the moment a notebook opens: the shipped MNIST DCGAN, and a student's own CelebA run.

- `load_pretrained("mnist-dcgan")`: a DCGAN-28 (width 32) trained on the 60k MNIST training digits by
  `scripts/train_pretrained_mnist_dcgan.py` (settings, data sha256 and evaluation are stored in the file
  and in `course_lib/assets/README.md`). The file is an ordinary course_lib checkpoint holding only the
  generator, so `course_lib.checkpoint.load_generator` and `course-lib sample` read it too.
- `find_celeba_checkpoint()`: the checkpoint notebook 09 (`09_dcgan_celeba`) leaves behind, looked for at
  `runs/celeba*/checkpoints/last.pt` under each folder of `CELEBA_SEARCH_BASES` (the working directory,
  its parent, and the repository root), newest first; `$COURSE_LIB_CELEBA_CHECKPOINT` overrides the search.
- `notebook_generator()`: the student's CelebA generator when one is found, else the MNIST one (saying so).

`classify_digits` and `evaluate_generator` measure what a digit generator produces with the MNIST
classifier shipped in `course_lib.metrics` (offline): how many samples it recognises, and
classifier-feature FID / precision / recall against MNIST's test digits.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError

ASSETS = Path(__file__).resolve().parent / "assets"
REPO_ROOT = Path(__file__).resolve().parent.parent
CELEBA_ENV = "COURSE_LIB_CELEBA_CHECKPOINT"
CELEBA_PATTERN = "runs/celeba*/checkpoints/last.pt"


@dataclass(frozen=True)
class PretrainedGenerator:
    name: str
    path: Path
    description: str


PRETRAINED = {
    "mnist-dcgan": PretrainedGenerator(
        "mnist-dcgan", ASSETS / "mnist_dcgan.pt",
        "DCGAN-28, width 32, 100-d latent, trained on the 60,000 MNIST training digits (see course_lib/assets/README.md)"),
}


def pretrained_path(name: str) -> Path:
    """The file of a shipped generator, checking the name and that the file is installed."""
    if name not in PRETRAINED:
        raise CheckpointError(f"no pretrained generator called {name!r}; shipped: {', '.join(PRETRAINED)}")
    path = PRETRAINED[name].path
    if not path.is_file():
        raise CheckpointError(f"the pretrained generator {name!r} is missing from the installation ({path}); "
                              "reinstall course_lib or recreate it with scripts/train_pretrained_mnist_dcgan.py")
    return path


def load_pretrained(name: str = "mnist-dcgan", device="cpu") -> nn.Module:
    """A shipped generator, in eval mode, as `course_lib.checkpoint.load_generator` rebuilds it."""
    from .checkpoint import load_generator

    return load_generator(pretrained_path(name), device=device)


def pretrained_info(name: str = "mnist-dcgan") -> dict:
    """What the file records about itself: model config, training settings, data sha256, evaluation."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(pretrained_path(name))
    return {"config": ckpt["config"], "data_source": ckpt.get("data_source"), "step": ckpt["step"],
            **ckpt.get("pretrained", {})}


# ------------------------------------------------------------------------------------- CelebA pickup
def celeba_search_bases() -> list[Path]:
    """Folders searched for `runs/celeba*/checkpoints/last.pt`: the working directory (a notebook runs in
    notebooks/), its parent, and the repository root; duplicates removed, order kept."""
    bases, seen = [Path.cwd(), Path.cwd().parent, REPO_ROOT], set()
    unique = []
    for base in bases:
        key = base.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(base)
    return unique


def find_celeba_checkpoint(bases: list[str | os.PathLike] | None = None) -> Path | None:
    """A student's CelebA checkpoint from notebook 09, or None.

    `$COURSE_LIB_CELEBA_CHECKPOINT` (a file or run folder) wins when set; otherwise the newest file
    matching `runs/celeba*/checkpoints/last.pt` under `bases` (default: `celeba_search_bases()`).
    """
    from .checkpoint import resolve

    if os.environ.get(CELEBA_ENV):
        return resolve(os.environ[CELEBA_ENV])  # set explicitly: a wrong path is an error, not a silent fallback
    found = [p for base in (bases if bases is not None else celeba_search_bases())
             for p in Path(base).glob(CELEBA_PATTERN) if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def notebook_generator(prefer_celeba: bool = True, device="cpu", bases=None) -> tuple[nn.Module, str]:
    """(generator, description): the student's CelebA generator when found, else the shipped MNIST one."""
    from .checkpoint import load_generator

    if prefer_celeba:
        path = find_celeba_checkpoint(bases)
        if path is not None:
            try:
                return load_generator(path, device=device), f"your CelebA generator ({path})"
            except CheckpointError as exc:
                print(f"found {path} but cannot use it ({exc}); using the shipped MNIST generator instead")
                return load_pretrained("mnist-dcgan", device), "the shipped MNIST DCGAN"
        where = ", ".join(str(Path(b) / CELEBA_PATTERN) for b in (bases or celeba_search_bases()))
        print(f"no CelebA checkpoint from notebook 09 found (looked for {where}); using the shipped MNIST DCGAN")
    return load_pretrained("mnist-dcgan", device), "the shipped MNIST DCGAN"


# ------------------------------------------------------------------------------------ measurements
@torch.no_grad()
def classify_digits(images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted digit, its softmax probability) for images (uint8, or float in [-1, 1]) by the shipped classifier."""
    from .data import to_uint8
    from .metrics.mnist_classifier import load_mnist_classifier, to_classifier_input

    if images.dtype != torch.uint8:
        images = to_uint8(images)
    classifier = load_mnist_classifier()
    labels, confidence = [], []
    for batch in images.cpu().split(batch_size):
        probs = classifier(to_classifier_input(batch)).softmax(1)
        conf, pred = probs.max(1)
        labels.append(pred)
        confidence.append(conf)
    return torch.cat(labels), torch.cat(confidence)


def recognised_fraction(images: torch.Tensor, threshold: float = 0.9) -> float:
    """Fraction of images the MNIST classifier assigns to one digit with probability >= threshold."""
    return float((classify_digits(images)[1] >= threshold).double().mean())


@torch.no_grad()
def generate_uint8(generator: nn.Module, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """uint8 (N, C, H, W) images of the generator (eval mode) for latents z."""
    from .data import to_uint8

    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat([to_uint8(generator(part.to(device))).cpu() for part in z.split(batch_size)])
    finally:
        generator.train(was_training)


def evaluate_latents(generator: nn.Module, z: torch.Tensor, reference="mnist:test", data_root=None,
                     reference_features=None, progress: bool = False) -> dict:
    """How good a digit generator's images G(z) are, measured with the shipped MNIST classifier (offline).

    recognised_0.5 / recognised_0.9: fraction classified with max probability >= 0.5 / 0.9;
    digit_histogram: predicted digits; fid_mnist, precision, recall (k=3): classifier-feature FID and
    improved precision/recall against `reference` (default MNIST's test digits: the embedded 2,000, or
    the full 10,000 when `data_root` holds MNIST/raw). Pass `reference_features` (a FeatureSet of the
    reference) to reuse one extraction across calls.
    """
    from . import metrics

    images = generate_uint8(generator, z)
    labels, confidence = classify_digits(images)
    real = reference_features if reference_features is not None else metrics.extract_features(
        reference, "mnist", data_root=data_root, progress=progress, device="cpu")
    fake = metrics.extract_features(images, "mnist", progress=progress, device="cpu")
    pr = metrics.precision_recall(fake, real, extractor="mnist")
    return {
        "n_samples": len(z),
        "recognised_0.5": float((confidence >= 0.5).double().mean()),
        "recognised_0.9": float((confidence >= 0.9).double().mean()),
        "digit_histogram": torch.bincount(labels, minlength=10).tolist(),
        "fid_mnist": float(metrics.fid(fake, real, extractor="mnist").value),
        "precision": pr.precision,
        "recall": pr.recall,
        "reference": f"{real.description} ({len(real)} images)",
        "extractor": "mnist (shipped MNIST classifier features; not comparable with Inception FIDs)",
    }


def evaluate_generator(generator: nn.Module, n_samples: int = 10_000, seed: int = 0, tau: float | None = None,
                       **kwargs) -> dict:
    """`evaluate_latents` for n_samples z ~ N(0, I), or its truncation to |z_i| <= tau (BigGAN's
    resampling), drawn from a private seeded stream. kwargs: reference, data_root, reference_features."""
    from .latent import sample_latents

    z = sample_latents(n_samples, generator.latent_dim, tau=tau, seed=seed)
    return {"tau": tau, **evaluate_latents(generator, z, **kwargs)}
