"""Checking a student's exercise function against course_lib's reference implementation.

Notebook exercises follow one pattern: the student fills in a function, then a check cell calls
`check(student_fn, reference_fn, cases)`, which runs both on the same inputs and prints a clear
verdict. It never raises on a wrong answer (so the notebook keeps running) and returns True/False
so graders and tests can use the result.
"""
from __future__ import annotations

import traceback
from typing import Any, Callable, Iterable

import numpy as np


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensors
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _close(got: Any, want: Any, rtol: float, atol: float) -> tuple[bool, str]:
    if isinstance(want, (tuple, list)) and not np.isscalar(want) and isinstance(got, (tuple, list)):
        if len(got) != len(want):
            return False, f"returned {len(got)} values, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            ok, why = _close(g, w, rtol, atol)
            if not ok:
                return False, f"item {i}: {why}"
        return True, ""
    try:
        g, w = _as_array(got), _as_array(want)
    except (TypeError, ValueError):
        return (got == want), f"got {got!r}, expected {want!r}"
    if g.shape != w.shape:
        return False, f"shape {g.shape}, expected {w.shape}"
    if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        err = np.max(np.abs(g - w)) if g.size else 0.0
        return False, f"values differ (max abs difference {err:.3g}); got {np.array2string(g, precision=4, threshold=6)}, expected {np.array2string(w, precision=4, threshold=6)}"
    return True, ""


def check(student: Callable, reference: Callable, cases: Iterable[tuple | dict], rtol: float = 1e-5,
          atol: float = 1e-8, name: str | None = None, quiet: bool = False) -> bool:
    """Run `student` and `reference` on each case (a tuple of positional args or a dict of keyword
    args) and compare the results. Prints one line per failing case and a final verdict."""
    name = name or getattr(student, "__name__", "your function")
    cases = list(cases)
    failures = []
    for i, case in enumerate(cases):
        args, kwargs = ((), case) if isinstance(case, dict) else (tuple(case), {})
        want = reference(*args, **kwargs)
        try:
            got = student(*args, **kwargs)
        except NotImplementedError:
            failures.append(f"case {i}: not implemented yet (replace the `raise NotImplementedError`)")
            break
        except Exception as exc:  # noqa: BLE001 - report any student error as a failed case
            last = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(f"case {i}: raised {type(exc).__name__}: {exc} (line {last.lineno})")
            continue
        ok, why = _close(got, want, rtol, atol)
        if not ok:
            failures.append(f"case {i}: {why}")
    if not quiet:
        if failures:
            print(f"WRONG: {name} failed {len(failures)} of {len(cases)} checks")
            for line in failures:
                print("  -", line)
        else:
            print(f"RIGHT: {name} matches the reference on all {len(cases)} checks")
    return not failures
