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
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.nn.layers import MinibatchDiscrimination, MinibatchStdDev, add_spectral_norm, norm_layer

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

    Options used by the improvements chapter:
    - upsample='nearest': each 2x stage is nearest-neighbour upsampling followed by a 3x3
      convolution instead of a stride-2 transposed convolution, which avoids the checkerboard
      artefacts of overlapping transposed kernels (Odena et al. 2016, "Deconvolution and
      Checkerboard Artifacts").
    - n_classes > 0 (conditional GAN, ACGAN): the class label, one-hot, is concatenated to z
      (Mirza & Osindero 2014). `forward(z)` without labels uses the balanced labels
      0, 1, ..., n_classes-1, 0, 1, ... so that code written for unconditional generators works.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 64,
        channels: int = 3,
        width: int = 64,
        upsample: str = "transposed",
        n_classes: int = 0,
    ):
        super().__init__()
        if upsample not in ("transposed", "nearest"):
            raise ConfigError(f"generator upsampling must be 'transposed' or 'nearest', got {upsample!r}")
        self.latent_dim, self.image_size, self.channels, self.n_classes = latent_dim, image_size, channels, n_classes
        start, stages = _layout(image_size)
        ch = width * 2 ** (stages - 1)
        layers = [
            nn.ConvTranspose2d(latent_dim + n_classes, ch, start, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [*_up(ch, ch // 2, upsample), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [*_up(ch, channels, upsample), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            z = torch.cat([z.view(z.shape[0], -1), one_hot_labels(labels, z.shape[0], self.n_classes, z)], dim=1)
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


def _up(cin: int, cout: int, upsample: str) -> list[nn.Module]:
    if upsample == "transposed":
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]


def balanced_labels(n: int, n_classes: int, device=None) -> torch.Tensor:
    """0, 1, ..., n_classes-1, 0, 1, ...: the labels used when a conditional model is given none."""
    return torch.arange(n, device=device) % n_classes


def one_hot_labels(labels: torch.Tensor | None, n: int, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    if labels is None:
        labels = balanced_labels(n, n_classes, like.device)
    labels = torch.as_tensor(labels, device=like.device).long().view(-1)
    if labels.shape[0] != n:
        raise ConfigError(f"got {labels.shape[0]} labels for {n} latent vectors")
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ConfigError(
            f"labels must be in 0..{n_classes - 1}, got values from {int(labels.min())} to {int(labels.max())}"
        )
    return nn.functional.one_hot(labels, n_classes).to(like.dtype)


class InfoGANGenerator(nn.Module):
    """InfoGAN's generator (Chen et al. 2016): noise plus structured codes -> image.

    The latent vector z ~ N(0, I) of size `latent_dim` = noise + info_cat + info_cont is split into
    three blocks, and the code blocks are turned into InfoGAN's code distributions exactly:
    - categorical code c1 = argmax of its block (argmax of i.i.d. Gaussians is uniform over the
      categories), fed to the network one-hot;
    - continuous codes c2.. = erf(block / sqrt 2) = 2 Phi(block) - 1, uniform on [-1, 1]
      (the probability integral transform).
    So every tool that samples z ~ N(0, I) (metrics, `course-lib sample`, latent tools) samples
    InfoGAN correctly, and `codes_to_latent` builds z for chosen code values (sliders).
    """

    def __init__(
        self,
        noise_dim: int = 62,
        image_size: int = 28,
        channels: int = 1,
        width: int = 64,
        info_cat: int = 10,
        info_cont: int = 2,
        upsample: str = "transposed",
    ):
        super().__init__()
        self.noise_dim, self.info_cat, self.info_cont = noise_dim, info_cat, info_cont
        self.latent_dim = noise_dim + info_cat + info_cont
        self.image_size, self.channels = image_size, channels
        self.body = DCGANGenerator(self.latent_dim, image_size, channels, width, upsample)

    def split_codes(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(noise, categorical index (N,), continuous codes in [-1, 1] (N, info_cont)) of latents z."""
        z = z.view(z.shape[0], -1)
        noise, cat_block, cont_block = z.split([self.noise_dim, self.info_cat, self.info_cont], dim=1)
        return noise, cat_block.argmax(dim=1), torch.erf(cont_block / math.sqrt(2))

    def codes_to_latent(self, noise: torch.Tensor, categories: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        """Latents z whose codes are exactly the given categories and continuous values in (-1, 1)."""
        continuous = torch.as_tensor(continuous, dtype=noise.dtype, device=noise.device).clamp(-1 + 1e-6, 1 - 1e-6)
        cat = nn.functional.one_hot(torch.as_tensor(categories, device=noise.device).long(), self.info_cat)
        return torch.cat([noise, cat.to(noise.dtype), math.sqrt(2) * torch.erfinv(continuous)], dim=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        noise, cat, cont = self.split_codes(z)
        codes = nn.functional.one_hot(cat, self.info_cat).to(noise.dtype)
        return self.body(torch.cat([noise, codes, cont], dim=1))


class DCGANDiscriminator(nn.Module):
    """image (N, channels, S, S) -> logit (N,). Mirrors the generator with strided convolutions.

    Options used by the improvements chapter (all off by default, giving the tutorial's model):
    - norm: 'batch' (DCGAN), 'layer' or 'none'. A WGAN-GP critic must not use batch norm: the
      gradient penalty is per sample, and batch norm makes each output depend on the whole batch.
    - spectral_norm: spectrally normalised weights (see `course_lib.nn.layers`).
    - minibatch_stddev: Karras et al.'s extra feature map before the output layer.
    - minibatch_discrimination = B > 0: Salimans et al.'s layer with B kernels on the flattened
      features, followed by a linear output layer.
    - n_classes > 0 (conditional GAN, Mirza & Osindero 2014): the label, one-hot and broadcast to
      n_classes constant feature maps, is concatenated to the image channels at the input.
    - aux_classes > 0: ACGAN's auxiliary classifier head (Odena et al. 2017).
    - info_cat / info_cont > 0: InfoGAN's Q head, predicting the categorical code (logits) and the
      mean of each continuous code.

    `forward(x, labels)` returns the logits; `forward_all` also returns the features (for feature
    matching) and the auxiliary heads' outputs, computed in the same pass.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        width: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
        minibatch_stddev: bool = False,
        minibatch_discrimination: int = 0,
        n_classes: int = 0,
        aux_classes: int = 0,
        info_cat: int = 0,
        info_cont: int = 0,
    ):
        super().__init__()
        if norm not in ("batch", "layer", "none"):
            raise ConfigError(f"discriminator norm must be batch, layer or none, got {norm!r}")
        self.image_size, self.channels, self.n_classes = image_size, channels, n_classes
        start, stages = _layout(image_size)
        ch = width
        layers = [
            nn.Conv2d(channels + n_classes, ch, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
        ]  # no norm on the input layer
        for _ in range(stages - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"),
                norm_layer(norm, ch * 2),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.stddev = MinibatchStdDev() if minibatch_stddev else None
        head_ch = ch + int(minibatch_stddev)
        flat = head_ch * start * start
        if minibatch_discrimination:
            self.minibatch = MinibatchDiscrimination(flat, minibatch_discrimination)
            self.head = nn.Linear(flat + minibatch_discrimination, 1)
        else:
            self.minibatch = None
            self.head = nn.Conv2d(head_ch, 1, start, 1, 0, bias=False)
        self.aux = nn.Linear(flat, aux_classes) if aux_classes else None
        self.info_cat, self.info_cont = info_cat, info_cont
        self.q = (
            nn.Sequential(nn.Linear(flat, 128), nn.LeakyReLU(0.2, True), nn.Linear(128, info_cat + info_cont))
            if info_cat + info_cont
            else None
        )
        self.apply(dcgan_init)
        if spectral_norm:
            add_spectral_norm(self)

    def forward_all(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.n_classes:
            maps = one_hot_labels(labels, x.shape[0], self.n_classes, x)[:, :, None, None]
            x = torch.cat([x, maps.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        h = self.features(x)
        if self.stddev is not None:
            h = self.stddev(h)
        flat = h.flatten(1)
        if self.minibatch is not None:
            logits = self.head(self.minibatch(flat)).flatten()
        else:
            logits = self.head(h).flatten()
        out = {"features": flat}
        if self.aux is not None:
            out["class_logits"] = self.aux(flat)
        if self.q is not None:
            q = self.q(flat)
            out["info_cat_logits"], out["info_cont"] = q[:, : self.info_cat], q[:, self.info_cat :]
        out["logits"] = logits
        return out

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, labels)["logits"]


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
            nn.Linear(latent_dim, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, channels * image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1)).view(-1, self.channels, self.image_size, self.image_size)


class MLPDiscriminator(nn.Module):
    """Goodfellow et al. 2014's MNIST discriminator: two maxout layers (240 units, 5 pieces) with dropout."""

    def __init__(
        self, image_size: int = 28, channels: int = 1, hidden: int = 240, pieces: int = 5, dropout: float = 0.5
    ):
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.net = nn.Sequential(
            nn.Dropout(0.2),
            Maxout(channels * image_size * image_size, hidden, pieces),
            nn.Dropout(dropout),
            Maxout(hidden, hidden, pieces),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward_all(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        features = self.net[:-1](x.flatten(1))  # the last maxout layer's output (after dropout)
        return {"features": features, "logits": self.net[-1](features).flatten()}

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).flatten()


ARCHITECTURES = ("dcgan", "mlp", "style", "progressive")


@dataclass(frozen=True)
class Conditioning:
    """Which networks of a model family take class labels.

    generator_labels: G draws an image of a given class (cGAN, ACGAN), so training samples a label
    per fake. discriminator_labels: D also reads the label (cGAN, as one-hot input maps); ACGAN's D
    instead predicts it, and InfoGAN's codes are part of z, so neither takes a label as input.
    """

    name: str
    generator_labels: bool = False
    discriminator_labels: bool = False


CONDITIONINGS = {
    "none": Conditioning("none"),
    "cgan": Conditioning("cgan", generator_labels=True, discriminator_labels=True),
    "acgan": Conditioning("acgan", generator_labels=True),
    "infogan": Conditioning("infogan"),
}
CONDITIONING = tuple(CONDITIONINGS)


def build_models(
    arch: str = "dcgan",
    latent_dim: int = 100,
    image_size: int = 64,
    channels: int = 3,
    width: int = 64,
    *,
    g_upsample: str = "transposed",
    d_norm: str = "batch",
    spectral_norm: bool = False,
    minibatch_stddev: bool = False,
    minibatch_discrimination: int = 0,
    conditional: str = "none",
    n_classes: int = 10,
    info_cat: int = 10,
    info_cont: int = 2,
    style: str = "modulated",
    mapping_layers: int = 4,
    style_mixing: float = 0.9,
) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for an architecture name. `width` is DCGAN's base channel count
    (64 in the paper and tutorial) or the MLP generator's hidden size. The keyword options are the
    DCGAN variants of the improvements chapter (see DCGANGenerator / DCGANDiscriminator).

    conditional: 'cgan' (labels into G and D), 'acgan' (labels into G, D with an
    auxiliary classifier), 'infogan' (G with latent codes, D with a Q head; `latent_dim` is then
    the noise size and the generator's latent_dim grows by info_cat + info_cont).
    """
    if conditional not in CONDITIONING:
        raise ConfigError(f"unknown conditioning {conditional!r}; choose one of {', '.join(CONDITIONING)}")
    if arch == "dcgan":
        labelled = n_classes if CONDITIONINGS[conditional].generator_labels else 0
        if conditional == "infogan":
            generator = InfoGANGenerator(latent_dim, image_size, channels, width, info_cat, info_cont, g_upsample)
        else:
            generator = DCGANGenerator(latent_dim, image_size, channels, width, g_upsample, n_classes=labelled)
        discriminator = DCGANDiscriminator(
            image_size,
            channels,
            width,
            norm=d_norm,
            spectral_norm=spectral_norm,
            minibatch_stddev=minibatch_stddev,
            minibatch_discrimination=minibatch_discrimination,
            n_classes=n_classes if CONDITIONINGS[conditional].discriminator_labels else 0,
            aux_classes=n_classes if conditional == "acgan" else 0,
            info_cat=info_cat if conditional == "infogan" else 0,
            info_cont=info_cont if conditional == "infogan" else 0,
        )
        return generator, discriminator
    if arch == "style":  # StyleGAN's generator (course_lib.nn.style) against the DCGAN discriminator
        from course_lib.nn.style import StyleGenerator

        if conditional != "none":
            raise ConfigError("the style generator is unconditional; use conditional 'none'")
        generator = StyleGenerator(latent_dim, image_size, channels, width, mapping_layers, style, style_mixing)
        discriminator = DCGANDiscriminator(
            image_size,
            channels,
            width,
            norm=d_norm,
            spectral_norm=spectral_norm,
            minibatch_stddev=minibatch_stddev,
            minibatch_discrimination=minibatch_discrimination,
        )
        return generator, discriminator
    if arch == "progressive":  # Karras et al. 2018 (course_lib.nn.progressive); grown by the 'progressive' callback
        from course_lib.nn.progressive import ProgressiveDiscriminator, ProgressiveGenerator

        if conditional != "none":
            raise ConfigError("the progressive GAN is unconditional; use conditional 'none'")
        return (
            ProgressiveGenerator(latent_dim, image_size, channels, width),
            ProgressiveDiscriminator(image_size, channels, width, minibatch_stddev=True),
        )
    if arch == "mlp":
        unsupported = [
            name
            for name, value, default in (
                ("g_upsample", g_upsample, "transposed"),
                ("d_norm", d_norm, "batch"),
                ("spectral_norm", spectral_norm, False),
                ("minibatch_stddev", minibatch_stddev, False),
                ("minibatch_discrimination", minibatch_discrimination, 0),
                ("conditional", conditional, "none"),
            )
            if value != default
        ]
        if unsupported:
            raise ConfigError(f"the MLP GAN does not support {', '.join(unsupported)}; use arch 'dcgan'")
        return MLPGenerator(latent_dim, image_size, channels, hidden=width), MLPDiscriminator(image_size, channels)
    raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


MODEL_SETTINGS = (
    "g_upsample",
    "d_norm",
    "spectral_norm",
    "minibatch_stddev",
    "minibatch_discrimination",
    "conditional",
    "n_classes",
    "info_cat",
    "info_cont",
    "style",
    "mapping_layers",
    "style_mixing",
)


def models_from_config(config: dict) -> tuple[nn.Module, nn.Module]:
    """Build the models a run's settings describe: a flat mapping of the model settings (a TrainConfig's model
    section, `course_lib.training.config.model_settings`) with task, image_size and channels filled in.
    Settings missing take their defaults; d_norm 'auto' is the architecture's own choice."""
    if config.get("task", "generation") != "generation":  # image translation: U-Net + PatchGAN (nn/translation.py)
        from course_lib.nn.translation import translation_models_from_config

        return translation_models_from_config(config)
    options = {k: config[k] for k in MODEL_SETTINGS if k in config}
    if options.get("d_norm") == "auto":  # the architecture's own choice; a loss term's need is resolved by training
        options["d_norm"] = "batch"
    return build_models(
        config["arch"], config["latent_dim"], config["image_size"], config["channels"], config["width"], **options
    )
