"""Draw the course's two diagrams as SVG files in docs/figures/ (the notebooks show them).

    python scripts/draw_diagrams.py

- gan_pipeline.svg: the GAN's data flow and losses (Prince, *Understanding Deep Learning*, figure 15.2);
- dcgan_mnist.svg: the 28x28 DCGAN of notebooks 05-08, read from course_lib's own models (every layer and its
  output shape come from running `DCGANGenerator` and `DCGANDiscriminator` on a dummy batch, so the picture cannot
  drift from the code: rerun this script after changing the models).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from course_lib.core.io import write_text_atomic  # noqa: E402
from course_lib.nn.models import DCGANDiscriminator, DCGANGenerator  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "figures"
plt.rcParams.update({"svg.hashsalt": "course_lib", "svg.fonttype": "none", "font.size": 10})


def box(ax, x, y, w, h, text, color):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="black", lw=1
        )
    )
    ax.text(x, y, text, ha="center", va="center")


def arrow(ax, start, end, text="", offset=(0, 0.12)):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, lw=1.2, color="black"))
    if text:
        ax.text(
            (start[0] + end[0]) / 2 + offset[0],
            (start[1] + end[1]) / 2 + offset[1],
            text,
            ha="center",
            va="bottom",
            fontsize=9,
        )


def save(fig, name: str) -> None:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    write_text_atomic(OUT / name, buffer.getvalue())
    print("wrote", OUT / name)


def gan_pipeline() -> None:
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.set(xlim=(0, 10), ylim=(0, 3.6))
    ax.axis("off")
    box(ax, 1.0, 2.6, 1.5, 0.7, "latent $z_j$\n$\\sim \\mathrm{Pr}(z)$", "#e8e8e8")
    box(ax, 3.3, 2.6, 1.7, 0.7, "generator\n$\\mathrm{g}[z_j, \\theta]$", "#ffd8a8")
    box(ax, 5.5, 2.6, 1.4, 0.7, "generated\n$x^*_j$", "#ffd8a8")
    box(ax, 5.5, 0.9, 1.4, 0.7, "real data\n$x_i$", "#b2e5f5")
    box(ax, 7.6, 1.75, 1.7, 0.9, "discriminator\n$\\mathrm{sig}[\\mathrm{f}[x, \\phi]]$", "#d0c4f0")
    box(ax, 9.3, 1.75, 1.1, 0.9, "Pr(real)\nper sample", "#e8e8e8")
    arrow(ax, (1.75, 2.6), (2.45, 2.6))
    arrow(ax, (4.15, 2.6), (4.8, 2.6))
    arrow(ax, (6.2, 2.5), (6.75, 1.95), "batch $\\{x^*_j\\}$", (0.25, 0.1))
    arrow(ax, (6.2, 1.0), (6.75, 1.55), "batch $\\{x_i\\}$", (0.25, -0.35))
    arrow(ax, (8.45, 1.75), (8.75, 1.75))
    ax.text(
        5.0,
        0.05,
        "$\\phi$: real samples get high, generated low probability (minimise $L_D$);   "
        "$\\theta$: generated samples get high probability (fool the discriminator)",
        ha="center",
        fontsize=9,
    )
    ax.set_title("The GAN's losses (after Prince, Understanding Deep Learning, fig. 15.2)", fontsize=11)
    save(fig, "gan_pipeline.svg")


def layer_table(model: torch.nn.Module, x: torch.Tensor, layers) -> list[tuple[str, tuple]]:
    rows = [("input", tuple(x.shape[1:]))]
    with torch.no_grad():
        for layer in layers:
            x = layer(x)
            name = type(layer).__name__
            if isinstance(layer, (torch.nn.ConvTranspose2d, torch.nn.Conv2d)):
                name += (
                    f" {layer.kernel_size[0]}x{layer.kernel_size[1]}, stride {layer.stride[0]}, pad {layer.padding[0]}"
                )
            rows.append((name, tuple(x.shape[1:])))
    return rows


def dcgan_mnist(width: int = 64) -> None:
    G, D = DCGANGenerator(100, 28, 1, width).eval(), DCGANDiscriminator(28, 1, width).eval()
    g_rows = layer_table(G, torch.zeros(1, 100, 1, 1), G.net)
    d_rows = layer_table(D, torch.zeros(1, 1, 28, 28), [*D.features, D.head])
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax, rows, title, color in [
        (axes[0], g_rows, "generator: noise -> image", "#ffd8a8"),
        (axes[1], d_rows, "discriminator: image -> logit", "#d0c4f0"),
    ]:
        ax.set(xlim=(0, 6), ylim=(-0.5, len(rows) + 0.2))
        ax.axis("off")
        ax.set_title(title)
        for k, (name, shape) in enumerate(rows):
            y = len(rows) - 1 - k
            side = shape[-1] if len(shape) == 3 else 1
            size = 0.25 + 0.9 * side / 28
            is_map = name.startswith(("input", "Conv"))
            box(ax, 1.2, y, size * 1.6, min(size, 0.8), "", color if is_map else "#f4f4f4")
            ax.text(2.4, y, f"{name}\n-> {' x '.join(map(str, shape))}", va="center", fontsize=9)
            if k:
                arrow(ax, (1.2, y + 0.75), (1.2, y + 0.45))
    fig.suptitle(
        f"DCGAN for 28x28 MNIST in course_lib (width {width}); shapes are channels x height x width", fontsize=11
    )
    save(fig, "dcgan_mnist.svg")


if __name__ == "__main__":
    gan_pipeline()
    dcgan_mnist()
