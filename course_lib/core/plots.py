"""Pictures: sample grids and training curves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from course_lib.core.images import to_uint8
from course_lib.core.io import save_figure_atomic, write_atomic


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile images (N, C, H, W), uint8 or float in [-1, 1], into one (H', W', 3) uint8 array."""
    from torchvision.utils import make_grid

    if images.dtype != torch.uint8:
        images = to_uint8(images)
    images = images.detach().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    nrow = nrow or max(1, int(np.ceil(np.sqrt(len(images)))))
    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=255)
    return grid.permute(1, 2, 0).numpy()


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None) -> Path:
    """Write a PNG grid of images atomically (temporary file, then rename)."""
    from PIL import Image

    grid = Image.fromarray(image_grid(images, nrow))
    return write_atomic(path, lambda f: grid.save(f, format="PNG"))


def show_images(images: torch.Tensor, nrow: int | None = None, title: str | None = None, ax=None, size: float = 5.0):
    """Show a grid of images in a notebook (matplotlib)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(image_grid(images, nrow))
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def plot_training_log(history: list[dict], path: str | os.PathLike | None = None):
    """Losses (left) and the discriminator's mean outputs D(x), D(G(z)) (right) against the step."""
    if path is not None:  # a bare Figure draws off-screen without touching pyplot's backend
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 3.8))
        ax_loss, ax_d = fig.subplots(1, 2)
    else:
        import matplotlib.pyplot as plt

        fig, (ax_loss, ax_d) = plt.subplots(1, 2, figsize=(11, 3.8))
    steps = [row["step"] for row in history]
    for key, label in (("loss_d", "discriminator"), ("loss_g", "generator")):
        ax_loss.plot(steps, [row[key] for row in history], label=label)
    ax_loss.set(xlabel="generator step", ylabel="loss", title="losses")
    ax_loss.legend()
    for key, label in (("d_real", "D(x), real"), ("d_fake", "D(G(z)), fake")):
        ax_d.plot(steps, [row[key] for row in history], label=label)
    ax_d.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax_d.set(xlabel="generator step", ylabel="mean discriminator output", ylim=(0, 1), title="discriminator outputs")
    ax_d.legend()
    fig.tight_layout()
    if path is not None:
        save_figure_atomic(fig, path, dpi=100)
    return fig
