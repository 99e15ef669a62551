"""The notebook exercises' checks, registered once: reference, test cases and common-mistake models.

A check cell in a notebook is one line, ``check("my_receptive_field")`` (`course_lib.course.exercises.check`),
and shows the student nothing that hints at the answer: the cases it runs, the reference it compares with and
the wrong implementations it recognises ("mistake models", each with the hint printed when the student's
result equals its result) live here, one module per notebook (``notebook_13.py`` for notebook 13, ...).

An `Exercise` builds its cases on demand (`cases()`), so a check run in a fresh kernel needs nothing the
notebook defined. `get(name)` imports only the module that holds the exercise, so notebook 01's check does
not import torch. tests/test_exercise_bank.py feeds each mistake in as a student would make it and asserts
its hint, and checks that this index lists every registered exercise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from course_lib.core.errors import CourseLibError

# exercise name -> the module that registers it (its notebook); tests/test_exercise_bank.py keeps this complete
INDEX = {
    "my_generator_grad": "notebook_01",
    "my_optimal_discriminator": "notebook_02",
    "my_js_divergence": "notebook_02",
    "my_plan_cost": "notebook_03",
    "my_wasserstein_samples": "notebook_03",
    "my_high_quality_fraction": "notebook_04",
    "my_gradient_penalty": "notebook_04",
    "my_discriminator_loss": "notebook_05",
    "my_transposed_size": "notebook_06",
    "mmd2": "notebook_07",
    "my_precision": "notebook_07",
    "my_smoothed_discriminator_loss": "notebook_08",
    "ignored_fraction": "notebook_10",
    "my_interpolate_states": "notebook_11",
    "my_label_maps": "notebook_12",
    "my_receptive_field": "notebook_13",
    "my_cycle_loss": "notebook_13",
    "my_modulated_conv": "notebook_14",
    "my_mix": "notebook_14",
}


@dataclass(frozen=True)
class Exercise:
    """One checked exercise.

    name: the function the student writes (and the check cell names).
    reference: the right answer, run on the same inputs as the student's function.
    cases: builds the inputs, a list of tuples (positional args) or dicts (keyword args).
    mistakes: {hint: mistake model}; the hint is printed when the student's result equals the model's.
    error_hints: {hint: predicate(exception, args, kwargs)}; the hint is printed when the student's function
        raised on a case and the predicate holds (a slip that fails with an error instead of a wrong value).
    adapt: turns the student's function into what is compared (e.g. runs it inside a model), or None.
    fallback: what the rest of the notebook uses while the exercise is not done.
    """

    name: str
    reference: Callable
    cases: Callable[[], list]
    mistakes: Mapping[str, Callable] = field(default_factory=dict)
    error_hints: Mapping[str, Callable[[BaseException, tuple, dict], bool]] = field(default_factory=dict)
    adapt: Callable[[Callable], Callable] | None = None
    rtol: float = 1e-5
    atol: float = 1e-8
    fallback: str | None = None
    notebook: str = ""


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise (called by the notebook modules when they are imported)."""
    if exercise.name in _REGISTRY:
        raise CourseLibError(f"exercise {exercise.name!r} is registered twice")
    _REGISTRY[exercise.name] = exercise
    return exercise


def get(name: str) -> Exercise:
    """The exercise called `name`; a clear error naming the known ones for any other name."""
    if name not in _REGISTRY:
        module = INDEX.get(name)
        if module is None:
            raise CourseLibError(f"no exercise called {name!r}; the exercises are: {', '.join(sorted(INDEX))}")
        importlib.import_module(f"{__name__}.{module}")
    if name not in _REGISTRY:
        raise CourseLibError(f"{__name__}.{INDEX[name]} does not register the exercise {name!r}")
    return _REGISTRY[name]


def all_exercises() -> dict[str, Exercise]:
    """Every exercise of every notebook (imports all the notebook modules)."""
    for module in sorted(set(INDEX.values())):
        importlib.import_module(f"{__name__}.{module}")
    return dict(_REGISTRY)
