"""The checker: the part of grading that computes references and verdicts, in a process that never runs student code.

`plan(bundle)` runs the bundle's checker cells (read-only cells marked `{"course_lib": {"checker": true}}`:
imports, settings, helpers) and then each test cell's code, with every answer and every @probe standing for
an `checks.Answer` placeholder. The `checks.expect*` calls record what to run in the student's kernel and how
to judge the result. `inputs(plan)` is what the kernel gets (names and cases, in the wire format);
`judge(plan, results)` turns what the kernel wrote back into a verdict per test cell.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
from dataclasses import dataclass, field

from . import checks, markup


def answer_names(bundle: dict) -> set[str]:
    """Names the answer cells define (recorded from the solutions by `assign`): the student's answers."""
    return {name for cell in bundle["cells"] for name in cell.get("answers", [])}


def probe_names(bundle: dict) -> set[str]:
    """Functions decorated with @probe in the bundle's read-only cells."""
    names: set[str] = set()
    for cell in bundle["cells"]:
        if cell["cell_type"] != "code" or cell["kind"] == "solution":
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                (isinstance(d, ast.Name) and d.id == "probe") or (isinstance(d, ast.Attribute) and d.attr == "probe")
                for d in node.decorator_list
            ):
                names.add(node.name)
    return names


def hidden_lines(source: str) -> set[int]:
    """1-based line numbers inside hidden-test regions (markers included)."""
    lines, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if markup.BEGIN_HIDDEN in line:
            inside = True
        if inside:
            lines.add(number)
        if markup.END_HIDDEN in line:
            inside = False
    return lines


@dataclass
class CellPlan:
    grade_id: str
    plan: checks.Plan | None = None
    error: str = ""  # why the checker could not prepare this cell (an assignment bug, not the student's)
    printed: str = ""


@dataclass
class Planned:
    cells: dict[str, CellPlan] = field(default_factory=dict)
    setup_error: str = ""


def plan(bundle: dict) -> Planned:
    """Run the checker cells and the test cells' code in recording mode (see the module docstring)."""
    result = Planned()
    namespace: dict = {"__name__": "__grading__"}
    placeholders = {n: checks.Answer(n) for n in answer_names(bundle) | probe_names(bundle)}
    namespace.update(placeholders)
    checks.defining_placeholders(True)
    try:
        for cell in bundle["cells"]:
            if cell.get("checker") and cell["cell_type"] == "code":
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(cell["source"], f"<grading-setup:{cell['grade_id']}>", "exec"), namespace)  # noqa: S102
    except Exception as exc:  # noqa: BLE001 - an assignment bug: every test cell reports it
        result.setup_error = f"{type(exc).__name__}: {exc}"
    finally:
        checks.defining_placeholders(False)
    namespace.update(placeholders)  # the setup cannot have replaced an answer with something real
    for cell in bundle["cells"]:
        if cell["kind"] != "test":
            continue
        gid = cell["grade_id"]
        cell_plan = CellPlan(gid)
        result.cells[gid] = cell_plan
        if result.setup_error:
            cell_plan.error = f"the checker's setup failed: {result.setup_error}"
            continue
        recording = checks.Plan(gid, hidden_lines(cell["source"]))
        checks.planning(recording)
        printed = io.StringIO()
        # Each cell runs in its own copy of the namespace, merged into the shared one afterwards: the checks it
        # recorded keep seeing its own variables when they are judged, after later cells reused the names.
        own = dict(namespace)
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(cell["source"], checks.CHECKER_FILENAME.format(gid), "exec"), own)  # noqa: S102
            namespace.update(own)
            namespace.update(placeholders)
            if not recording.expectations:
                raise markup.AssignmentError("the test cell checks nothing (no expect(...) call)")
            cell_plan.plan = recording
        except Exception as exc:  # noqa: BLE001
            cell_plan.error = f"{type(exc).__name__}: {exc}"
        finally:
            checks.planning(None)
            cell_plan.printed = printed.getvalue()
    return result


def inputs(cell_plan: CellPlan) -> list[dict]:
    """What the student's kernel is asked to run for one test cell: names and cases, no references."""
    return [{"target": e.target, "kind": e.kind, "cases": list(e.cases)} for e in cell_plan.plan.expectations]


@dataclass
class Verdict:
    passed: bool
    message: str = ""  # for the student: empty when passed; only "a hidden check failed" for hidden checks
    details: list[str] = field(default_factory=list)  # per-case lines, visible checks only
    instructor: str = ""  # the full reason, hidden checks included (summary.json, never the feedback)


def case_failure(exp, outcome, i: int) -> str | None:
    """Why case `i` of expectation `exp` failed, from what the kernel wrote for it (None: it passed). Only the two
    plain shapes the runner writes count: {"error": "..."} or {"output": ...}; anything else is malformed."""
    if isinstance(outcome, dict) and set(outcome) == {"error"} and isinstance(outcome["error"], str):
        return f"{exp.target} raised {outcome['error']}"
    if isinstance(outcome, dict) and set(outcome) == {"output"}:
        return exp.judge(outcome["output"], i)
    return "malformed result"


def judge(cell_plan: CellPlan, results) -> Verdict:
    """The verdict on one test cell from what the kernel wrote (hostile data: any shape is handled)."""
    expectations = cell_plan.plan.expectations
    if not isinstance(results, list) or len(results) != len(expectations):
        return Verdict(
            False,
            "the results written by the kernel do not match the checks (tampered with?)",
            instructor="malformed results",
        )
    for exp, per_case in zip(expectations, results):
        if not isinstance(per_case, list) or len(per_case) != len(exp.cases):
            return Verdict(
                False,
                "the results written by the kernel do not match the checks (tampered with?)",
                instructor=f"malformed results for check {exp.index}",
            )
        failures = []
        for i, outcome in enumerate(per_case):
            why = case_failure(exp, outcome, i)
            if why:
                failures.append(f"case {i}: {why}" if exp.kind == "call" else why)
        if failures:
            failures = [" ".join(str(f).split())[:500] for f in failures]  # kernel-made text: one line each
            reason = exp.message or f"{exp.target} is not right"
            full = f"{reason} ({'; '.join(failures)[:2000]})"
            if exp.hidden:
                return Verdict(False, "a hidden check failed", instructor=full)
            return Verdict(False, reason, failures[:10], instructor=full)
    return Verdict(True)


def checker_env(fast: bool | None) -> None:
    """The checker's own process settings: the same fast mode as the kernels, no display, one thread."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    if fast is not None:
        os.environ["COURSE_LIB_FAST"] = "1" if fast else "0"
