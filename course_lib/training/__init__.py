"""The trainer and what it is built from: config, loss terms, callbacks, presets, speed settings, checkpoints.
Imports `core`, `data`, `nn`, `metrics`."""

from course_lib.training.config import TrainConfig, read_settings, steps_for_epochs
from course_lib.training.trainer import Trainer

__all__ = ["Trainer", "TrainConfig", "read_settings", "steps_for_epochs"]
