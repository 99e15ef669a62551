"""StyleGAN's ideas at MNIST scale: a mapping network, style modulation, noise inputs, style mixing.

Karras, Laine, Aila 2019 ("A Style-Based Generator Architecture for GANs", StyleGAN) and Karras et
al. 2020 ("Analyzing and Improving the Image Quality of StyleGAN", StyleGAN2):

- Mapping network f: z -> w. z ~ N(0, I) is normalised (pixel norm) and passed through an MLP
  (8 layers in the paper, `mapping_layers` here). W need not follow a fixed distribution, so it can
  "unwarp" the factors of variation; the paper measures this with the perceptual path length
  (`course_lib.metrics.ppl`), which is lower in W than in Z.
- Synthesis network g: starts from a learned constant (7x7 for 28x28 images) instead of from z. Every
  convolution gets its own style s = A(w) (a learned affine map of w), applied either as
    AdaIN (StyleGAN):             y = s_scale * (x - mean(x)) / std(x) + s_bias, per sample and channel
    modulation (StyleGAN2):       w'_ijk = s_i w_ijk,  w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)
  the second scaling ("demodulation") giving unit-variance outputs without normalising the
  activations, which removes AdaIN's droplet artefacts.
- Noise inputs: after each convolution, B * noise with noise ~ N(0, 1) one value per pixel, shared by
  all channels, and B a learned per-channel strength (starting at 0). The noise carries stochastic
  detail (for digits: stroke texture); `noise_mode` = 'random' (training, sampling), 'const' (one
  fixed noise image per layer: deterministic outputs, as StyleGAN2 measures PPL) or 'none'.
- Style mixing: `synthesis` takes one w per style input (`num_ws` of them); `mix(w1, w2, crossover)`
  takes the first `crossover` from w1 and the rest from w2. Coarse layers (7x7) set the digit's shape,
  fine ones (28x28) its stroke. During training, with probability `mixing` per batch, a second z and a
  random crossover are drawn ("mixing regularisation"), so neighbouring styles are not assumed
  correlated.

At 28x28 the synthesis network is 7x7 (const, 1 conv) -> 14x14 (2 convs) -> 28x28 (2 convs) -> a 1x1
"toRGB" modulated convolution (no demodulation) and tanh, so outputs are in [-1, 1] like every
generator of course_lib. Weights use the ordinary parametrisation (not the equalised learning rate),
so the DCGAN learning rates apply.

Every LeakyReLU of the synthesis network is followed by a gain of sqrt(2) (`ACTIVATION_GAIN`, StyleGAN2's
`bias_act` default for lrelu). Demodulation gives unit-variance outputs only for unit-variance inputs;
LeakyReLU(0.2) halves the second moment, so without the gain the activations shrank about 0.7x per layer
(to RMS ~0.1 at 28x28 and a pre-tanh output of std ~0.13). The z-independent parameters (biases, the
constant) then outweighed the styles within ~50 steps and the generator drew the same digit for every z
(issue 19; tests/test_style.py checks the activation scale and that a short training run still depends on z).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from course_lib.core.errors import ConfigError

STYLE_MODES = ("modulated", "adain")
# Gain after each LeakyReLU(0.2) (StyleGAN2's def_gain for lrelu): keeps the activations at unit scale for the
# next demodulated convolution (see the module docstring; without it the generator collapsed to one image).
ACTIVATION_GAIN = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) over dimension 1 (Karras et al. 2018's pixelwise feature normalisation)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z (N, latent_dim) -> w (N, w_dim): pixel norm, then `layers` fully connected LeakyReLU(0.2) layers."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int = 4):
        super().__init__()
        if layers < 1:
            raise ConfigError(f"the mapping network needs at least 1 layer, got {layers}")
        dims = [latent_dim] + [w_dim] * layers
        blocks = []
        for cin, cout in zip(dims[:-1], dims[1:]):
            layer = nn.Linear(cin, cout)
            # He initialisation for LeakyReLU(0.2), zero bias (StyleGAN's effective initialisation): w keeps the
            # scale of the normalised z through the layers. PyTorch's default Linear init shrinks it about 3x per
            # layer, which left w (and so every image) nearly independent of z: a generator collapsed from step 0.
            nn.init.kaiming_normal_(layer.weight, a=0.2, nonlinearity="leaky_relu")
            nn.init.zeros_(layer.bias)
            blocks += [layer, nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*blocks)
        self.latent_dim, self.w_dim = latent_dim, w_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_norm(z.reshape(z.shape[0], -1)))


class StyleAffine(nn.Linear):
    """A: w -> style, the bias starting at `bias_init` (1 for scales, so the first styles are neutral)."""

    def __init__(self, w_dim: int, features: int, bias_init: float = 1.0):
        super().__init__(w_dim, features)
        nn.init.normal_(self.weight, 0.0, 1.0 / math.sqrt(w_dim))
        nn.init.constant_(self.bias, bias_init)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution: the kernel scaled per sample by s = A(w), then demodulated.

    Implemented as one grouped convolution over the batch (each sample its own kernel).
    """

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.cin, self.cout, self.kernel, self.demodulate = cin, cout, kernel, demodulate
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.affine = StyleAffine(w_dim, cin)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        style = self.affine(w)  # (N, cin)
        weight = self.weight[None] * style[:, None, :, None, None]  # (N, cout, cin, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(
            x.reshape(1, n * self.cin, *x.shape[2:]),
            weight.reshape(n * self.cout, self.cin, self.kernel, self.kernel),
            padding=self.kernel // 2,
            groups=n,
        )
        return out.reshape(n, self.cout, *out.shape[2:])


class AdaIN(nn.Module):
    """StyleGAN's adaptive instance normalisation: normalise each channel of each sample, then scale
    and shift it by the style (y_s, y_b) = A(w)."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.scale = StyleAffine(w_dim, channels, bias_init=1.0)
        self.shift = StyleAffine(w_dim, channels, bias_init=0.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = F.instance_norm(x, eps=1e-8)
        return self.scale(w)[:, :, None, None] * x + self.shift(w)[:, :, None, None]


class StyledConv(nn.Module):
    """One synthesis layer: [2x nearest upsampling], 3x3 convolution styled by w, noise, bias, LeakyReLU."""

    def __init__(
        self, cin: int, cout: int, w_dim: int, resolution: int, mode: str = "modulated", upsample: bool = False
    ):
        super().__init__()
        if mode not in STYLE_MODES:
            raise ConfigError(f"style must be one of {', '.join(STYLE_MODES)}, got {mode!r}")
        self.mode, self.upsample, self.resolution = mode, upsample, resolution
        if mode == "modulated":
            self.conv = ModulatedConv2d(cin, cout, 3, w_dim)
        else:
            self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
            self.adain = AdaIN(cout, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(cout))
        self.register_buffer(
            "const_noise",
            torch.randn(
                1, 1, resolution, resolution, generator=torch.Generator().manual_seed(resolution * 1000 + cout)
            ),
        )
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(x, w) if self.mode == "modulated" else self.conv(x)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            x = x + self.noise_strength[None, :, None, None] * noise
        elif noise_mode == "const":
            x = x + self.noise_strength[None, :, None, None] * self.const_noise.to(x.dtype)
        x = F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * ACTIVATION_GAIN
        if self.mode == "adain":  # StyleGAN: noise and bias first, then AdaIN
            x = self.adain(x, w)
        return x


class StyleGenerator(nn.Module):
    """z (N, latent_dim) -> image (N, channels, 28, 28) in [-1, 1]: mapping network + styled synthesis.

    `mapping(z)` gives w, `synthesis(ws)` an image from one w (N, w_dim) or one per style input
    (N, num_ws, w_dim), `mix(w1, w2, crossover)` the style-mixed ws. `mixing` is the probability of
    mixing regularisation per training batch; `style` is 'modulated' (StyleGAN2) or 'adain' (StyleGAN).
    See the module docstring.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        image_size: int = 28,
        channels: int = 1,
        width: int = 32,
        mapping_layers: int = 4,
        style: str = "modulated",
        mixing: float = 0.9,
        w_dim: int | None = None,
    ):
        super().__init__()
        if image_size != 28:
            raise ConfigError(f"the style generator is built for 28x28 images (7 -> 14 -> 28), got {image_size}")
        if style not in STYLE_MODES:
            raise ConfigError(f"style must be one of {', '.join(STYLE_MODES)}, got {style!r}")
        if not 0 <= mixing <= 1:
            raise ConfigError(f"style_mixing must be a probability in [0, 1], got {mixing!r}")
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        self.w_dim = w_dim or latent_dim
        self.style, self.mixing = style, float(mixing)
        self.noise_mode = "random"
        self.mapping_net = MappingNetwork(latent_dim, self.w_dim, mapping_layers)
        c7, c14, c28 = 2 * width, width, max(width // 2, 1)
        self.const = nn.Parameter(torch.randn(1, c7, 7, 7))
        self.layers = nn.ModuleList(
            [
                StyledConv(c7, c7, self.w_dim, 7, style),
                StyledConv(c7, c14, self.w_dim, 14, style, upsample=True),
                StyledConv(c14, c14, self.w_dim, 14, style),
                StyledConv(c14, c28, self.w_dim, 28, style, upsample=True),
                StyledConv(c28, c28, self.w_dim, 28, style),
            ]
        )
        self.to_rgb = ModulatedConv2d(c28, channels, 1, self.w_dim, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(channels))
        self.num_ws = len(self.layers) + 1  # one style per convolution, one for toRGB
        self.layer_resolutions = tuple(layer.resolution for layer in self.layers) + (28,)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """w = f(z), shape (N, w_dim)."""
        if z.dim() < 2 or z[0].numel() != self.latent_dim:
            raise ConfigError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.mapping_net(z)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """(N, w_dim) -> (N, num_ws, w_dim): the same w for every style input; (N, num_ws, w_dim) as is."""
        if w.dim() == 2 and w.shape[1] == self.w_dim:
            return w[:, None, :].expand(-1, self.num_ws, -1)
        if w.dim() == 3 and w.shape[1:] == (self.num_ws, self.w_dim):
            return w
        raise ConfigError(
            f"styles must have shape (N, {self.w_dim}) or (N, {self.num_ws}, {self.w_dim}), got {tuple(w.shape)}"
        )

    def mix(self, w1: torch.Tensor, w2: torch.Tensor, crossover: int) -> torch.Tensor:
        """Per-layer styles: w1 for the first `crossover` style inputs (coarse), w2 for the rest (fine)."""
        if not 0 <= crossover <= self.num_ws:
            raise ConfigError(f"crossover must be in 0..{self.num_ws}, got {crossover}")
        ws1, ws2 = self.broadcast(w1), self.broadcast(w2)
        if ws1.shape != ws2.shape:
            raise ConfigError(f"mixed styles must have the same shape, got {tuple(w1.shape)} and {tuple(w2.shape)}")
        layer = torch.arange(self.num_ws, device=ws1.device)[None, :, None]
        return torch.where(layer < crossover, ws1, ws2)

    def synthesis(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        """Image from styles ws ((N, w_dim) or (N, num_ws, w_dim)); noise_mode defaults to self.noise_mode."""
        noise_mode = noise_mode or self.noise_mode
        if noise_mode not in NOISE_MODES:
            raise ConfigError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        ws = self.broadcast(ws)
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode)
        return torch.tanh(self.to_rgb(x, ws[:, -1]) + self.rgb_bias[None, :, None, None])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        w = self.mapping(z)
        if self.training and self.mixing > 0 and torch.rand(()) < self.mixing:
            # Mixing regularisation: a second latent takes over from a random style input on.
            w2 = self.mapping(torch.randn_like(z))
            crossover = int(torch.randint(1, self.num_ws, ()))
            return self.synthesis(self.mix(w, w2, crossover))
        return self.synthesis(w)
