"""Callbacks: objects the trainer calls at named points of a run, with their own checkpointed state.

The lifecycle (the trainer calls each callback in list order, and times every call):

    setup(trainer)                     once, when the trainer is built: the models exist, no state is
                                       loaded yet (e.g. EMA copies the generator here)
    on_train_start(trainer)            before the first step of a `train()` call (also after a resume)
    on_step_end(trainer, metrics)      after every generator step; `trainer.step` already counts it and
                                       `metrics` holds that step's detached losses
    on_train_end(trainer)              after the last step of a `train()` call, whatever its target, before
                                       the final checkpoint is written (so what it changes is saved)
    state_dict() / load_state_dict()   saved in and restored from every checkpoint
    summary()                          a JSON-able dict that experiment reports include
    evaluation_generator()             a module to sample and evaluate instead of the raw generator
                                       (EMA), or None

A callback is registered by name with `@register_callback("name")`, so that a config can list it:
`callbacks: [{name: fid_tracker, every: 2500}]` constructs `FIDTracker(every=2500)`. A plain function
`f(trainer, metrics)` passed in `Trainer(callbacks=[f])` acts as on_step_end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from course_lib.core.errors import ConfigError
from course_lib.core.registry import registering_decorator

if TYPE_CHECKING:  # only for annotations: callbacks are called by the trainer, they do not import it
    from course_lib.training.trainer import Trainer


class Callback:
    """Base class: every hook is optional. `name` is the registry name (set by @register_callback)."""

    name: str = "callback"

    def setup(self, trainer: Trainer) -> None:
        pass

    def on_train_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, metrics: dict) -> None:
        pass

    def on_train_end(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict) -> None:
        pass

    def summary(self) -> dict:
        return {}

    def evaluation_generator(self):
        return None


class FunctionCallback(Callback):
    """A plain function f(trainer, metrics), called after every step."""

    name = "function"

    def __init__(self, function: Callable[[Trainer, dict], Any]):
        self.function = function
        self.name = getattr(function, "__name__", "function")

    def on_step_end(self, trainer, metrics):
        self.function(trainer, metrics)


CALLBACKS: dict[str, type[Callback]] = {}


register_callback = registering_decorator(CALLBACKS, "callback name")
register_callback.__doc__ = "Class decorator: make a Callback constructible from a config entry {name: ..., **kwargs}."


def check_callback_specs(specs: Any) -> None:
    """Raise ConfigError unless `specs` is a list of {name: <registered>, ...} mappings."""
    if not isinstance(specs, list) or not all(isinstance(s, dict) and "name" in s for s in specs):
        raise ConfigError(
            f"callbacks must be a list of mappings, each with a 'name' (registered: {', '.join(sorted(CALLBACKS))})"
        )
    for spec in specs:
        if spec["name"] not in CALLBACKS:
            raise ConfigError(f"unknown callback {spec['name']!r}; registered: {', '.join(sorted(CALLBACKS))}")


def build_callback(spec: dict) -> Callback:
    """The callback a config entry names, constructed with the entry's other keys."""
    check_callback_specs([spec])
    settings = {k: v for k, v in spec.items() if k != "name"}
    try:
        return CALLBACKS[spec["name"]](**settings)
    except TypeError as exc:
        raise ConfigError(f"bad settings for callback {spec['name']!r}: {exc}") from exc


def as_callback(obj: Callback | Callable) -> Callback:
    """A Callback instance as is; a plain function as its on_step_end."""
    if isinstance(obj, Callback):
        return obj
    if callable(obj):
        return FunctionCallback(obj)
    raise ConfigError(f"a callback must be a course_lib Callback or a function f(trainer, metrics), got {obj!r}")
