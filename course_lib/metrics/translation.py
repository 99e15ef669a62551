"""How good an image translation is (pix2pix, CycleGAN; `course_lib.nn.translation`).

Paired (a translation G(x) next to the true target y), `paired_scores`:
- L1: mean |G(x) - y| per pixel on the [0, 1] scale (what pix2pix's L1 term minimises);
- PSNR and SSIM (`image_quality`): pixel fidelity, which a blurry average of the plausible answers
  scores well on;
- sharpness: variance of the Laplacian (`image_quality.sharpness`), to compare with the targets';
- FID between the translations and the targets in the MNIST classifier's feature space (labelled
  not comparable with Inception FIDs): do the outputs look like real digits as a set?
- accuracy: the shipped MNIST classifier's accuracy on the translations, against the true labels.

Unpaired (CycleGAN: generator [a; b] -> [F(b); G(a)]), `cycle_scores`: the cycle reconstruction
error |F(G(a)) - a| and |G(F(b)) - b| (L1, [0, 1] scale), and whether the digit survives the
translation: the classifier's accuracy on G(a) and F(b) against the labels of a and b.
"""

from __future__ import annotations

import torch

from course_lib.core.images import to_float

from .errors import MetricInputError
from .fid import fid
from .image_quality import psnr, sharpness, ssim
from .uncertainty import Interval, binomial_interval, interval_record, mean_interval


def _as_float(images: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise MetricInputError(
            f"{what} must be a tensor of images (N, C, H, W), got "
            f"{type(images).__name__} of shape {tuple(getattr(images, 'shape', ()))}"
        )
    return to_float(images) if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def translate(generator: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """generator(images) in eval mode, batch by batch, on the generator's device; float [-1, 1] on the CPU.
    `images`: uint8 [0, 255] or float [-1, 1] (N, C, H, W)."""
    x = _as_float(images, "images to translate")
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat([generator(b.to(device)).float().cpu() for b in x.split(batch_size)])
    finally:
        generator.train(was_training)


@torch.no_grad()
def classifier_accuracy(images: torch.Tensor, labels: torch.Tensor, classifier=None) -> float:
    """Fraction of images (float [-1, 1] or uint8) the shipped MNIST classifier assigns to `labels`."""
    from .mnist_classifier import load_mnist_classifier, to_classifier_input

    x = _as_float(images, "images")
    labels = torch.as_tensor(labels).long().view(-1)
    if len(labels) != len(x):
        raise MetricInputError(f"got {len(labels)} labels for {len(x)} images")
    classifier = classifier or load_mnist_classifier()
    device = next(classifier.parameters()).device
    predicted = torch.cat(
        [classifier(to_classifier_input(((b + 1) / 2).clamp(0, 1)).to(device)).argmax(1).cpu() for b in x.split(500)]
    )
    return float((predicted == labels).float().mean())


def mean_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference per pixel on the [0, 1] scale of two image sets in [-1, 1] (or uint8)."""
    x, y = _as_float(a, "first images"), _as_float(b, "second images")
    if x.shape != y.shape:
        raise MetricInputError(f"paired images must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return float((x.double() - y.double()).abs().mean() / 2)


def _per_image(metric, x: torch.Tensor, y: torch.Tensor | None = None) -> list[float]:
    """metric of each image (pair) alone: the set's score is their mean, so these give its interval."""
    return [metric(x[i : i + 1]) if y is None else metric(x[i : i + 1], y[i : i + 1]) for i in range(len(x))]


def _accuracy_interval(accuracy: float, n: int, level: float) -> dict:
    return interval_record(binomial_interval(round(accuracy * n), n, level))


def paired_scores(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    labels: torch.Tensor | None = None,
    classifier=None,
    ci: float | None = None,
    resamples: int = 200,
) -> dict[str, float]:
    """L1, PSNR, SSIM, sharpness (and the targets'), MNIST-feature FID and classifier accuracy (see module doc).

    `ci` (e.g. 0.95): add "intervals", each score's interval record (bounds, level, method, n) over the n pairs:
    t intervals of the per-image means (L1, PSNR, SSIM, sharpness), a percentile bootstrap over the translations
    for FID (`resamples`, the targets held fixed), Wilson for the accuracy."""
    outputs, targets = _as_float(outputs, "translations"), _as_float(targets, "targets")
    scores = {
        "l1": mean_l1(outputs, targets),
        "psnr": psnr(outputs, targets, value_range=(-1, 1)),
        "ssim": ssim(outputs, targets, value_range=(-1, 1)),
        "sharpness": sharpness(outputs, value_range=(-1, 1)),
        "sharpness_targets": sharpness(targets, value_range=(-1, 1)),
        "fid_mnist": float(
            fid(
                outputs, targets, extractor="mnist", value_range=(-1, 1), progress=False, use_cache=False, device="cpu"
            ).value
        ),
    }
    if labels is not None:
        scores["accuracy"] = classifier_accuracy(outputs, labels, classifier)
    if ci is not None:
        scores["intervals"] = _paired_intervals(outputs, targets, scores, ci, resamples)
    return scores


def _paired_intervals(outputs: torch.Tensor, targets: torch.Tensor, scores: dict, ci: float, resamples: int) -> dict:
    def range_11(metric):
        return lambda *images: metric(*images, value_range=(-1, 1))

    per_image = {
        "l1": _per_image(mean_l1, outputs, targets),
        "psnr": _per_image(range_11(psnr), outputs, targets),
        "ssim": _per_image(range_11(ssim), outputs, targets),
        "sharpness": _per_image(range_11(sharpness), outputs),
        "sharpness_targets": _per_image(range_11(sharpness), targets),
    }
    out = {name: interval_record(mean_interval(values, ci)) for name, values in per_image.items()}
    bootstrapped = fid(
        outputs,
        targets,
        extractor="mnist",
        value_range=(-1, 1),
        progress=False,
        use_cache=False,
        device="cpu",
        ci=ci,
        bootstrap=resamples,
    )
    out["fid_mnist"] = interval_record(
        Interval(bootstrapped.ci_low, bootstrapped.ci_high, ci, bootstrapped.ci_method, bootstrapped.ci_n)
    )
    if "accuracy" in scores:
        out["accuracy"] = _accuracy_interval(scores["accuracy"], len(outputs), ci)
    return out


def cycle_scores(
    generator: torch.nn.Module,
    a: torch.Tensor,
    b: torch.Tensor,
    labels_a: torch.Tensor | None = None,
    labels_b: torch.Tensor | None = None,
    classifier=None,
    ci: float | None = None,
) -> dict[str, float]:
    """Cycle reconstruction errors and identity preservation of a CycleGAN generator (see the module docstring).

    `ci` (e.g. 0.95): add "intervals" over the n images per domain: t intervals of the per-image cycle errors,
    Wilson for the accuracies."""
    a, b = _as_float(a, "domain A images"), _as_float(b, "domain B images")
    if len(a) != len(b):
        raise MetricInputError(f"give as many images of each domain, got {len(a)} and {len(b)}")
    translated = translate(generator, torch.cat([a, b]))  # [F(b); G(a)]
    cycled = translate(generator, translated)  # [F(G(a)); G(F(b))]
    to_a, to_b = translated.chunk(2)
    back_a, back_b = cycled.chunk(2)
    scores = {"cycle_l1_a": mean_l1(back_a, a), "cycle_l1_b": mean_l1(back_b, b)}
    if labels_a is not None and labels_b is not None:
        scores["accuracy_a_to_b"] = classifier_accuracy(to_b, labels_a, classifier)
        scores["accuracy_b_to_a"] = classifier_accuracy(to_a, labels_b, classifier)
    if ci is not None:
        scores["intervals"] = {
            "cycle_l1_a": interval_record(mean_interval(_per_image(mean_l1, back_a, a), ci)),
            "cycle_l1_b": interval_record(mean_interval(_per_image(mean_l1, back_b, b), ci)),
        }
        for key in ("accuracy_a_to_b", "accuracy_b_to_a"):
            if key in scores:
                scores["intervals"][key] = _accuracy_interval(scores[key], len(a), ci)
    return scores
