"""Where things are and what this machine can do: fast mode, data root, device choice."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from course_lib.core.errors import ConfigError

FAST_ENV = "COURSE_LIB_FAST"
DATA_ENV = "COURSE_LIB_DATA"
CACHE_ENV = "COURSE_LIB_CACHE"
# Files shipped inside the package (embedded MNIST, classifier, pretrained generators).
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
# The source checkout (only meaningful for an editable install: notebooks, runs/, ../shared).
REPO_ROOT = Path(__file__).resolve().parents[2]


def fast_mode() -> bool:
    """True when COURSE_LIB_FAST is set to a true value: notebooks and examples shrink for CI."""
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets live in: the argument, else $COURSE_LIB_DATA, else ~/.cache/course_lib/data."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path.home() / ".cache" / "course_lib" / "data"


def cache_dir() -> Path:
    """Where preprocessed arrays and statistics are cached: $COURSE_LIB_CACHE or ~/.cache/course_lib."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def pick_device(name: str | None = "auto") -> torch.device:
    """Resolve 'auto' to CUDA, then MPS, then CPU; validate an explicit name."""
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} asked for, but MPS is not available on this machine; use --device cpu")
    return device


def shared_data_dir() -> Path | None:
    """The course's shared real-data folder (../shared/data beside the repository) when present.

    Only development machines and CI have it; tests that need it skip when this returns None.
    """
    candidate = REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None
