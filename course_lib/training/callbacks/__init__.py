"""Callbacks: objects the trainer calls at named points of a run (see `base`). Importing this package
registers every callback course_lib ships, so a config can name them."""

from course_lib.training.callbacks import (  # noqa: F401 - they register
    diversity_controller,
    ema,
    fid_tracker,
    progressive,
    tensorboard,
)
from course_lib.training.callbacks.base import (
    CALLBACKS,
    Callback,
    FunctionCallback,
    as_callback,
    build_callback,
    check_callback_specs,
    register_callback,
)
from course_lib.training.callbacks.ema import GeneratorEMA


def callbacks_from_config(config) -> list[Callback]:
    """The callbacks a TrainConfig lists (`callbacks`), in order."""
    return [build_callback(spec) for spec in config.callbacks]


__all__ = [
    "CALLBACKS",
    "Callback",
    "FunctionCallback",
    "as_callback",
    "build_callback",
    "check_callback_specs",
    "register_callback",
    "callbacks_from_config",
    "GeneratorEMA",
]
