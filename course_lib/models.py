"""GAN generators and discriminators.

- DCGAN (Radford, Metz, Chintala 2015): no pooling, strided convolutions in D and transposed
  convolutions in G; batch norm everywhere except G's output and D's input layers; ReLU in G with
  a tanh output, LeakyReLU(0.2) in D; weights drawn from N(0, 0.02).
- The MLP GAN of Goodfellow et al. (2014): fully connected, ReLU generator, maxout + dropout
  discriminator.

Discriminators return one raw logit per image (shape (N,)); losses apply the sigmoid themselves,
which is numerically safer and keeps mixed precision working.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import ConfigError

SUPPORTED_SIZES = (28, 32, 64, 128)


def _layout(image_size: int) -> tuple[int, int]:
    """(starting spatial size, number of 2x up/down-sampling stages) for an image size."""
    if image_size not in SUPPORTED_SIZES:
        raise ConfigError(f"DCGAN image size must be one of {SUPPORTED_SIZES}, got {image_size}")
    start = 7 if image_size == 28 else 4
    return start, int(round(math.log2(image_size // start)))


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.'s initialisation: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) -> image (N, channels, image_size, image_size) in [-1, 1].

    For 64x64 and width 64 this is the PyTorch DCGAN tutorial's generator:
    z -> 512x4x4 -> 256x8x8 -> 128x16x16 -> 64x32x32 -> 3x64x64. For 28x28 (MNIST) it starts
    at 7x7 instead of 4x4.
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 64, channels: int = 3, width: int = 64):
        super().__init__()
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        start, stages = _layout(image_size)
        ch = width * 2 ** (stages - 1)
        layers = [nn.ConvTranspose2d(latent_dim, ch, start, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N, channels, S, S) -> logit (N,). Mirrors the generator with strided convolutions."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64):
        super().__init__()
        self.image_size, self.channels = image_size, channels
        start, stages = _layout(image_size)
        ch = width
        layers = [nn.Conv2d(channels, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]  # no BN on the input layer
        for _ in range(stages - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, start, 1, 0, bias=False)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over `pieces` linear maps."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(dim=2)


class MLPGenerator(nn.Module):
    """Goodfellow et al. 2014's MNIST generator: two ReLU layers of 1200 units.

    The paper ends in a sigmoid for [0, 1] pixels; here tanh, so all models share the [-1, 1] range.
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 28, channels: int = 1, hidden: int = 1200):
        super().__init__()
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, channels * image_size * image_size), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1)).view(-1, self.channels, self.image_size, self.image_size)


class MLPDiscriminator(nn.Module):
    """Goodfellow et al. 2014's MNIST discriminator: two maxout layers (240 units, 5 pieces) with dropout."""

    def __init__(self, image_size: int = 28, channels: int = 1, hidden: int = 240, pieces: int = 5, dropout: float = 0.5):
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.net = nn.Sequential(
            nn.Dropout(0.2), Maxout(channels * image_size * image_size, hidden, pieces),
            nn.Dropout(dropout), Maxout(hidden, hidden, pieces),
            nn.Dropout(dropout), nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).flatten()


ARCHITECTURES = ("dcgan", "mlp")


def build_models(arch: str = "dcgan", latent_dim: int = 100, image_size: int = 64, channels: int = 3,
                 width: int = 64) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for an architecture name. `width` is DCGAN's base channel count
    (64 in the paper and tutorial) or the MLP generator's hidden size."""
    if arch == "dcgan":
        return (DCGANGenerator(latent_dim, image_size, channels, width),
                DCGANDiscriminator(image_size, channels, width))
    if arch == "mlp":
        return MLPGenerator(latent_dim, image_size, channels, hidden=width), MLPDiscriminator(image_size, channels)
    raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
