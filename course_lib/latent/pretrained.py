"""Generators that work the moment a notebook opens, and the one place a notebook-09 CelebA run lives.

Shipped generators (`PRETRAINED`; how each was trained, its data, settings and evaluation:
`course_lib/assets/README.md`), each an ordinary course_lib checkpoint holding only the generator, so
`course_lib.training.checkpoint.load_generator` and `course-lib sample --pretrained NAME` read them too:

- `"mnist-dcgan"`: a DCGAN-28 (width 32) trained on the 60k MNIST training digits by
  `scripts/train_pretrained_mnist_dcgan.py`;
- `"celeba-dcgan"`: a DCGAN-64 (width 32) trained on CPU on 20,000 CelebA faces by
  `scripts/train_pretrained_celeba_dcgan.py`, with latent attribute directions (Smiling, Eyeglasses, Male, ...)
  computed from CelebA's attribute labels when the file was built (`pretrained_directions`).

Every load checks the file's sha256 against the one recorded here, so a truncated or modified file fails
with one line that says what to do (`pretrained_path`).

Notebook 09 trains into `celeba_run_dir()` and notebook 10 finds that run with `find_celeba_checkpoint()`:
one rule, one function (`$COURSE_LIB_CELEBA_RUN` moves the folder for both). `notebook_generator()` gives
the student's CelebA generator when that run exists, else the shipped face generator.

`classify_digits` and `evaluate_generator` measure what a digit generator produces with the MNIST
classifier shipped in `course_lib.metrics` (offline): how many samples it recognises, and
classifier-feature FID / precision / recall against MNIST's test digits.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from course_lib.core.errors import CheckpointError, ConfigError, DataError
from course_lib.core.resources import config_file
from course_lib.core.runtime import ASSETS_DIR as ASSETS
from course_lib.core.runtime import runs_root

CELEBA_RUN_ENV = "COURSE_LIB_CELEBA_RUN"
CELEBA_RUN_NAME = "celeba64"  # runs/celeba64: where notebook 09 and `course-lib train` (configs' comments) put the run


@dataclass(frozen=True)
class PretrainedGenerator:
    name: str
    path: Path
    description: str
    sha256: str
    script: str  # how to recreate the file


PRETRAINED = {
    "mnist-dcgan": PretrainedGenerator(
        "mnist-dcgan",
        ASSETS / "mnist_dcgan.pt",
        "DCGAN-28, width 32, 100-d latent, trained on the 60,000 MNIST training digits (see course_lib/assets/README.md)",
        "feef8d4f78667866e54f30aa3a5ee6887c3dffb5d6875f9112a6bfb8445d1374",
        "scripts/train_pretrained_mnist_dcgan.py",
    ),
    "celeba-dcgan": PretrainedGenerator(
        "celeba-dcgan",
        ASSETS / "celeba_dcgan.pt",
        "DCGAN-64, width 32, 100-d latent, trained on a CPU on 20,000 CelebA faces, with attribute directions "
        "(see course_lib/assets/README.md and docs/results/celeba_dcgan/report.md)",
        "25f0b431c6560d59939538962ea43faf9127662fb7c1391e8b7e875a809ac0d0",
        "scripts/train_pretrained_celeba_dcgan.py",
    ),
}

_verified: dict[tuple, bool] = {}  # (path, size, mtime_ns) of files whose sha256 matched, so a file is hashed once


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_path(name: str) -> Path:
    """The file of a shipped generator, after checking the name, that it is installed and that its sha256 matches."""
    if name not in PRETRAINED:
        raise CheckpointError(f"no pretrained generator called {name!r}; shipped: {', '.join(PRETRAINED)}")
    entry = PRETRAINED[name]
    path = entry.path
    if not path.is_file():
        raise CheckpointError(
            f"the pretrained generator {name!r} is missing from the installation ({path}); "
            f"reinstall course_lib or recreate it with {entry.script}"
        )
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        actual = file_sha256(path)
        if actual != entry.sha256:
            raise CheckpointError(
                f"the pretrained generator {name!r} is damaged: {path} has sha256 {actual[:16]}..., "
                f"expected {entry.sha256[:16]}... (truncated or modified); reinstall course_lib "
                f"or recreate it with {entry.script}"
            )
        _verified[key] = True
    return path


def load_pretrained(name: str = "mnist-dcgan", device="cpu") -> nn.Module:
    """A shipped generator, in eval mode, as `course_lib.training.checkpoint.load_generator` rebuilds it."""
    from course_lib.training.checkpoint import load_generator

    return load_generator(pretrained_path(name), device=device)


def pretrained_info(name: str = "mnist-dcgan") -> dict:
    """What the file records about itself: model config, training settings, data, evaluation."""
    from course_lib.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(pretrained_path(name))
    return {
        "config": ckpt["config"],
        "data_source": ckpt.get("data_source"),
        "step": ckpt["step"],
        **ckpt.get("pretrained", {}),
    }


def pretrained_directions(name: str = "celeba-dcgan") -> dict[str, torch.Tensor]:
    """{attribute: latent direction} shipped with a generator (for `latent.apply_direction` and the
    arithmetic widget). Each is mean(z | attribute) - mean(z | not), over the generator's own samples labelled
    by an attribute classifier trained on CelebA's labels (how: `pretrained_info(name)["directions_method"]`)."""
    directions = pretrained_info(name).get("directions")
    if not directions:
        raise CheckpointError(f"the pretrained generator {name!r} ships no latent directions")
    return {attribute: torch.as_tensor(vector, dtype=torch.float32) for attribute, vector in directions.items()}


ATTRIBUTE_CHECK_FILE = "celeba_dcgan_attribute_check.json"  # scripts/check_celeba_attribute_directions.py


def attribute_check() -> dict:
    """How far the face generator's attribute directions can be trusted, measured on CelebA by
    scripts/check_celeba_attribute_directions.py (report: docs/results/celeba_attribute_directions/report.md):
    the attribute classifier's held-out balanced accuracy and AUC beside the majority-class baseline, the fraction
    of fresh samples with each attribute after moving along each direction ("effects", shipped and decorrelated
    directions), and the decorrelated directions themselves (tensors)."""
    path = ASSETS / ATTRIBUTE_CHECK_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: run scripts/check_celeba_attribute_directions.py (needs CelebA)")
    check = json.loads(path.read_text(encoding="utf-8"))
    check["decorrelated_directions"] = {
        name: torch.as_tensor(vector, dtype=torch.float32) for name, vector in check["decorrelated_directions"].items()
    }
    return check


ATTRIBUTE_CLASSIFIER_FILE = "celeba_attribute_classifier.pt"  # scripts/check_celeba_attribute_directions.py


@dataclass
class AttributeClassifier:
    """The class-balanced face attribute classifier of `attribute_check()`: `classifier(images)` gives
    {attribute: bool tensor} for uint8 faces (N, 3, 64, 64), each with its own threshold."""

    net: nn.Module
    attributes: tuple[str, ...]
    thresholds: dict[str, float]

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        from course_lib.core.images import to_float

        return torch.cat([torch.sigmoid(self.net(to_float(part))) for part in images.split(256)])

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.probabilities(images)
        return {a: p[:, j] > self.thresholds[a] for j, a in enumerate(self.attributes)}


def attribute_classifier() -> AttributeClassifier:
    """The classifier that measured `attribute_check()` (trained on CelebA's labelled faces; weights only)."""
    from course_lib.latent.attribute_check import AttributeNet

    path = ASSETS / ATTRIBUTE_CLASSIFIER_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: run scripts/check_celeba_attribute_directions.py (needs CelebA)")
    expected = attribute_check()["classifier_file_sha256"]
    if file_sha256(path) != expected:
        raise CheckpointError(f"{path} does not match the sha256 recorded with the attribute check (modified?)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = AttributeNet(len(saved["attributes"]))
    net.load_state_dict(saved["state"])
    return AttributeClassifier(net.eval(), tuple(saved["attributes"]), dict(saved["thresholds"]))


# --------------------------------------------------------------------------- notebook 09 -> notebook 10
def celeba_run_dir() -> Path:
    """The one folder notebook 09 trains CelebA into and notebook 10 looks in.

    `$COURSE_LIB_CELEBA_RUN` when set; else `celeba64` in `course_lib.core.runtime.runs_root()` ($COURSE_LIB_RUNS,
    else `runs` in the platform's user-data folder), so notebook 10 finds it whichever folder it was opened from.
    """
    if os.environ.get(CELEBA_RUN_ENV):
        return Path(os.environ[CELEBA_RUN_ENV]).expanduser()
    return runs_root() / CELEBA_RUN_NAME


def find_celeba_checkpoint(run_dir: str | os.PathLike | None = None) -> Path | None:
    """`checkpoints/last.pt` of the notebook-09 run (`celeba_run_dir()` unless given), or None if there is none yet."""
    path = Path(run_dir if run_dir is not None else celeba_run_dir()) / "checkpoints" / "last.pt"
    return path if path.is_file() else None


def check_face_generator(generator: nn.Module, image_size: int | None = None, where: str = "this generator") -> None:
    """One-line error unless `generator` draws RGB images (of `image_size` pixels, when given)."""
    channels, size = getattr(generator, "channels", None), getattr(generator, "image_size", None)
    if channels != 3 or (image_size is not None and size != image_size):
        wanted = f"3x{image_size}x{image_size}" if image_size is not None else "RGB (3-channel)"
        raise CheckpointError(
            f"{where} draws {channels}x{size}x{size} images, but the face tools need {wanted} "
            "ones: train it with configs/celeba64_cpu.yaml or configs/celeba64_dcgan.yaml"
        )


def notebook_generator(device="cpu", run_dir=None, image_size: int | None = None) -> tuple[nn.Module, str]:
    """(generator, description): the student's notebook-09 CelebA generator when its run exists and is usable,
    else the shipped `celeba-dcgan` (saying why)."""
    from course_lib.training.checkpoint import load_generator

    path = find_celeba_checkpoint(run_dir)
    if path is None:
        print(
            f"no CelebA run from notebook 09 at {Path(run_dir or celeba_run_dir())}: "
            "using the shipped face generator celeba-dcgan"
        )
    else:
        try:
            generator = load_generator(path, device=device)
            check_face_generator(generator, image_size, where=str(path))
            return generator, f"your CelebA generator ({path})"
        except CheckpointError as exc:
            print(f"cannot use {path} ({exc}); using the shipped face generator celeba-dcgan")
    return load_pretrained("celeba-dcgan", device), "the shipped face generator celeba-dcgan"


def celeba_root() -> Path:
    """Where notebook 09 looks for CelebA: $COURSE_LIB_DATA when set, else the course's ../shared/data when present
    (development and CI machines), else the default data folder (`course_lib.core.runtime.data_root`)."""
    from course_lib.core.runtime import DATA_ENV, data_root, shared_data_dir

    if not os.environ.get(DATA_ENV) and shared_data_dir() is not None:
        return shared_data_dir()
    return data_root()


def celeba_images_available(root=None) -> bool:
    """True when `root/celeba/img_align_celeba` (default root: `celeba_root()`) holds at least one image;
    `course_lib.data.load_celeba` (and `course_lib.data.CELEBA_HELP`) say how to get them otherwise."""
    from course_lib.data.datasets import IMAGE_SUFFIXES

    folder = Path(root if root is not None else celeba_root()) / "celeba" / "img_align_celeba"
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def fetch_celeba_if_asked(root=None) -> bool:
    """Notebook 09 on Colab or Kaggle: True when CelebA's images are under `root` (default `celeba_root()`) now.

    When they are not and $COURSE_LIB_CELEBA_ZIP (a local img_align_celeba.zip) or $COURSE_LIB_CELEBA_DOWNLOAD=1
    (torchvision's download) asks for them, `course_lib.data.prepare_celeba` gets them; a failure (Google Drive's
    quota, a damaged zip) is printed in one line and the notebook goes on with the shipped faces."""
    from course_lib.data.datasets import CELEBA_DOWNLOAD_ENV, CELEBA_ZIP_ENV, prepare_celeba

    root = Path(root if root is not None else celeba_root())
    if celeba_images_available(root):
        return True
    if not (os.environ.get(CELEBA_ZIP_ENV) or os.environ.get(CELEBA_DOWNLOAD_ENV)):
        return False
    try:
        print(f"getting CelebA into {prepare_celeba(root)}")
    except DataError as exc:
        print(f"could not get CelebA: {exc}")
        return False
    return celeba_images_available(root)


CELEBA_RECIPES = {"cpu": "celeba64_cpu.yaml", "gpu": "celeba64_dcgan.yaml"}


def celeba_recipe(device: torch.device | str) -> tuple[str, Path]:
    """("gpu" | "cpu", config file) for notebook 09: the full GPU recipe on CUDA, the CPU recipe elsewhere
    (MPS included: bf16, compile and fused Adam, which make the GPU recipe affordable, are CUDA-only here)."""
    kind = "gpu" if torch.device(device).type == "cuda" else "cpu"
    return kind, config_file(CELEBA_RECIPES[kind])


def measure_seconds_per_step(config, data, probe_steps: int = 3) -> float:
    """Seconds one training step of `config` takes on this machine, timed on a throwaway trainer (no files,
    one untimed warm-up step), so notebook 09 can print an estimate before it starts the real run."""
    from course_lib.training import TrainConfig, Trainer

    if probe_steps < 1:
        raise ConfigError(f"probe_steps must be at least 1, got {probe_steps}")
    settings = {**config.to_dict(), "callbacks": []} if hasattr(config, "to_dict") else dict(config)
    probe = Trainer(TrainConfig.from_dict(settings), None, data=data, progress=False)
    probe.train_step()
    if probe.device.type == "cuda":
        torch.cuda.synchronize(probe.device)
    start = time.perf_counter()
    for _ in range(probe_steps):
        probe.train_step()
    if probe.device.type == "cuda":
        torch.cuda.synchronize(probe.device)
    return (time.perf_counter() - start) / probe_steps


# ------------------------------------------------------------------------------------ measurements
@torch.no_grad()
def classify_digits(images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted digit, its softmax probability) for images (uint8, or float in [-1, 1]) by the shipped classifier."""
    from course_lib.core.images import to_uint8
    from course_lib.metrics.mnist_classifier import (
        load_mnist_classifier,
        to_classifier_input,
    )

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
    from course_lib.core.images import to_uint8

    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat([to_uint8(generator(part.to(device))).cpu() for part in z.split(batch_size)])
    finally:
        generator.train(was_training)


def evaluate_latents(
    generator: nn.Module,
    z: torch.Tensor,
    reference="mnist:test",
    data_root=None,
    reference_features=None,
    progress: bool = False,
    ci: float | None = None,
    resamples: int = 200,
) -> dict:
    """How good a digit generator's images G(z) are, measured with the shipped MNIST classifier (offline).

    recognised_0.5 / recognised_0.9: fraction classified with max probability >= 0.5 / 0.9;
    digit_histogram: predicted digits; fid_mnist, precision, recall (k=3): classifier-feature FID and
    improved precision/recall against `reference` (default MNIST's test digits: the embedded 2,000, or
    the full 10,000 when `data_root` holds MNIST/raw). Pass `reference_features` (a FeatureSet of the
    reference) to reuse one extraction across calls. `ci` (e.g. 0.95): add "intervals", each metric's interval
    record (bounds, level, method, n): a percentile bootstrap over the samples (`resamples` of them, the
    reference held fixed) for FID, precision and recall, a Wilson interval for the recognised fractions.
    """
    from course_lib import metrics

    images = generate_uint8(generator, z)
    labels, confidence = classify_digits(images)
    real = (
        reference_features
        if reference_features is not None
        else metrics.extract_features(reference, "mnist", data_root=data_root, progress=progress, device="cpu")
    )
    fake = metrics.extract_features(images, "mnist", progress=progress, device="cpu")
    pr = metrics.precision_recall(fake, real, extractor="mnist")
    out = {
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
    if ci is not None:
        out["intervals"] = _evaluation_intervals(fake, real, confidence, ci, resamples)
    return out


def _evaluation_intervals(fake, real, confidence: torch.Tensor, ci: float, resamples: int) -> dict:
    """evaluate_latents' intervals: bootstrap over the samples for FID and precision/recall, Wilson for fractions."""
    from course_lib import metrics
    from course_lib.metrics.precision_recall import precision_recall_intervals
    from course_lib.metrics.uncertainty import Interval, binomial_interval, interval_record

    fid = metrics.fid(fake, real, extractor="mnist", ci=ci, bootstrap=resamples)
    fid_interval = Interval(fid.ci_low, fid.ci_high, ci, fid.ci_method, fid.ci_n)
    precision, recall = precision_recall_intervals(fake, real, resamples=resamples, level=ci)
    n = len(confidence)
    out = {"fid_mnist": interval_record(fid_interval), "precision": interval_record(precision)}
    out["recall"] = interval_record(recall)
    for threshold in (0.5, 0.9):
        recognised = int((confidence >= threshold).sum())
        out[f"recognised_{threshold}"] = interval_record(binomial_interval(recognised, n, ci))
    return out


def evaluate_generator(
    generator: nn.Module,
    n_samples: int = 10_000,
    seed: int = 0,
    tau: float | None = None,
    recall_draws: int = 0,
    **kwargs,
) -> dict:
    """`evaluate_latents` for n_samples z ~ N(0, I), or its truncation to |z_i| <= tau (BigGAN's
    resampling), drawn from a private seeded stream. kwargs: reference, data_root, reference_features, ci,
    resamples. With `ci` and `recall_draws` >= 2, recall's interval comes from its spread over that many fresh
    draws of n_samples latents (seeds seed + 1, seed + 2, ...; `recall_over_draws`) instead of the bootstrap,
    whose duplicated samples shrink the k-NN radii and put the interval below the estimate."""
    from course_lib.latent import sample_latents

    z = sample_latents(n_samples, generator.latent_dim, tau=tau, seed=seed)
    out = {"tau": tau, **evaluate_latents(generator, z, **kwargs)}
    if kwargs.get("ci") is not None and recall_draws >= 2:
        from course_lib.metrics.uncertainty import interval_record, spread_interval

        real = kwargs.get("reference_features")
        if real is None:
            real = _reference_features(kwargs.get("reference", "mnist:test"), kwargs.get("data_root"))
        draws = recall_over_draws(generator, n_samples, real, tau, [seed + 1 + d for d in range(recall_draws)])
        interval = spread_interval(out["recall"], draws, kwargs["ci"], what=f"{n_samples:,} samples")
        out["intervals"]["recall"] = interval_record(interval)
        out["recall_draws"] = draws
    return out


def _reference_features(reference, data_root):
    from course_lib import metrics

    return metrics.extract_features(reference, "mnist", data_root=data_root, progress=False, device="cpu")


def recall_over_draws(generator: nn.Module, n_samples: int, reference_features, tau, seeds) -> list[float]:
    """Recall (k = 3, MNIST-classifier features) of n_samples fresh samples for each latent seed in `seeds`."""
    from course_lib import metrics
    from course_lib.latent import sample_latents
    from course_lib.metrics.precision_recall import precision_recall_from_features

    recalls = []
    for seed in seeds:
        images = generate_uint8(generator, sample_latents(n_samples, generator.latent_dim, tau=tau, seed=seed))
        fake = metrics.extract_features(images, "mnist", progress=False, device="cpu")
        recalls.append(precision_recall_from_features(fake.features, reference_features.features)[1])
    return recalls
