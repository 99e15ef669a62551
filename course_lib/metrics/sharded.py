"""Feature extraction split across the ranks of a torch.distributed job, for FID/KID/IS/precision-recall.

Each rank extracts the features of one contiguous share of the images (rank r: images r*ceil(N/W) ..), the
shares are gathered with `all_gather` (padded to equal length, the padding dropped) and concatenated in the
original order, so every rank holds the FeatureSet one process would have computed, and any metric computed from
it (`fid(features_a, features_b)`, ...) is the single-process number. Outside a process group (or at world
size 1) it is `extract_features` itself.

    fake = sharded_features(samples, "pixels")      # on every rank of `torchrun --nproc-per-node N`
    real = sharded_features(reference, "pixels")
    score = fid(fake, real)

`metrics.GeneratorEvaluator` (and so the FID tracker and the experiment runner) shards through the pieces below
whenever a process group of more than one rank is running: every rank generates and extracts only its share of
the samples (`share_bounds`, `gather_rows`), the reference's features are extracted in shares too
(`sharded_source_features`), and uncached reference statistics are computed from sharded features and written
to the statistics cache by rank 0 alone (`sharded_statistics`). Every rank must therefore make the same
evaluation calls, in the same order (they meet in collectives).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch

from .errors import MetricInputError
from .features import FeatureSet, extract_features, extract_from_source
from .inputs import ImageSource
from .protocol import protocol_text
from .stats_cache import Statistics, cache_path, gaussian_statistics, read_cached


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the running process group, (0, 1) outside one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def share_bounds(total: int) -> tuple[int, int]:
    """This rank's rows start..stop of `total` (contiguous shares of ceil(total / world); the last ones may be
    short or empty)."""
    rank, world = rank_and_world()
    share = math.ceil(total / world)
    return min(rank * share, total), min((rank + 1) * share, total)


def gather_rows(local: torch.Tensor, total: int) -> torch.Tensor:
    """Every rank's share of `total` rows (this rank's: `local`, its `share_bounds(total)` rows), concatenated in
    rank order, on every rank: the tensor one process would hold. Returned on `local`'s device."""
    _, world = rank_and_world()
    if world == 1:
        return local
    share = math.ceil(total / world)
    # gloo gathers CPU tensors and NCCL CUDA ones: gather where the backend wants them.
    nccl = torch.distributed.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    padded = torch.zeros((share, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: len(local)] = local.detach().to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat(parts)[:total].to(local.device)


def any_rank(flag: bool) -> bool:
    """Whether `flag` is true on any rank (every rank gets the same answer; `flag` itself outside a group)."""
    _, world = rank_and_world()
    if world == 1:
        return flag
    nccl = torch.distributed.get_backend() == "nccl"
    value = torch.tensor([float(flag)], device=torch.device("cuda", torch.cuda.current_device()) if nccl else None)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def gather_feature_set(local: FeatureSet, keep: int, total: int, labels: torch.Tensor | None = None) -> FeatureSet:
    """The FeatureSet of all `total` images from each rank's first `keep` rows of `local` (its share).
    `labels`: the whole set's labels when the caller has them (else the shares' labels are gathered)."""
    logits = None if local.logits is None else gather_rows(local.logits[:keep], total)
    if labels is None and local.labels is not None:
        labels = gather_rows(local.labels[:keep], total)
    return dataclasses.replace(local, features=gather_rows(local.features[:keep], total), logits=logits, labels=labels)


def sharded_features(images: Any, extractor="inception", **options) -> FeatureSet:
    """`extract_features(images, extractor, **options)` with the images split across the ranks and the
    features (and logits, labels) gathered on every rank, in the images' order. `images`: a tensor or array of
    images (anything sliceable along its first axis that `extract_features` accepts)."""
    _, world = rank_and_world()
    if world == 1:
        return extract_features(images, extractor, **options)
    total = len(images)
    start, stop = share_bounds(total)
    # A rank whose share is empty still extracts one image, so it knows the feature width; its row is dropped.
    local = extract_features(images[start:stop] if stop > start else images[:1], extractor, **options)
    return gather_feature_set(local, stop - start, total)


class _ShareOfSource(ImageSource):
    """Images start..stop of another source's stream, in batches of the asked size. Every rank reads the source
    up to its share (a folder's files are decoded, not extracted, before it): the extraction is what is shared."""

    def __init__(self, source: ImageSource, start: int, stop: int):
        self.source, self.start, self.stop = source, start, stop
        self.count = stop - start
        self.description, self.identity = source.description, None

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        seen, pending = 0, []
        for batch in self.source.batches(batch_size):
            lo, hi = max(self.start - seen, 0), min(self.stop - seen, len(batch))
            seen += len(batch)
            if hi > lo:
                pending.append(batch[lo:hi])
                while sum(len(p) for p in pending) >= batch_size:
                    joined = torch.cat(pending)
                    yield joined[:batch_size]
                    pending = [joined[batch_size:]] if len(joined) > batch_size else []
            if seen >= self.stop:
                break
        if pending:
            yield torch.cat(pending)


def sharded_source_features(
    source: ImageSource, extractor, *, want_logits: bool = True, batch_size: int | None = None, progress: bool = False
) -> FeatureSet:
    """`features.extract_from_source` with the source's images split across the ranks (features gathered in
    order, on every rank). Outside a process group it is `extract_from_source` itself."""
    _, world = rank_and_world()
    if world == 1:
        return extract_from_source(source, extractor, want_logits=want_logits, batch_size=batch_size, progress=progress)
    total = source.count
    if total < 1:
        raise MetricInputError(f"{source.description}: no images")
    start, stop = share_bounds(total)
    progress = progress and rank_and_world()[0] == 0  # one bar, rank 0's
    share = _ShareOfSource(source, start, stop) if stop > start else _ShareOfSource(source, 0, 1)
    local = extract_from_source(share, extractor, want_logits=want_logits, batch_size=batch_size, progress=progress)
    gathered = gather_feature_set(local, stop - start, total, labels=source.labels)
    return dataclasses.replace(gathered, description=source.description)


def sharded_statistics(
    source: ImageSource, extractor, *, batch_size: int | None = None, progress: bool = False, use_cache: bool = True
) -> Statistics:
    """`stats_cache.cached_statistics` under a process group: taken from the cache when every rank finds it there
    (machines need not share a file system), else computed from sharded features, and written to the cache by
    rank 0 alone."""
    rank, _ = rank_and_world()
    path = cache_path(source.identity, extractor.identity) if (use_cache and source.identity) else None
    cached = read_cached(path, extractor, source.count)
    if not any_rank(cached is None):
        return cached
    features = sharded_source_features(source, extractor, want_logits=False, batch_size=batch_size, progress=progress)
    mu, sigma = gaussian_statistics(features)
    protocol = protocol_text(extractor, None, source.description, len(features))
    stats = Statistics(mu, sigma, len(features), extractor.identity, extractor.label, source.description, protocol)
    if path is not None and rank == 0:
        stats.save(path)
    return stats
