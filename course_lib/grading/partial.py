"""Partial credit: a test cell that awards its points per case (3 of 5 cases right: 3/5 of its points).

Opt in per test cell in the source notebook: `{"course_lib": {"partial_credit": true}}` beside its nbgrader
metadata (`course-lib assign` records it in the bundle). Every other test cell stays all-or-nothing. Each
case of each `expect*` call of the cell counts once; the feedback lists every case (a hidden case only as
"hidden case N: failed", never why).
"""

from __future__ import annotations

from .checker import case_failure

MALFORMED = "the results written by the kernel do not match the checks (tampered with?)"


def is_partial(spec: dict) -> bool:
    return spec.get("kind") == "test" and bool(spec.get("partial_credit"))


def judge_cases(cell_plan, results, hidden_checks: bool = False) -> tuple[int, int, list[str], list[str]]:
    """(cases passed, cases in all, per-case lines for the student, per-case reasons for the instructor). With
    `hidden_checks` (the assignment has some) a visible case's line says only "wrong" or which exception it raised:
    the kernel's values and messages may hold hidden inputs (see `returned`)."""
    from .returned import detail_for_student

    expectations = cell_plan.plan.expectations
    total = sum(len(e.cases) for e in expectations)
    if not isinstance(results, list) or len(results) != len(expectations):
        return 0, total, [MALFORMED], ["malformed results"]
    passed, lines, reasons = 0, [], []
    for exp, per_case in zip(expectations, results):
        if not isinstance(per_case, list) or len(per_case) != len(exp.cases):
            lines.append(f"{exp.target}: {MALFORMED}")
            reasons.append(f"malformed results for check {exp.index}")
            continue
        for i, outcome in enumerate(per_case):
            why = case_failure(exp, outcome, i)
            label = f"{'hidden ' if exp.hidden else ''}case {len(lines)}"
            if not why:
                passed += 1
                lines.append(f"{label}: passed")
                continue
            why = " ".join(str(why).split())[:300]  # kernel-made text: one line
            reasons.append(f"{label} ({exp.target}): {why}")
            if exp.hidden:
                lines.append(f"{label}: failed")
            else:
                lines.append(detail_for_student(f"{label}: {why}") if hidden_checks else f"{label}: failed: {why}")
    return passed, total, lines, reasons


def question(gid: str, points: float, cell_plan, results, verdict, hidden_checks: bool = False):
    """The QuestionResult of a partial-credit test cell."""
    from .grade import QuestionResult

    passed, total, lines, reasons = judge_cases(cell_plan, results, hidden_checks)
    earned = round(points * passed / total, 4) if total else 0.0
    status = "passed" if total and passed == total else ("partly passed" if passed else "failed")
    message = "" if status == "passed" else f"{passed} of {total} cases right: {verdict.message or 'see the cases'}"
    instructor = "; ".join(reasons)[:2000] or verdict.instructor
    return QuestionResult(gid, "test", earned, points, status, message, "\n".join(lines[:50]), instructor)
