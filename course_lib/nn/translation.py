"""Image-to-image translation models: pix2pix's U-Net and PatchGAN (Isola et al. 2017) and CycleGAN's
pair of pairs (Zhu et al. 2017).

- `UNet`: an encoder of stride-2 4x4 convolutions down to a bottleneck, a decoder of stride-2 4x4
  transposed convolutions back up, and skip connections that concatenate every encoder level's
  features to the decoder level of the same size, so fine detail (stroke positions, edges) need not
  squeeze through the bottleneck. LeakyReLU(0.2) down, ReLU up, tanh out, normalisation on every
  layer but the first and the last, dropout 0.5 in the innermost decoder layer (pix2pix's noise: it
  has no z). `depth` levels need an image side divisible by 2**depth (28 = 7 * 2**2: depth 2).
- `PatchGAN`: a fully convolutional discriminator that outputs a grid of logits, one per
  overlapping patch of the image (`receptive_field` pixels wide), instead of one per image. It
  judges local texture/sharpness and leaves the global structure to the L1 term. Conditional: the
  source image is stacked onto the channels (D(x, y) sees the pair, as in pix2pix).
- `CycleGenerator` / `CycleDiscriminator`: CycleGAN's two generators G: A -> B, F: B -> A and two
  discriminators D_A, D_B behind the single-generator/single-discriminator interface the trainer
  uses. A batch is the two domains stacked, [a; b]; the generator maps it to [F(b); G(a)] (each half
  translated into the other domain, in domain order), so applying it twice gives [F(G(a)); G(F(b))],
  the cycle reconstructions of [a; b]. The discriminator runs D_A on the first half and D_B on the
  second.

Normalisation: `norm='batch'` (pix2pix) or 'instance' (CycleGAN), 'layer' or 'none'.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.core.errors import ConfigError

NORMS = ("batch", "instance", "layer", "none")


def pix2pix_init(module: nn.Module) -> None:
    """Isola et al.'s (and Zhu et al.'s) initialisation: conv weights ~ N(0, 0.02), biases 0; batch-norm scales
    ~ N(1, 0.02) (instance- and layer-norm scales keep 1). (nn.models imports this module, so it has its own copy
    of what DCGAN also does.)"""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"normalisation must be one of {', '.join(NORMS)}, got {kind!r}")


def unet_depth(image_size: int, max_depth: int = 5) -> int:
    """The most 2x down-sampling levels (at most max_depth) that keep the bottleneck at >= 4 pixels
    with integer sizes: 28 -> 2 (bottleneck 7x7), 32 -> 3, 64 -> 4."""
    depth = 0
    while depth < max_depth and image_size % 2 ** (depth + 1) == 0 and image_size // 2 ** (depth + 1) >= 4:
        depth += 1
    if depth == 0:
        raise ConfigError(f"a U-Net needs an even image side of at least 8 pixels, got {image_size}")
    return depth


def _check_images(x: torch.Tensor, channels: int, image_size: int, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels or x.shape[2] != image_size or x.shape[3] != image_size:
        raise ConfigError(
            f"{what} expects images of shape (N, {channels}, {image_size}, {image_size}), got {tuple(x.shape)}"
        )


class UNet(nn.Module):
    """source image (N, in_channels, S, S) -> translated image (N, out_channels, S, S) in [-1, 1].

    See the module docstring. `skip_connections=False` gives the plain encoder-decoder that pix2pix
    compares against (everything through the bottleneck).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        image_size: int = 28,
        width: int = 32,
        depth: int | None = None,
        norm: str = "batch",
        dropout: float = 0.5,
        skip_connections: bool = True,
    ):
        super().__init__()
        self.in_channels, self.channels, self.image_size = in_channels, out_channels, image_size
        self.depth = unet_depth(image_size) if depth is None else depth
        if self.depth < 1 or image_size % 2**self.depth:
            raise ConfigError(
                f"a U-Net of depth {self.depth} needs an image side divisible by {2**self.depth}, got {image_size}"
            )
        self.skip_connections = skip_connections
        widths = [width * 2 ** min(i, 3) for i in range(self.depth)]  # 64-128-256-512-512... in pix2pix
        self.down = nn.ModuleList()
        cin = in_channels
        for i, cout in enumerate(widths):
            layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=norm in ("none", "instance"))]
            if i > 0:
                layers.append(_norm(norm, cout))
            self.down.append(nn.Sequential(*layers, nn.LeakyReLU(0.2, True)))
            cin = cout
        self.bottleneck = nn.Sequential(nn.Conv2d(cin, cin, 3, 1, 1, bias=False), _norm(norm, cin), nn.ReLU(True))
        self.up = nn.ModuleList()
        for i in reversed(range(self.depth)):
            skip = widths[i] if skip_connections else 0
            cout = widths[i - 1] if i > 0 else width
            layers = [
                nn.ConvTranspose2d(cin + skip, cout, 4, 2, 1, bias=norm in ("none", "instance")),
                _norm(norm, cout),
            ]
            if i == self.depth - 1 and dropout:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers, nn.ReLU(True)))
            cin = cout
        self.out = nn.Sequential(
            nn.Conv2d(cin + (in_channels if skip_connections else 0), out_channels, 3, 1, 1), nn.Tanh()
        )
        self.apply(pix2pix_init)

    def forward(self, source: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_images(source, self.in_channels, self.image_size, "the U-Net")
        skips = [source]
        h = source
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.bottleneck(h)
        for block in self.up:
            skip = skips.pop()
            h = block(torch.cat([h, skip], dim=1) if self.skip_connections else h)
        return self.out(torch.cat([h, skips.pop()], dim=1) if self.skip_connections else h)


class PatchGAN(nn.Module):
    """image (N, channels, S, S) [+ condition (N, condition_channels, S, S)] -> logits (N, P, P).

    `layers` stride-2 4x4 convolutions, then two stride-1 4x4 convolutions (the last to one
    channel); each output logit sees a `receptive_field`-pixel square of the input. pix2pix's 70x70
    PatchGAN is layers=3 on 256x256 images (patches about a quarter of the side); layers=2 would see
    34x34 pixels, more than a whole 28x28 digit, so the default is layers=1 up to 32x32 images (16x16
    patches on a 12x12 grid for 28x28) and layers=2 above.
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 28,
        width: int = 32,
        layers: int | None = None,
        norm: str = "batch",
        condition_channels: int = 0,
    ):
        super().__init__()
        self.channels, self.image_size, self.condition_channels = channels, image_size, condition_channels
        layers = (1 if image_size <= 32 else 2) if layers is None else layers
        blocks: list[nn.Module] = [nn.Conv2d(channels + condition_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(layers - 1):
            blocks += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm in ("none", "instance")),
                _norm(norm, ch * 2),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        blocks += [
            nn.Conv2d(ch, ch * 2, 4, 1, 1, bias=norm in ("none", "instance")),
            _norm(norm, ch * 2),
            nn.LeakyReLU(0.2, True),
        ]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Conv2d(ch * 2, 1, 4, 1, 1)
        self.receptive_field = patch_receptive_field(layers)
        self.apply(pix2pix_init)

    def forward_all(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        _check_images(x, self.channels, self.image_size, "the PatchGAN")
        if self.condition_channels:
            if condition is None:
                raise ConfigError("this PatchGAN is conditional: give it the source images too")
            _check_images(condition, self.condition_channels, self.image_size, "the PatchGAN's condition")
            x = torch.cat([x, condition.to(x.dtype)], dim=1)
        h = self.features(x)
        return {"features": h.flatten(1), "logits": self.head(h).squeeze(1)}

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, condition)["logits"]


def patch_receptive_field(layers: int) -> int:
    """Side of the input square one PatchGAN logit sees: back through two stride-1 4x4 convolutions,
    then `layers` stride-2 4x4 ones (r <- s r + (k - s), starting from r = 1)."""
    r = 1
    for stride in [1, 1] + [2] * layers:
        r = stride * r + (4 - stride)
    return r


class CycleGenerator(nn.Module):
    """[a; b] -> [F(b); G(a)]: CycleGAN's two generators as one module (see the module docstring)."""

    def __init__(self, a_to_b: nn.Module, b_to_a: nn.Module):
        super().__init__()
        self.a_to_b, self.b_to_a = a_to_b, b_to_a
        self.channels, self.image_size = getattr(a_to_b, "channels", None), getattr(a_to_b, "image_size", None)

    def forward(self, domains: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if domains.shape[0] % 2:
            raise ConfigError(
                f"a CycleGAN batch is the two domains stacked [a; b]: it needs an even size, got {domains.shape[0]}"
            )
        a, b = domains.chunk(2)
        return torch.cat([self.b_to_a(b), self.a_to_b(a)])


class CycleDiscriminator(nn.Module):
    """[x_A; x_B] -> [D_A(x_A); D_B(x_B)]: CycleGAN's two discriminators as one module."""

    def __init__(self, d_a: nn.Module, d_b: nn.Module):
        super().__init__()
        self.d_a, self.d_b = d_a, d_b

    def forward_all(self, domains: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if domains.shape[0] % 2:
            raise ConfigError(
                f"a CycleGAN batch is the two domains stacked [a; b]: it needs an even size, got {domains.shape[0]}"
            )
        a, b = domains.chunk(2)
        out_a, out_b = self.d_a.forward_all(a), self.d_b.forward_all(b)
        return {k: torch.cat([out_a[k], out_b[k]]) for k in ("features", "logits")}

    def forward(self, domains: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(domains)["logits"]


TRANSLATION_TASKS = ("pix2pix", "cyclegan")
# The papers' normalisation: batch norm in pix2pix, instance norm in CycleGAN.
DEFAULT_NORM = {"pix2pix": "batch", "cyclegan": "instance"}


def translation_models(
    task: str,
    image_size: int,
    channels: int,
    width: int = 32,
    norm: str = "auto",
    d_norm: str = "auto",
    dropout: float | None = None,
) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for 'pix2pix' (U-Net, conditional PatchGAN) or 'cyclegan' (two of each,
    unconditional PatchGANs). 'auto' norms are the paper's; dropout defaults to 0.5 for pix2pix, 0 for CycleGAN."""
    if task not in TRANSLATION_TASKS:
        raise ConfigError(f"translation task must be one of {', '.join(TRANSLATION_TASKS)}, got {task!r}")
    norm = DEFAULT_NORM[task] if norm == "auto" else norm
    d_norm = DEFAULT_NORM[task] if d_norm == "auto" else d_norm
    dropout = (0.5 if task == "pix2pix" else 0.0) if dropout is None else dropout

    def unet():
        return UNet(channels, channels, image_size, width, norm=norm, dropout=dropout)

    if task == "pix2pix":
        return unet(), PatchGAN(channels, image_size, width, norm=d_norm, condition_channels=channels)
    return (
        CycleGenerator(unet(), unet()),
        CycleDiscriminator(
            PatchGAN(channels, image_size, width, norm=d_norm), PatchGAN(channels, image_size, width, norm=d_norm)
        ),
    )


def translation_models_from_config(config: dict) -> tuple[nn.Module, nn.Module]:
    """The models of a translation run's settings (course_lib.training.config.model_settings: the model section
    with task, image_size and channels): `task`, `width`, `d_norm` ('auto' = the paper's; a loss term that needs
    another norm has resolved it already)."""
    d_norm = config.get("d_norm", "auto")
    return translation_models(config["task"], config["image_size"], config["channels"], config["width"], d_norm=d_norm)
