"""Per-image quality measures: PSNR and SSIM between paired images, and a no-reference sharpness.

These compare images pixel by pixel (reconstructions, interpolations, super-resolution), not
distributions; a GAN sample has no "ground truth" partner, so for GANs they are useful mostly to
check e.g. how blurry samples are compared with real images (`sharpness`).

- PSNR = 10 log10(MAX^2 / MSE), per image, averaged over images (MAX = 1 on the [0, 1] scale used here).
- SSIM (Wang et al. 2004): local means, variances and covariance under an 11x11 Gaussian window
  (sigma 1.5), with C1 = (0.01 MAX)^2, C2 = (0.03 MAX)^2:
      SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
  averaged over the window positions that fit inside the image (no padding), the channels and the images.
- Sharpness: the variance of the Laplacian of the grey image (the usual focus measure); blur lowers it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .errors import MetricInputError
from .inputs import as_image_source


def _unit(images: Any, value_range, what: str) -> torch.Tensor:
    source = as_image_source(images, value_range=value_range, what=what)
    return torch.cat([b.double() / 255 if b.dtype == torch.uint8 else b.double() for b in source.batches(1024)])


def _pair(a, b, value_range) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _unit(a, value_range, "first images"), _unit(b, value_range, "second images")
    if x.shape != y.shape:
        raise MetricInputError(f"paired images must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return x, y


def psnr(a: Any, b: Any, value_range=None) -> float:
    """Mean over images of the PSNR in dB (identical images: inf)."""
    x, y = _pair(a, b, value_range)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1.0 / mse)).mean())


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    a: Any, b: Any, value_range=None, window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03
) -> float:
    """Mean SSIM over images (channels averaged); images must be at least `window` pixels on each side."""
    x, y = _pair(a, b, value_range)
    if min(x.shape[-2:]) < window:
        raise MetricInputError(f"SSIM needs images of at least {window}x{window} pixels, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    g = gaussian_window(window, sigma)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian filter, 'valid' region only
        t = F.conv2d(t, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(t, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.flatten(1).mean(1).mean())


def sharpness(images: Any, value_range=None) -> float:
    """Mean over images of the variance of the 3x3 Laplacian of the grey image (values on the [0, 1] scale)."""
    x = _unit(images, value_range, "images").mean(1, keepdim=True)
    if min(x.shape[-2:]) < 3:
        raise MetricInputError("sharpness needs images of at least 3x3 pixels")
    laplacian = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float64).view(1, 1, 3, 3)
    return float(F.conv2d(x, laplacian).flatten(1).var(1).mean())
