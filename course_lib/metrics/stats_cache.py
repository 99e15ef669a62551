"""Gaussian statistics (mean, covariance) of a feature set, and their cache on disk.

FID compares two Gaussians fitted to features. The reference side is usually a fixed dataset, so
its statistics are computed once and kept in `cache_dir()/fid_stats/`, keyed by the dataset's exact
identity (name, split, size, limit, preprocessing version, or a folder's file list), the feature
extractor and its input preprocessing (the resize mode, `resize.canonical_mode`). Files are `.npz` with `mu` and
`sigma`, the format pytorch-fid reads and writes, plus a `meta` JSON string (n, extractor identity and label,
description, protocol line); they are written atomically. `course-lib fid-stats` writes such files on request, and
every FID entry point accepts them (and pytorch-fid's own, which carry no identity) as the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.core.io import save_npz_atomic
from course_lib.core.runtime import cache_dir

from .errors import MetricInputError
from .protocol import protocol_text

CACHE_VERSION = 1


@dataclass
class Statistics:
    """mu (D,) and sigma (D, D) in float64, from n feature vectors of the named extractor."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    extractor_identity: str = ""
    extractor_label: str = ""
    description: str = ""
    protocol: str = ""  # how the features were computed (protocol.protocol_text): mode, weights, images

    def __post_init__(self):
        self.mu = np.atleast_1d(np.asarray(self.mu, dtype=np.float64))
        self.sigma = np.atleast_2d(np.asarray(self.sigma, dtype=np.float64))
        d = self.mu.shape[0]
        if self.mu.ndim != 1 or self.sigma.shape != (d, d):
            raise MetricInputError(
                f"statistics need mu of shape (D,) and sigma (D, D); got {self.mu.shape} and {self.sigma.shape}"
            )
        if not (np.isfinite(self.mu).all() and np.isfinite(self.sigma).all()):
            raise MetricInputError("statistics contain NaN or infinite values")

    @property
    def dim(self) -> int:
        return self.mu.shape[0]

    def save(self, path: str | os.PathLike) -> Path:
        """Write as .npz (mu, sigma, meta), atomically: readers never see half a file."""
        meta = json.dumps(
            {
                "n": self.n,
                "extractor_identity": self.extractor_identity,
                "extractor_label": self.extractor_label,
                "description": self.description,
                "protocol": self.protocol,
                "version": CACHE_VERSION,
            }
        )
        return save_npz_atomic(path, compressed=False, mu=self.mu, sigma=self.sigma, meta=np.array(meta))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Statistics:
        """Read our .npz files and pytorch-fid's (mu, sigma only: assumed Inception pool3 features)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise MetricInputError(f"statistics file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as f:
                if not {"mu", "sigma"} <= set(f.files):
                    raise MetricInputError(
                        f"{path} holds no FID statistics (needs arrays 'mu' and 'sigma'; has {', '.join(f.files)})"
                    )
                mu, sigma = f["mu"], f["sigma"]
                meta = json.loads(str(f["meta"])) if "meta" in f.files else {}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise MetricInputError(f"cannot read statistics from {path}: {exc}") from exc
        return cls(
            mu,
            sigma,
            int(meta.get("n", 0)),
            meta.get("extractor_identity", ""),
            meta.get("extractor_label", ""),
            meta.get("description", f"statistics from {path}"),
            meta.get("protocol", ""),
        )


def is_statistics_file(path) -> bool:
    """True for an existing .npz holding 'mu' and 'sigma'."""
    try:
        p = Path(path).expanduser()
        if p.suffix != ".npz" or not p.is_file():
            return False
        with np.load(p, allow_pickle=False) as f:
            return {"mu", "sigma"} <= set(f.files)
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile):
        return False


def gaussian_statistics(features, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and unbiased covariance (divided by n - 1, like np.cov) in float64, centred chunk by chunk."""
    import torch

    x = features.features if hasattr(features, "features") else features
    x = torch.as_tensor(x)
    if x.ndim != 2 or len(x) < 2:
        raise MetricInputError(
            f"need at least 2 feature vectors of shape (N, D) for a covariance, got {tuple(x.shape)}"
        )
    mu = x.double().mean(0)
    sigma = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    for part in x.split(chunk):
        centred = part.double() - mu
        sigma += centred.t() @ centred
    sigma /= len(x) - 1
    return mu.numpy(), sigma.numpy()


def cache_path(source_identity: str, extractor_identity: str) -> Path:
    key = hashlib.sha256(f"v{CACHE_VERSION}|{source_identity}|{extractor_identity}".encode()).hexdigest()[:24]
    return cache_dir() / "fid_stats" / f"{key}.npz"


def read_cached(path, extractor, count: int) -> Statistics | None:
    """The statistics in the cache file at `path` when they are the extractor's for `count` images; None when the
    file is missing, damaged or for other images (those are recomputed, never trusted)."""
    if path is None or not path.is_file():
        return None
    try:
        stats = Statistics.load(path)
    except MetricInputError:
        return None
    return stats if stats.extractor_identity == extractor.identity and stats.n == count else None


def cached_statistics(
    source, extractor, batch_size: int | None = None, progress: bool = True, use_cache: bool = True
) -> Statistics:
    """Statistics of an ImageSource under an extractor, from the cache when the source can be named."""
    from .features import extract_from_source

    path = cache_path(source.identity, extractor.identity) if (use_cache and source.identity) else None
    cached = read_cached(path, extractor, source.count)
    if cached is not None:
        return cached
    feats = extract_from_source(source, extractor, want_logits=False, batch_size=batch_size, progress=progress)
    mu, sigma = gaussian_statistics(feats)
    protocol = protocol_text(extractor, None, source.description, len(feats))
    stats = Statistics(mu, sigma, len(feats), extractor.identity, extractor.label, source.description, protocol)
    if path is not None:
        stats.save(path)
    return stats
