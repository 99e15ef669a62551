"""Checkpoint files: written atomically, read back with clear errors, generators rebuilt from them.

A checkpoint is a plain dict saved with torch.save and loaded with weights_only=True (so opening a
file from someone else cannot run code): model and optimiser state dicts, RNG states, the step and
the training config. `FORMAT` marks files course_lib wrote.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from .errors import CheckpointError

FORMAT = "course_lib.checkpoint/1"
REQUIRED_KEYS = ("format", "config", "step", "generator", "discriminator")


def save_atomic(obj, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file beside `path`, fsync, then rename over it.

    A crash mid-write leaves the previous file intact: readers see the old checkpoint or the new
    one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a training run's folder (its checkpoints/last.pt)."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / "checkpoints" / "last.pt"
        if not candidate.is_file():
            raise CheckpointError(f"{path} is a folder without checkpoints/last.pt; is it a course-lib training run?")
        return candidate
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and validate a course_lib checkpoint (file or run folder)."""
    path = resolve(path)
    try:
        with warnings.catch_warnings():  # torch warns before failing on foreign pickles; our error says it all
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, pickle and EOF errors all mean the same to the user
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is truncated, corrupt or not a PyTorch file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a course_lib checkpoint (no format marker {FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete: missing {', '.join(missing)}")
    return ckpt


def load_generator(path: str | os.PathLike, device="cpu", use_ema: bool = True) -> torch.nn.Module:
    """Rebuild the generator a checkpoint was trained with and load its weights (eval mode).

    When the run kept an exponential moving average of the generator (`generator_ema`), that copy
    is used unless use_ema=False: it is the one meant for evaluation.
    """
    from .models import models_from_config

    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    try:
        generator, _ = models_from_config(cfg)
        state = ckpt.get("generator_ema") if use_ema and ckpt.get("generator_ema") is not None else ckpt["generator"]
        generator.load_state_dict(state)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {resolve(path)} does not match its recorded model settings: {exc}") from exc
    return generator.to(device).eval()
