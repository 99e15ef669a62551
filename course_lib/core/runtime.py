"""Where things are and what this machine can do: fast mode, data root, device choice."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import torch

from course_lib.core.errors import ConfigError

FAST_ENV = "COURSE_LIB_FAST"
DATA_ENV = "COURSE_LIB_DATA"
CACHE_ENV = "COURSE_LIB_CACHE"
RUNS_ENV = "COURSE_LIB_RUNS"
SHARED_DATA_ENV = "COURSE_LIB_SHARED_DATA"
APP_NAME = "course_lib"
# Files shipped inside the package (embedded MNIST, classifier, pretrained generators).
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


def fast_mode() -> bool:
    """True when COURSE_LIB_FAST is set to a true value: notebooks and examples shrink for CI."""
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _user_cache_root() -> Path:
    """The platform's cache folder for the course (platformdirs): ~/.cache/course_lib on Linux (or
    $XDG_CACHE_HOME/course_lib), ~/Library/Caches/course_lib on macOS, %LOCALAPPDATA%\\course_lib\\Cache on Windows."""
    return platformdirs.user_cache_path(APP_NAME, appauthor=False)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets live in: the argument, else $COURSE_LIB_DATA, else `data` in the platform's cache
    folder (~/.cache/course_lib/data on Linux): datasets can always be fetched again."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return _user_cache_root() / "data"


def cache_dir() -> Path:
    """Where preprocessed arrays and statistics are cached: $COURSE_LIB_CACHE, else the platform's cache
    folder (~/.cache/course_lib on Linux)."""
    path = Path(os.environ.get(CACHE_ENV) or _user_cache_root()).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_root() -> Path:
    """Where the notebooks keep runs that other notebooks read (notebook 09's CelebA run, read by 10):
    $COURSE_LIB_RUNS, else `runs` in the platform's user-data folder (~/.local/share/course_lib/runs on Linux),
    so the run is found whichever folder a notebook was opened from. Not created here."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser()
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / "runs"


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


def shared_data_dir(start: str | os.PathLike | None = None) -> Path | None:
    """The course machines' shared real-data folder when present: $COURSE_LIB_SHARED_DATA, else a `shared/data`
    folder beside the working directory (`start`) or one of its three nearest parents (on development and CI
    machines the course folder sits beside `shared/`, and notebooks run one level further down).

    Only development machines and CI have it; tests that need it skip when this returns None. The package's own
    location plays no part, so an installed course_lib behaves the same wherever it is installed.
    """
    if os.environ.get(SHARED_DATA_ENV):
        candidate = Path(os.environ[SHARED_DATA_ENV]).expanduser()
        return candidate if candidate.is_dir() else None
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in [here, *here.parents][:4]:
        candidate = folder / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None
