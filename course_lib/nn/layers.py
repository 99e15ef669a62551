"""Layers that the GAN improvements add to a discriminator.

- Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", sec. 3.2):
  let the discriminator compare a sample with the rest of its batch, so a generator that collapses
  to one mode produces batches that are easy to recognise. For features f(x_i) in R^A and a learned
  tensor T in R^{A x B x C}: M_i = f(x_i) T in R^{B x C},
      c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1),   o(x_i)_b = sum_{j != i} c_b(x_i, x_j),
  and the layer outputs [f(x_i), o(x_i)] in R^{A + B}. (The paper's sum includes j = i, which only
  adds the constant 1; it is left out here so identical samples give exactly n - 1.)
- Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", sec. 3): split
  the batch into groups of (at most) 4, take the standard deviation of every feature over each
  group, average it into one number per group and append it as an extra constant feature map.
  A batch of identical samples gets 0 (up to the 1e-8 inside the square root).
- Spectral normalisation (Miyato et al. 2018): every weight W is divided by its largest singular
  value sigma(W), estimated by one power iteration per forward pass, which bounds each layer's
  Lipschitz constant by 1. `add_spectral_norm` applies PyTorch's parametrization to every conv
  and linear layer of a module.
"""

from __future__ import annotations

import torch
from torch import nn


class _GatherRows(torch.autograd.Function):
    """Every rank's rows (equally many), concatenated in rank order; the backward sums the ranks' gradients of the
    whole and hands each rank those of its own rows (all-reduce, then its slice: gloo and NCCL alike)."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor) -> torch.Tensor:
        world = torch.distributed.get_world_size()
        ctx.rank, ctx.n = torch.distributed.get_rank(), rows.shape[0]
        parts = [torch.empty_like(rows) for _ in range(world)]
        torch.distributed.all_gather(parts, rows.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


class MinibatchDiscrimination(nn.Module):
    """(N, in_features) -> (N, in_features + kernels). See the module docstring.

    `gather_ranks` (set by course_lib.training.distributed for a data-parallel run): each rank's samples are
    compared with the whole global batch, the projections M of every rank all-gathered with their gradient
    (`_GatherRows`), so W ranks compute what one process computes on the global batch. Every rank must
    then call the layer together (the training forward passes do)."""

    gather_ranks = False

    def __init__(self, in_features: int, kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.in_features, self.kernels, self.kernel_dim = in_features, kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim)  # (N, B, C)
        others = m
        if self.gather_ranks and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            others = _GatherRows.apply(m)
        l1 = (m.unsqueeze(1) - others.unsqueeze(0)).abs().sum(dim=3)  # (N, N_all, B): ||M_i,b - M_j,b||_1
        o = torch.exp(-l1).sum(dim=1) - 1.0  # drop the j = i term, exp(0) = 1
        return torch.cat([f, o], dim=1)


class MinibatchStdDev(nn.Module):
    """(N, C, H, W) -> (N, C + 1, H, W): appends the average per-group standard deviation."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:  # the largest group size <= group_size that divides the batch
            g -= 1
        y = x.float().view(g, n // g, c, h, w)  # sample i goes to group i % (n // g), as in Karras et al.
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (n//g, c, h, w)
        stat = std.mean(dim=(1, 2, 3))  # one number per group
        stat = stat.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
        return torch.cat([x, stat], dim=1)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """'batch' (DCGAN), 'layer' (per-sample, for critics with a gradient penalty) or 'none'."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # GroupNorm with one group normalises each sample over (C, H, W): layer norm
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}")


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every Conv2d / Linear weight inside `module` (in place; returns it)."""
    from torch.nn.utils.parametrizations import spectral_norm

    targets = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for m in targets:
        spectral_norm(m)
    return module


def top_singular_value(weight: torch.Tensor) -> float:
    """The largest singular value of a weight viewed as a matrix (out, in * kh * kw), exactly (SVD)."""
    return float(torch.linalg.matrix_norm(weight.detach().flatten(1).double(), ord=2))
