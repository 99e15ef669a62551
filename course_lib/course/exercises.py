"""Checking a student's exercise function against course_lib's reference implementation.

Notebook exercises follow one pattern: the student fills in a function, then a check cell runs

    from course_lib.course.exercises import check

    check("my_receptive_field")

which finds the student's function of that name in the notebook, looks the exercise up in
`course_lib.course.exercise_bank` (its reference, its test cases and its common-mistake models, kept out of the
notebook so that the check cell does not show the answer), runs student and reference on the same inputs (each
on its own copy) and prints one of three verdicts:

- ``RIGHT``: every case matches the reference;
- ``NOT DONE YET``: the function still raises ``NotImplementedError`` (the blank student edition), or is not
  defined at all (a kernel restarted since its cell ran: the message says to run the cells above); the rest of
  the notebook goes on with course_lib's reference implementation, so "Run all" still reaches the end;
- ``WRONG``: one line per failing case, naming the case's inputs (shapes and a short repr), with hints for the
  common mistakes that fit what the function returned (a flipped sign, a sum where the formula takes a mean,
  nan from 0 log 0, a reduction over the wrong axis, a missing ``return``, a tensor where a float is expected)
  and for the exercise's own mistake models.

`check_against(student, reference, cases, mistakes=...)` is the same check with everything spelled out (for
tests and new exercises). The result is truthy only for RIGHT, so ``assert check(...)`` works in graded
notebooks. A strict mode raises `ExerciseError` instead of printing a failure: ``strict="wrong"`` raises on a
wrong answer but lets an unfinished exercise pass (what CI runs over both editions of the notebooks),
``strict=True`` raises on anything but RIGHT (grading). Without an explicit ``strict`` the environment variable
``COURSE_LIB_STRICT_CHECKS`` decides (unset or ``0``: off, ``wrong``, ``1``).
"""

from __future__ import annotations

import copy
import inspect
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from course_lib.core.errors import CourseLibError
from course_lib.course import exercise_bank

STRICT_ENV = "COURSE_LIB_STRICT_CHECKS"
RIGHT, WRONG, NOT_DONE = "right", "wrong", "not done"
REFERENCE = "course_lib's reference implementation"


class ExerciseError(CourseLibError):
    """A checked exercise is wrong (or, in full strict mode, not done)."""


@dataclass
class CheckResult:
    """What `check` found: the verdict, and one message (with its hints) per failing case."""

    name: str
    status: str
    cases: int
    failures: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.status == RIGHT

    def _ipython_display_(self) -> None:
        """Shown as the last value of a cell: nothing, the verdict is already printed."""


# ----------------------------------------------------------------------------------- comparing values
def _is_tensor(value: Any) -> bool:
    return hasattr(value, "detach") and hasattr(value, "cpu")


def _as_array(value: Any) -> np.ndarray:
    if _is_tensor(value):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _is_float_like(value: Any) -> bool:
    """A plain number (what an exercise asking for "a float" should return)."""
    return isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool)


def _short(a: np.ndarray) -> str:
    if a.ndim == 0:
        return f"{float(a):.6g}"
    return np.array2string(a, precision=4, threshold=6)


def _input_sizes(args: tuple, kwargs: dict) -> set[int]:
    """Lengths that occur in the inputs (array sizes and dimensions): the factors a mean/sum mix-up gives."""
    sizes = set()
    for value in (*args, *kwargs.values()):
        if _is_tensor(value) or isinstance(value, np.ndarray):
            shape = tuple(value.shape)
            sizes.update(int(s) for s in shape)
            sizes.add(int(np.prod(shape)) if shape else 1)
    return {s for s in sizes if s > 1}


def _generic_hints(got: Any, want: Any, args: tuple, kwargs: dict) -> tuple[str, list[str]]:
    """(what differs, hints) for a result that does not match; ("", []) when it matches."""
    if got is None:
        return "returned None", ["your function returns nothing: is the `return` statement missing?"]
    try:
        g, w = _as_array(got), _as_array(want)
    except (TypeError, ValueError):
        return f"got {got!r}, expected {want!r}", [f"expected a {type(want).__name__}, got a {type(got).__name__}"]
    if g.shape != w.shape:
        hints = []
        if g.ndim == w.ndim == 2 and g.shape == w.shape[::-1]:
            hints.append("the result is transposed: check the order of the matrix dimensions")
        elif g.size != w.size and (g.ndim >= 1 or w.ndim >= 1):
            hints.append(
                "check the axis you reduce over (e.g. axis=0 averages over samples, axis=1 over "
                "features or classes) and whether you reduce at all"
            )
        if w.ndim == 0 and g.size == 1:
            hints.append("return a number, not an array holding one (float(...) or .item())")
        return f"shape {g.shape}, expected {w.shape}", hints
    finite_want = np.isfinite(w)
    if np.any(np.isnan(g) & finite_want):
        return (
            f"got {_short(g)}, expected {_short(w)}",
            [
                "nan where a number is expected: a 0·log 0 or 0/0 somewhere? Terms with probability 0 "
                "contribute 0 (mask them out, e.g. with np.where, before taking the log)"
            ],
        )
    if np.any(np.isinf(g) & finite_want):
        return (
            f"got {_short(g)}, expected {_short(w)}",
            ["infinity where a number is expected: a log of 0 or a division by 0?"],
        )
    what = f"got {_short(g)}, expected {_short(w)}"
    if g.size > 1:
        what = f"values differ (max abs difference {np.max(np.abs(g - w)):.3g}); " + what
    hints = []
    nonzero = np.abs(w) > 1e-12
    if nonzero.any() and np.allclose(g, -w, rtol=1e-5, atol=1e-9):
        hints.append(
            "the sign is flipped: check the sign of your result (a loss is minimised, a log-likelihood maximised)"
        )
    elif nonzero.any() and np.all(np.abs(g[~nonzero]) <= 1e-12):
        ratios = g[nonzero] / w[nonzero]
        ratio = float(np.median(ratios))
        if np.allclose(ratios, ratio, rtol=1e-5) and abs(ratio) > 1e-12 and not np.isclose(ratio, 1.0):
            sizes = _input_sizes(args, kwargs)
            big, small = ratio if abs(ratio) >= 1 else 1 / ratio, "too large" if abs(ratio) >= 1 else "too small"
            if any(np.isclose(abs(big), s, rtol=1e-6) for s in sizes):
                hints.append(
                    f"your result is {round(abs(big))}x {small}: a sum where the formula takes a mean "
                    "(or the other way round)?"
                )
            elif nonzero.sum() == 1 and not np.isclose(big, round(big), rtol=1e-6):
                pass  # one number off by an arbitrary factor says nothing about the cause
            else:
                hints.append(
                    f"your result is off by a constant factor {ratio:.4g}: a missing or extra constant "
                    "(1/2, 2, a normalisation)?"
                )
    return what, hints


def _compare(got: Any, want: Any, args: tuple, kwargs: dict, rtol: float, atol: float) -> tuple[bool, str, list[str]]:
    """(equal?, what differs, generic hints)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return (
                False,
                f"returned {'None' if got is None else 'a ' + type(got).__name__}, expected a dict",
                ["return a dict with the same keys as the input"]
                if got is not None
                else ["your function returns nothing: is the `return` statement missing?"],
            )
        if set(got) != set(want):
            return False, f"keys {sorted(got)}, expected {sorted(want)}", []
        for key in want:
            ok, why, hints = _compare(got[key], want[key], args, kwargs, rtol, atol)
            if not ok:
                return False, f"entry {key!r}: {why}", hints
        return True, "", []
    if isinstance(want, (tuple, list)) and isinstance(got, (tuple, list)):
        if len(got) != len(want):
            return False, f"returned {len(got)} values, expected {len(want)}", []
        for i, (g, w) in enumerate(zip(got, want)):
            ok, why, hints = _compare(g, w, args, kwargs, rtol, atol)
            if not ok:
                return False, f"item {i}: {why}", hints
        return True, "", []
    if got is None and want is not None:
        return (False, *_generic_hints(got, want, args, kwargs))
    try:
        g, w = _as_array(got), _as_array(want)
    except (TypeError, ValueError):
        same = bool(got == want)
        return same, "" if same else f"got {got!r}, expected {want!r}", []
    if g.shape == w.shape and np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        if _is_float_like(want) and not _is_float_like(got):
            kind = "torch tensor" if _is_tensor(got) else type(got).__name__
            return (
                False,
                f"returned a {kind} holding the right value where a float is expected",
                ["convert the result with float(...) (or .item() for a tensor)"],
            )
        return True, "", []
    return (False, *_generic_hints(got, want, args, kwargs))


def _matches(got: Any, mistaken: Any, rtol: float, atol: float) -> bool:
    try:
        if isinstance(mistaken, dict) and isinstance(got, dict):
            return set(got) == set(mistaken) and all(_matches(got[k], mistaken[k], rtol, atol) for k in mistaken)
        if isinstance(mistaken, (tuple, list)) and isinstance(got, (tuple, list)):
            return len(got) == len(mistaken) and all(_matches(g, m, rtol, atol) for g, m in zip(got, mistaken))
        g, m = _as_array(got), _as_array(mistaken)
        return g.shape == m.shape and bool(np.allclose(g, m, rtol=rtol, atol=atol, equal_nan=True))
    except (TypeError, ValueError):
        return False


def _specific_hints(
    got: Any, mistakes: Mapping[str, Callable], args: tuple, kwargs: dict, rtol: float, atol: float
) -> list[str]:
    """The messages of the listed mistakes whose (mistaken) result equals what the student returned."""
    hints = []
    for message, mistaken_fn in mistakes.items():
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):  # a mistake's nan or inf is the student's
                warnings.simplefilter("ignore")
                mistaken = mistaken_fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        except Exception:  # noqa: BLE001 - a mistake that cannot be computed on this case simply does not match
            continue
        if mistaken is not None and _matches(got, mistaken, rtol, atol):
            hints.append(message)
    return hints


# ----------------------------------------------------------------------------------------- the check
def _strictness(strict: bool | str | None) -> str:
    """'off', 'wrong' (raise on wrong answers) or 'all' (raise unless right)."""
    if strict is None:
        strict = os.environ.get(STRICT_ENV, "").strip().lower() or False
    if strict in (False, "0", "off", "false", "no"):
        return "off"
    if strict == "wrong":
        return "wrong"
    if strict in (True, "1", "all", "true", "yes", "on"):
        return "all"
    raise ValueError(f"strict must be False, 'wrong' or True (or ${STRICT_ENV} 0/wrong/1), got {strict!r}")


def _reference_name(reference: Callable, fallback: str | None) -> str:
    if fallback:
        return fallback
    name = getattr(reference, "__qualname__", "")
    if name and "<" not in name:  # not a lambda or a local function
        module = getattr(reference, "__module__", "") or ""
        return f"{module}.{name}" if module.startswith("course_lib") else name
    return REFERENCE


def _describe_value(value: Any) -> str:
    """A short description of one input: shape and dtype for arrays and tensors, a short repr otherwise."""
    if _is_tensor(value):
        return f"tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return f"array {np.array2string(value, precision=4, separator=', ')}"
        return f"array {value.shape} {value.dtype}"
    if isinstance(value, dict):
        return f"dict of {len(value)} entries"
    if callable(value):
        return f"function {getattr(value, '__name__', type(value).__name__)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe_case(args: tuple, kwargs: dict, names: list[str]) -> str:
    """ "plan = array (1, 5) float64"-style description of one case's inputs, with the student's argument names."""
    parts = []
    for i, value in enumerate(args):
        label = names[i] if i < len(names) else f"arg {i}"
        parts.append(f"{label} = {_describe_value(value)}")
    parts += [f"{key} = {_describe_value(value)}" for key, value in kwargs.items()]
    return ", ".join(parts)


def _argument_names(fn: Callable) -> list[str]:
    fn = getattr(fn, "__wrapped__", fn)
    try:
        return [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return []


RESTART_ADVICE = "after a kernel restart, first run the cells above: Run > Run All Above"


def _error_hints(
    exc: BaseException, hints: Mapping[str, Callable[[BaseException, tuple, dict], bool]], args: tuple, kwargs: dict
) -> list[str]:
    found = []
    for message, applies in hints.items():
        try:
            if applies(exc, args, kwargs):
                found.append(message)
        except Exception:  # noqa: BLE001, S112 - a predicate that cannot judge this case simply does not apply
            continue
    if isinstance(exc, NameError):
        found.append(f"a name your function uses is not defined in this kernel; {RESTART_ADVICE}")
    return found


def check_against(
    student: Callable,
    reference: Callable,
    cases: Iterable[tuple | dict],
    rtol: float = 1e-5,
    atol: float = 1e-8,
    name: str | None = None,
    quiet: bool = False,
    mistakes: Mapping[str, Callable] | None = None,
    strict: bool | str | None = None,
    fallback: str | None = None,
    error_hints: Mapping[str, Callable[[BaseException, tuple, dict], bool]] | None = None,
) -> CheckResult:
    """Run `student` and `reference` on each case (a tuple of positional args or a dict of keyword
    args), compare the results, print a verdict with hints, and return a `CheckResult`.

    mistakes: {hint: mistaken implementation}; when the student's result equals a mistaken one, its hint
        is printed (e.g. {"use the mean over the batch, not the sum": lambda x: x.sum()}).
    error_hints: {hint: predicate(exception, args, kwargs)}; printed when the student's function raised and the
        predicate holds.
    strict: False, "wrong" or True; None reads $COURSE_LIB_STRICT_CHECKS (see the module docstring).
    fallback: what the rest of the notebook uses instead of the student's function (named in the
        "not done yet" message); defaults to the reference's name.
    """
    name = name or getattr(getattr(student, "__wrapped__", student), "__name__", "your function")
    mode = _strictness(strict)
    cases = list(cases)
    names = _argument_names(student) or _argument_names(reference)
    failures: list[str] = []
    status = RIGHT
    for i, case in enumerate(cases):
        args, kwargs = ((), dict(case)) if isinstance(case, dict) else (tuple(case), {})
        want = reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        inputs = _describe_case(args, kwargs, names)
        try:
            got = student(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        except NotImplementedError:
            status = NOT_DONE
            break
        except Exception as exc:  # noqa: BLE001 - report any student error as a failed case
            last = traceback.extract_tb(exc.__traceback__)[-1]
            hints = _error_hints(exc, error_hints or {}, args, kwargs)
            failures.append(
                f"case {i} ({inputs}): raised {type(exc).__name__}: {exc} (line {last.lineno} of {last.name})"
                + "".join(f"\n      hint: {h}" for h in hints)
            )
            continue
        ok, why, hints = _compare(got, want, args, kwargs, rtol, atol)
        if not ok:
            specific = _specific_hints(got, mistakes or {}, args, kwargs, rtol, atol)
            hints = specific or hints  # a listed mistake that fits says more than the generic guesses
            failures.append(f"case {i} ({inputs}): {why}" + "".join(f"\n      hint: {h}" for h in hints))
    if status == RIGHT and failures:
        status = WRONG
    result = CheckResult(name, status, len(cases), failures)
    return _report(result, _verdict(result, _reference_name(reference, fallback)), mode, quiet)


def _report(result: CheckResult, message: str, mode: str, quiet: bool) -> CheckResult:
    if (mode == "all" and result.status != RIGHT) or (mode == "wrong" and result.status == WRONG):
        raise ExerciseError(message.replace("\n", " "))
    if not quiet:
        print(message)
    return result


_FROM_THE_NOTEBOOK = object()  # check's default: find the student's function by name where check was called


def _caller_namespace() -> dict:
    """The globals of the code that called `check` (a notebook's namespace, or a test module's)."""
    frame = sys._getframe(2)  # 0: this function, 1: check, 2: its caller
    return frame.f_globals


def check(
    exercise: str,
    student: Callable | Any = _FROM_THE_NOTEBOOK,
    strict: bool | str | None = None,
    quiet: bool = False,
) -> CheckResult:
    """Check the student's function for the registered `exercise` (see `course_lib.course.exercise_bank`).

    student: the function to check; by default the one called `exercise` where `check` is called (the
        notebook), so that a check cell run after a kernel restart says what to run instead of a NameError.
    """
    entry = exercise_bank.get(exercise)
    mode = _strictness(strict)
    if student is _FROM_THE_NOTEBOOK:
        student = _caller_namespace().get(exercise, _FROM_THE_NOTEBOOK)
    if student is _FROM_THE_NOTEBOOK or not callable(student):
        what = "is not defined in this kernel" if student is _FROM_THE_NOTEBOOK else "is not a function"
        result = CheckResult(exercise, NOT_DONE, 0)
        message = (
            f"NOT DONE YET: {exercise} {what}. Run the exercise's cell, then this one ({RESTART_ADVICE})."
            f"\n  Until then the rest of the notebook uses {entry.fallback or REFERENCE}, so it still runs."
        )
        return _report(result, message, mode, quiet)
    compared = entry.adapt(student) if entry.adapt else student
    return check_against(
        compared,
        entry.reference,
        entry.cases(),
        rtol=entry.rtol,
        atol=entry.atol,
        name=exercise,
        quiet=quiet,
        mistakes=entry.mistakes,
        strict=mode if mode != "off" else False,
        fallback=entry.fallback,
        error_hints=entry.error_hints,
    )


def _verdict(result: CheckResult, reference_name: str) -> str:
    if result.status == RIGHT:
        return f"RIGHT: {result.name} matches the reference on all {result.cases} checks."
    if result.status == NOT_DONE:
        return (
            f"NOT DONE YET: {result.name} still raises NotImplementedError. Replace the lines "
            f"`# YOUR CODE HERE` / `raise NotImplementedError()` with your code and run its cell and this one "
            f"again.\n  Until then the rest of the notebook uses {reference_name}, so it still runs."
        )
    lines = [f"WRONG: {result.name} differs from the reference in {len(result.failures)} of {result.cases} checks"]
    lines += [f"  - {line}" for line in result.failures]
    return "\n".join(lines)
