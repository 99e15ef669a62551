"""Feature extraction split across the ranks of a torch.distributed job, for FID/KID/IS/precision-recall.

Each rank extracts the features of one contiguous share of the images (rank r: images r*ceil(N/W) ..), the
shares are gathered with `all_gather` (padded to equal length, the padding dropped) and concatenated in the
original order, so every rank holds the FeatureSet one process would have computed, and any metric computed from
it (`fid(features_a, features_b)`, ...) is the single-process number. Outside a process group (or at world
size 1) it is `extract_features` itself.

    fake = sharded_features(samples, "pixels")      # on every rank of `torchrun --nproc-per-node N`
    real = sharded_features(reference, "pixels")
    score = fid(fake, real)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .features import FeatureSet, extract_features


def _rank_and_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather_rows(local: torch.Tensor, total: int, share: int) -> torch.Tensor:
    """Every rank's rows (each padded to `share`), concatenated in rank order, cut to `total` rows."""
    _, world = _rank_and_world()
    # gloo gathers CPU tensors and NCCL CUDA ones: gather where the backend wants them, return on the CPU.
    device = torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" else None
    padded = torch.zeros((share, *local.shape[1:]), dtype=local.dtype)
    padded[: len(local)] = local
    padded = padded.to(device) if device is not None else padded
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([p.cpu() for p in parts])[:total]


def sharded_features(images: Any, extractor="inception", **options) -> FeatureSet:
    """`extract_features(images, extractor, **options)` with the images split across the ranks and the
    features (and logits, labels) gathered on every rank, in the images' order. `images`: a tensor or array of
    images (anything sliceable along its first axis that `extract_features` accepts)."""
    rank, world = _rank_and_world()
    if world == 1:
        return extract_features(images, extractor, **options)
    total = len(images)
    share = math.ceil(total / world)
    start, stop = min(rank * share, total), min((rank + 1) * share, total)
    # A rank whose share is empty still extracts one image, so it knows the feature width; its row is dropped.
    local = extract_features(images[start:stop] if stop > start else images[:1], extractor, **options)
    keep = stop - start
    features = _gather_rows(local.features[:keep], total, share)
    logits = None if local.logits is None else _gather_rows(local.logits[:keep], total, share)
    labels = None if local.labels is None else _gather_rows(local.labels[:keep], total, share)
    return FeatureSet(
        features,
        logits,
        local.extractor,
        local.extractor_label,
        local.extractor_identity,
        local.comparable_with_inception,
        local.description,
        labels,
    )
