"""Checkpoint files: written atomically, read back with clear errors, generators rebuilt from them.

A checkpoint is a plain dict saved with torch.save and loaded with weights_only=True (so opening a
file from someone else cannot run code): model and optimiser state dicts, RNG states, the step and
the training config. `FORMAT` marks files course_lib wrote.

Format 3 holds the sectioned config (`course_lib.training.config`, with data.image_size the size it
trained at) and `channels`; the state of loss terms (`terms`, by name) and callbacks (`callbacks`, a
list of {name, state}); `evaluation_generator` is the index of the callback (the EMA) whose
state["module"] is the generator to sample from. Older files are upgraded when read, so old runs
resume exactly and old generators (the shipped mnist-dcgan and celeba-dcgan) load: format 1 (before
loss terms and callbacks) gets format 2's layout, and the flat config of formats 1 and 2 is
translated into sections once (`course_lib.training.legacy`, with a one-line note).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from course_lib.core.errors import CheckpointError, CourseLibError
from course_lib.core.io import save_torch_atomic
from course_lib.nn.models import models_from_config
from course_lib.training.config import TrainConfig, model_settings

FORMAT = "course_lib.checkpoint/3"
FORMAT_2 = "course_lib.checkpoint/2"
FORMAT_1 = "course_lib.checkpoint/1"
FORMATS = (FORMAT, FORMAT_2, FORMAT_1)
REQUIRED_KEYS = ("format", "config", "step", "generator", "discriminator")


def save_atomic(obj, path: str | os.PathLike) -> Path:
    """torch.save, atomically (see course_lib.core.io): a crash mid-write leaves the previous file intact."""
    return save_torch_atomic(obj, path)


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
    if not isinstance(ckpt, dict) or ckpt.get("format") not in FORMATS:
        raise CheckpointError(f"{path} is a PyTorch file but not a course_lib checkpoint (no format marker {FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete: missing {', '.join(missing)}")
    if ckpt["format"] == FORMAT_1:
        ckpt = upgrade(ckpt)
    if ckpt["format"] == FORMAT_2:
        ckpt = upgrade_config(ckpt, str(path))
    return ckpt


def upgrade_config(ckpt: dict, source: str) -> dict:
    """A format-2 checkpoint in format 3: its flat config in sections (`channels` kept beside it)."""
    ckpt = dict(ckpt)
    flat = dict(ckpt["config"])
    ckpt["channels"] = flat.pop("channels", None)
    try:
        ckpt["config"] = TrainConfig.from_dict(flat, source=source).to_dict()
    except CourseLibError as exc:
        raise CheckpointError(f"checkpoint {source} holds unusable settings: {exc}") from exc
    ckpt["format"] = FORMAT
    return ckpt


def upgrade(ckpt: dict) -> dict:
    """A format-1 checkpoint in format 2: the EMA, historical averages, instance-noise factor and hook
    states move to `callbacks` and `terms`, and the config's `hooks` become `callbacks`."""
    ckpt = dict(ckpt)
    config = dict(ckpt["config"])
    hook_specs = config.pop("hooks", None) or []
    config["callbacks"] = hook_specs
    ckpt["config"] = config
    callbacks, evaluation = [], None
    if ckpt.get("generator_ema") is not None:
        callbacks.append(
            {"name": "ema", "state": {"module": ckpt["generator_ema"], "updates": ckpt.get("ema_updates", 0)}}
        )
        evaluation = 0
    for spec, state in zip(hook_specs, ckpt.get("hooks") or []):
        callbacks.append({"name": spec["name"], "state": state})
    terms = {}
    if ckpt.get("historical_average") is not None:
        g, d = ckpt["historical_average"]
        terms["historical_averaging"] = {"generator": g, "discriminator": d}
    if "instance_noise_factor" in ckpt:
        terms["instance_noise"] = {"factor": float(ckpt["instance_noise_factor"])}
    for old in ("generator_ema", "ema_updates", "hooks", "historical_average", "instance_noise_factor"):
        ckpt.pop(old, None)
    ckpt.update(format=FORMAT_2, callbacks=callbacks, terms=terms, evaluation_generator=evaluation)
    return ckpt


def evaluation_generator_state(ckpt: dict, use_ema: bool = True) -> dict:
    """The generator weights to sample from: the EMA callback's copy when the run kept one (and use_ema)."""
    index = ckpt.get("evaluation_generator")
    if use_ema and index is not None:
        return ckpt["callbacks"][index]["state"]["module"]
    return ckpt["generator"]


def load_generator(path: str | os.PathLike, device="cpu", use_ema: bool = True) -> torch.nn.Module:
    """Rebuild the generator a checkpoint was trained with and load its weights (eval mode).

    When the run kept an exponential moving average of the generator (the `ema` callback), that copy
    is used unless use_ema=False: it is the one meant for evaluation.
    """
    ckpt = load_checkpoint(path)
    config = TrainConfig.from_dict(ckpt["config"])
    try:
        generator, _ = models_from_config(model_settings(config, config.data.image_size, ckpt["channels"]))
        generator.load_state_dict(evaluation_generator_state(ckpt, use_ema))
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {resolve(path)} does not match its recorded model settings: {exc}") from exc
    return generator.to(device).eval()
