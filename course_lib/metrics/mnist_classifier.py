"""The small MNIST classifier shipped in the package: an offline feature extractor for MNIST-like images.

It plays the role Inception-v3 plays for natural images, but only for handwritten digits:
- its 10-way softmax gives an MNIST Inception Score ("MNIST-IS", at most 10);
- its 128-d penultimate activations give a classifier-feature FID, KID, precision/recall, ...

Numbers computed with it are NOT comparable with Inception-based numbers (different network,
different feature space), and only meaningful for digit images. Every result says which extractor
produced it. Architecture, training and accuracy: `course_lib/assets/MNIST_CLASSIFIER.md`; the
weights are made by `scripts/train_mnist_classifier.py`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightsNotFound

ASSET = Path(__file__).resolve().parent.parent / "assets" / "mnist_classifier.pt"
# MNIST's training-set pixel mean and standard deviation (of values in [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
INPUT_SIZE = 28


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MNISTClassifier(nn.Module):
    """(N, 1, 28, 28) images with values in [0, 1] -> (features (N, 128), logits (N, 10)).

    conv3x3(32)-maxpool (28 -> 14) / conv3x3(64)-maxpool (-> 7) / conv3x3(64)-maxpool (-> 3) /
    conv3x3(128) - global average pool -> 128-d features -> dropout -> linear -> 10 logits; batch norm
    and ReLU after every convolution. The last convolution sees the whole digit, so the pooled
    features describe its shape, not a bag of local strokes. About 130k parameters (about 530 KB).
    """

    num_classes = 10

    def __init__(self, widths: tuple[int, ...] = (32, 64, 64, 128)):
        super().__init__()
        layers, cin = [], 1
        for i, w in enumerate(widths):
            layers.append(_conv_block(cin, w))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(cin, self.num_classes)
        self.feature_dim, self.widths = cin, tuple(widths)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - MNIST_MEAN) / MNIST_STD
        features = self.body(x)
        return features, self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


def to_classifier_input(x: torch.Tensor) -> torch.Tensor:
    """Batch (uint8 0..255, or float in [0, 1]) of shape (N, C, H, W) -> float (N, 1, 28, 28) in [0, 1].

    Colour images become grey as the mean of their channels (so a grey image repeated into 3 channels
    comes back exactly); other sizes are resized to 28x28 (bilinear, antialiased when shrinking).
    """
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x


def load_mnist_classifier(path: str | Path | None = None, device: str | torch.device = "cpu") -> MNISTClassifier:
    """The trained classifier from the package (or `path`), in eval mode with gradients off."""
    path = Path(path) if path is not None else ASSET
    if not path.is_file():
        raise WeightsNotFound(
            f"the MNIST classifier weights are missing ({path}); reinstall course_lib, or recreate them with "
            "`python scripts/train_mnist_classifier.py --data-root PATH` (needs the full MNIST)"
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = MNISTClassifier(tuple(saved["meta"]["widths"]))
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError) as exc:
        raise WeightsNotFound(f"{path} is not a valid MNIST classifier file ({exc}); reinstall course_lib") from exc
    return model.eval().requires_grad_(False).to(device)


def classifier_metadata(path: str | Path | None = None) -> dict:
    """What the weights file says about itself: architecture, training settings, test accuracy."""
    saved = torch.load(Path(path) if path is not None else ASSET, map_location="cpu", weights_only=True)
    return dict(saved["meta"])
