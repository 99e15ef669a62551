"""Callbacks: objects the trainer calls at named points of a run, with their own checkpointed state.

The lifecycle (the trainer calls each callback in list order, and times every call):

    setup(ctx)                         once, when the trainer is built: the models exist, no state is
                                       loaded yet (e.g. EMA copies the generator here)
    on_train_start(ctx)                before the first step of a `train()` call (also after a resume)
    on_step_end(ctx, metrics)          after every generator step; `ctx.step` already counts it and
                                       `metrics` holds that step's detached losses
    on_log(ctx, row)                   after each log row (every run.log_every steps and at the last step):
                                       `row` is the row of log.jsonl, floats averaged over the interval
    on_train_end(ctx)                  after the last step of a `train()` call, whatever its target, before
                                       the final checkpoint is written (so what it changes is saved)
    state_dict() / load_state_dict()   saved in and restored from every checkpoint
    summary()                          a JSON-able dict that experiment reports include
    evaluation_generator()             a module to sample and evaluate instead of the raw generator
                                       (EMA), or None

`ctx` is the run's `StepContext` (course_lib.training.context), not the trainer. A callback is
registered by name with `@register_callback("name")`, so that a config can list it:
`callbacks: [{name: fid_tracker, every: 2500}]` constructs `FIDTracker(every=2500)`; a class in the
user's own module is named `module.path:ClassName`. A plain function `f(ctx, metrics)` passed in
`Trainer(callbacks=[f])` acts as on_step_end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from course_lib.core.errors import ConfigError
from course_lib.core.registry import Registry

if TYPE_CHECKING:  # only for annotations
    from course_lib.training.context import StepContext


class Callback:
    """Base class: every hook is optional. `name` is the registry name (set by @register_callback)."""

    name: str = "callback"

    def setup(self, ctx: StepContext) -> None:
        pass

    def on_train_start(self, ctx: StepContext) -> None:
        pass

    def on_step_end(self, ctx: StepContext, metrics: dict) -> None:
        pass

    def on_log(self, ctx: StepContext, row: dict) -> None:
        pass

    def on_train_end(self, ctx: StepContext) -> None:
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
    """A plain function f(ctx, metrics), called after every step."""

    name = "function"

    def __init__(self, function: Callable[[StepContext, dict], Any]):
        self.function = function
        self.name = getattr(function, "__name__", "function")

    def on_step_end(self, ctx, metrics):
        self.function(ctx, metrics)


CALLBACKS = Registry("callback", base=Callback)


def register_callback(name: str):
    """Class decorator: make a Callback constructible from a config entry {name: ..., **kwargs}."""
    return CALLBACKS.register(name)


def check_callback_specs(specs: Any) -> None:
    """Raise ConfigError unless `specs` is a list of {name: <registered or module:Class>, ...} mappings whose
    settings build a callback (built once here, so a typo fails when the config is read)."""
    if not isinstance(specs, list) or not all(isinstance(s, dict) and "name" in s for s in specs):
        raise ConfigError(
            f"callbacks must be a list of mappings, each with a 'name' (registered: {', '.join(sorted(CALLBACKS))})"
        )
    for spec in specs:
        build_callback(spec)


def build_callback(spec: dict) -> Callback:
    """The callback a config entry names, constructed with the entry's other keys."""
    try:
        return CALLBACKS.build(spec)
    except ValueError as exc:  # a callback's own check of its settings
        raise ConfigError(f"callback {spec['name']!r}: {exc}") from exc


def as_callback(obj: Callback | Callable) -> Callback:
    """A Callback instance as is; a plain function as its on_step_end."""
    if isinstance(obj, Callback):
        return obj
    if callable(obj):
        return FunctionCallback(obj)
    raise ConfigError(f"a callback must be a course_lib Callback or a function f(ctx, metrics), got {obj!r}")
