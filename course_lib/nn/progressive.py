"""Progressive growing (Karras, Aila, Laine, Lehtinen 2018, "Progressive Growing of GANs"), 7 -> 14 -> 28.

Both networks start at the coarsest resolution and grow a block at a time; each new block is faded
in. While the generator grows from resolution r to 2r its output is

    x = alpha * toRGB_2r(block_2r(h)) + (1 - alpha) * upsample(toRGB_r(h)),   alpha: 0 -> 1

and the discriminator mirrors it: its input at 2r goes through fromRGB_2r and the new block,
blended with fromRGB_r of the input downsampled to r. At alpha = 0 the grown networks compute
exactly what the old ones did (tests/test_progressive.py checks it); at alpha = 1 the old toRGB and
fromRGB are no longer used.

So that the trainer needs no branch for it, both networks always speak full resolution: the
generator's output is upsampled (nearest neighbour) to 28x28, and the discriminator average-pools
its input (real or fake alike) down to the current resolution itself. The state of growth, `level`
(0: 7x7, 1: 14x14, 2: 28x28) and `alpha`, are buffers, so they are saved with the weights; the
schedule that sets them is a callback (`course_lib.training.callbacks.progressive`).

Layers follow the paper at small scale: pixel norm after every generator convolution, LeakyReLU(0.2),
no batch norm, minibatch standard deviation before the discriminator's last block, linear outputs
(here a tanh at the very end, so samples are in [-1, 1] like every course_lib generator).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from course_lib.core.errors import ConfigError
from course_lib.nn.layers import MinibatchStdDev
from course_lib.nn.style import pixel_norm

RESOLUTIONS = (7, 14, 28)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


def _conv(cin: int, cout: int, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, 1, kernel // 2)


def check_growth(level: int, alpha: float) -> None:
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level < len(RESOLUTIONS):
        raise ConfigError(f"growth level must be an integer in 0..{len(RESOLUTIONS) - 1}, got {level!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"fade-in alpha must be in [0, 1], got {alpha!r}")


class Growing(nn.Module):
    """The growth state shared by both networks: buffers `level` and `alpha`, set by `set_growth`."""

    def _init_growth(self) -> None:
        self.register_buffer("level", torch.tensor(len(RESOLUTIONS) - 1))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_growth(self, level: int, alpha: float = 1.0) -> None:
        check_growth(level, alpha)
        self.level.fill_(level)
        self.alpha.fill_(float(alpha))

    @property
    def resolution(self) -> int:
        return RESOLUTIONS[int(self.level)]


def _channels(width: int) -> tuple[int, int, int]:
    return 2 * width, width, max(width // 2, 1)  # at 7, 14, 28


class ProgressiveGenerator(Growing):
    """z (N, latent_dim) -> image (N, channels, 28, 28) in [-1, 1], drawn at the current resolution and
    upsampled. A fresh model is fully grown (level 2, alpha 1); the callback starts it at level 0."""

    def __init__(self, latent_dim: int = 64, image_size: int = 28, channels: int = 1, width: int = 32):
        super().__init__()
        if image_size != 28:
            raise ConfigError(f"the progressive GAN grows 7 -> 14 -> 28 and needs image_size 28, got {image_size}")
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        ch = _channels(width)
        self.stem_linear = nn.Linear(latent_dim, ch[0] * 49)
        self.stem = nn.Sequential(nn.LeakyReLU(0.2), PixelNorm(), _conv(ch[0], ch[0]), nn.LeakyReLU(0.2), PixelNorm())
        self.blocks = nn.ModuleList(
            [nn.Identity()]
            + [
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    _conv(ch[i - 1], ch[i]),
                    nn.LeakyReLU(0.2),
                    PixelNorm(),
                    _conv(ch[i], ch[i]),
                    nn.LeakyReLU(0.2),
                    PixelNorm(),
                )
                for i in range(1, len(RESOLUTIONS))
            ]
        )
        self.to_rgb = nn.ModuleList([_conv(c, channels, 1) for c in ch])
        self._init_growth()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        level, alpha = int(self.level), float(self.alpha)
        h = self.stem(self.stem_linear(pixel_norm(z.reshape(z.shape[0], -1))).view(z.shape[0], -1, 7, 7))
        previous = h
        for i in range(1, level + 1):
            previous, h = h, self.blocks[i](h)
        image = self.to_rgb[level](h)
        if level > 0 and alpha < 1.0:
            old = F.interpolate(self.to_rgb[level - 1](previous), scale_factor=2, mode="nearest")
            image = alpha * image + (1.0 - alpha) * old
        image = torch.tanh(image)
        factor = self.image_size // image.shape[-1]
        return F.interpolate(image, scale_factor=factor, mode="nearest") if factor > 1 else image


class ProgressiveDiscriminator(Growing):
    """image (N, channels, 28, 28) -> logit (N,): average-pooled to the current resolution, then the
    mirror of the generator. `forward_all` also returns the features before the output layer."""

    def __init__(self, image_size: int = 28, channels: int = 1, width: int = 32, minibatch_stddev: bool = True):
        super().__init__()
        if image_size != 28:
            raise ConfigError(f"the progressive GAN grows 7 -> 14 -> 28 and needs image_size 28, got {image_size}")
        self.image_size, self.channels = image_size, channels
        ch = _channels(width)
        self.from_rgb = nn.ModuleList([nn.Sequential(_conv(channels, c, 1), nn.LeakyReLU(0.2)) for c in ch])
        self.blocks = nn.ModuleList(
            [nn.Identity()]
            + [
                nn.Sequential(
                    _conv(ch[i], ch[i]), nn.LeakyReLU(0.2), _conv(ch[i], ch[i - 1]), nn.LeakyReLU(0.2), nn.AvgPool2d(2)
                )
                for i in range(1, len(RESOLUTIONS))
            ]
        )
        self.stddev = MinibatchStdDev() if minibatch_stddev else None
        self.final = nn.Sequential(_conv(ch[0] + int(minibatch_stddev), ch[0]), nn.LeakyReLU(0.2))
        self.head = nn.Linear(ch[0] * 49, 1)
        self._init_growth()

    def downsample(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[x at 28, 14, 7]: repeated 2x average pooling, the same operations at every level (so the
        fade-in is exact at alpha = 0)."""
        if x.dim() != 4 or x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ConfigError(
                f"the discriminator takes images of shape (N, {self.channels}, {self.image_size}, "
                f"{self.image_size}), got {tuple(x.shape)}"
            )
        pyramid = [x]
        for _ in RESOLUTIONS[1:]:
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))
        return pyramid[::-1]  # 7, 14, 28

    def forward_all(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        level, alpha = int(self.level), float(self.alpha)
        pyramid = self.downsample(x)
        h = self.from_rgb[level](pyramid[level])
        if level > 0:
            h = self.blocks[level](h)
            if alpha < 1.0:
                h = alpha * h + (1.0 - alpha) * self.from_rgb[level - 1](pyramid[level - 1])
        for i in range(level - 1, 0, -1):
            h = self.blocks[i](h)
        if self.stddev is not None:
            h = self.stddev(h)
        features = self.final(h).flatten(1)
        return {"features": features, "logits": self.head(features).flatten()}

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, labels)["logits"]
