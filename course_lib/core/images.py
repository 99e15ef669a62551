"""The two image representations of the course and the conversions between them.

Datasets hold uint8 images in [0, 255], shape (N, C, H, W); generators produce float images in
[-1, 1] (a tanh output). Every other module converts through these functions.
"""

from __future__ import annotations

import torch

from course_lib.core.errors import DataError


def check_uint8_images(images: torch.Tensor, what: str = "images") -> None:
    """Raise DataError unless `images` is a non-empty uint8 tensor of shape (N, C, H, W), C in {1, 3}."""
    if not isinstance(images, torch.Tensor):
        raise DataError(f"{what}: expected a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise DataError(f"{what}: expected dtype uint8 (values 0..255), got {images.dtype}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"{what}: expected shape (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}")
    if len(images) == 0:
        raise DataError(f"{what}: no images")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the range a tanh generator produces."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest; values outside are clipped."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
