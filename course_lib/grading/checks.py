"""How test cells check answers, so that no check ever runs in a process that ran student code.

A test cell calls the student's answers only through these functions:

    expect_close(frechet_distance, cases, reference=M.frechet_distance, rtol=1e-6, message="...")
    expect_close(inception_score, [(uniform, 1)], expected=[(1.0, 0.0)], message="IS of identical predictions is 1")
    expect(earth_movers_primal, [(p, q)], check=lambda out, p, q: ..., message="...")
    expect_value(IMPROVED, check=lambda settings: ..., message="...")

and code that must run next to the answers (build the student's model, load its checkpoint) lives in a
function decorated with `@probe` in a read-only cell; it returns plain data (numbers, arrays, tensors, and
lists, tuples and dicts of them).

The same cell means three things:

- in the student's notebook (the default) each call runs the answer on the cases at once, compares, prints
  one line per failing case and raises AssertionError: students run the visible tests themselves;
- in the grader's checker (a process that never runs student code), answers and probes are `Answer`
  placeholders; each call only records *what to run* (the answer's name and the cases, which the checker
  computes) and *how to judge it* (the reference values and the check, computed here);
- in the student's kernel at grading time, the test cell's code does not run at all: `collect.run` calls the
  recorded answers on the checker's cases and writes the results in the `wire` format (JSON + npz), which the
  checker then judges.

A check that comes from a hidden-test region reports only "passed" or "failed" to the student.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .markup import AssignmentError

CHECKER_FILENAME = "<grading:{}>"  # the filename the checker compiles a test cell under


class Answer:
    """Stands for a student's answer (or a probe) in the checker, which never runs student code."""

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)

    def __call__(self, *args, **kwargs):
        raise AssignmentError(
            f"a test cell calls {self.name}(...) directly; in a test cell the student's code is "
            f"called through expect(...), expect_close(...) or a @probe function"
        )

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AssignmentError(
            f"a test cell uses {self.name}.{attr} directly; read the student's results through "
            "expect(...) or a @probe function"
        )

    def __repr__(self):
        return f"<the student's {self.name}>"


@dataclass
class Expectation:
    """One expect call as the checker recorded it."""

    index: int
    target: str  # the answer's or probe's name in the student's kernel
    kind: str  # "call": target(*case) per case; "value": the object itself
    cases: list  # tuples of positional arguments ("call") or [()] ("value")
    judge: Callable  # (output, case index) -> None when right, else a short description of what is wrong
    message: str
    hidden: bool
    line: int = 0


@dataclass
class Plan:
    """What the checker recorded while running one test cell's code."""

    cell: str
    hidden_lines: set[int] = field(default_factory=set)
    expectations: list[Expectation] = field(default_factory=list)


_plan: Plan | None = None  # set by the checker while it runs a test cell; None in notebooks


def planning(plan: Plan | None) -> None:
    """Switch this process into the checker's recording mode for one cell (None: back to notebook mode)."""
    global _plan
    _plan = plan


def in_checker() -> bool:
    return _plan is not None


def probe(fn: Callable) -> Callable:
    """Mark a function that runs the student's code for a check. In notebooks and in the student's kernel it is
    the function itself; in the checker it becomes a placeholder, so that the checker cannot call it."""
    if _plan is not None or _defining_placeholders:
        return Answer(fn.__name__)
    return fn


_defining_placeholders = False  # the checker runs read-only cells with @probe turning into placeholders


def defining_placeholders(on: bool) -> None:
    global _defining_placeholders
    _defining_placeholders = on


# ------------------------------------------------------------------------------ comparisons
def _as_float_array(value):
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _short(array) -> str:
    import numpy as np

    return np.array2string(np.asarray(array), precision=4, threshold=6)


def difference(got: Any, want: Any, rtol: float, atol: float) -> str | None:
    """None when got matches want (numbers and arrays within rtol/atol, same shapes; tuples, lists and dicts item
    by item), else a short description of the first difference."""
    import numpy as np

    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"expected a dict with keys {sorted(map(str, want))}, got {type(got).__name__}"
        for key in want:
            why = difference(got[key], want[key], rtol, atol)
            if why:
                return f"[{key!r}]: {why}"
        return None
    if isinstance(want, (tuple, list)) and isinstance(got, (tuple, list)) and not _numeric_sequence(want):
        if len(got) != len(want):
            return f"returned {len(got)} values, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            why = difference(g, w, rtol, atol)
            if why:
                return f"item {i}: {why}"
        return None
    if isinstance(want, (tuple, list)) and isinstance(got, (tuple, list)) and len(got) != len(want):
        return f"returned {len(got)} values, expected {len(want)}"
    if isinstance(want, str) or isinstance(got, str):
        return None if got == want else f"got {str(got)[:80]!r}, expected {str(want)[:80]!r}"
    try:
        g, w = _as_float_array(got), _as_float_array(want)
    except (TypeError, ValueError):
        return f"expected numbers, got {type(got).__name__}"
    if g.shape != w.shape:
        return f"shape {g.shape}, expected {w.shape}"
    if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        err = float(np.nanmax(np.abs(g - w))) if g.size else 0.0
        return f"values differ (max abs difference {err:.3g}); got {_short(g)}, expected {_short(w)}"
    return None


def _numeric_sequence(value) -> bool:
    return (
        all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        and len(value) > 0
        and not isinstance(value, tuple)
    )


# ------------------------------------------------------------------------------ the three calls
def _caller_line() -> int:
    """The line of the test cell's code that made the current expect call (for hidden-region lookup)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<grading:"):
            return frame.f_lineno
        frame = frame.f_back
    return 0


def _name_of(target) -> str:
    return target.name if isinstance(target, Answer) else getattr(target, "__name__", repr(target))


def _record(target, kind: str, cases: list, judge: Callable, message: str) -> None:
    if not isinstance(target, Answer):
        raise AssignmentError(
            f"expect(...) in test cell {_plan.cell} was given {target!r}, which is not one of the "
            "student's answers or a @probe function (the checker would run it itself)"
        )
    line = _caller_line()
    _plan.expectations.append(
        Expectation(len(_plan.expectations), target.name, kind, cases, judge, message, line in _plan.hidden_lines, line)
    )


def _cases(cases) -> list[tuple]:
    cases = list(cases)
    if not cases or not all(isinstance(c, tuple) for c in cases):
        raise AssignmentError("cases must be a non-empty list of tuples of positional arguments, e.g. [(x,), (x, 4)]")
    return cases


def _run_in_notebook(target, kind: str, cases: list, judge: Callable, message: str) -> None:
    name = _name_of(target)
    failures = []
    for i, case in enumerate(cases):
        output = target if kind == "value" else target(*case)  # the student's exception is the feedback
        why = judge(output, i)
        if why:
            failures.append(f"case {i}: {why}" if kind == "call" else why)
    if failures:
        print(f"WRONG: {name} failed {len(failures)} of {len(cases)} check(s)")
        for line in failures:
            print("  -", line)
        raise AssertionError(message or f"{name} is not right yet (see the lines above)")
    print(f"RIGHT: {name} passed {len(cases)} check(s)")


def _dispatch(target, kind, cases, judge, message) -> None:
    if _plan is not None:
        _record(target, kind, cases, judge, message)
    else:
        _run_in_notebook(target, kind, cases, judge, message)


def expect_close(
    fn,
    cases,
    reference: Callable | None = None,
    expected: list | None = None,
    rtol: float = 1e-7,
    atol: float = 0.0,
    message: str = "",
) -> None:
    """fn(*case) must be close to reference(*case) (or to expected[i]) for every case."""
    cases = _cases(cases)
    if (reference is None) == (expected is None):
        raise AssignmentError("expect_close needs exactly one of reference= or expected=")
    wanted = [reference(*c) for c in cases] if reference is not None else list(expected)  # computed here, now
    if len(wanted) != len(cases):
        raise AssignmentError(f"expect_close: {len(cases)} cases but {len(wanted)} expected values")

    def judge(output, i):
        return difference(output, wanted[i], rtol, atol)

    _dispatch(fn, "call", cases, judge, message)


def _judged_by(check: Callable, cases: list, with_case: bool) -> Callable:
    def judge(output, i):
        try:
            ok = check(output, *cases[i]) if with_case else check(output)
            # Inside the try: the truth of what a check returns can raise too (a multi-element array has none), and
            # that is this check failing, not the whole submission.
            passed = ok is None or (ok is not False and bool(ok))
        except AssertionError as exc:
            return str(exc) or "the check failed"
        except Exception as exc:  # noqa: BLE001 - an output the check cannot use is a wrong output
            return f"the check could not use the result ({type(exc).__name__}: {exc})"
        return None if passed else "the check failed"

    return judge


def expect(fn, cases, check: Callable, message: str = "") -> None:
    """check(fn(*case), *case) must hold for every case (return True/None, or raise AssertionError saying why)."""
    cases = _cases(cases)
    _dispatch(fn, "call", cases, _judged_by(check, cases, True), message)


def expect_value(answer, check: Callable, message: str = "") -> None:
    """check(answer) must hold, for an answer that is a value (a dict of settings, a table of scores)."""
    _dispatch(answer, "value", [()], _judged_by(check, [()], False), message)


def finite(*values) -> bool:
    """All values are finite numbers (a helper for checks)."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
