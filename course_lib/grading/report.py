"""What grading writes: OUT/grades.csv (one row per student and question), OUT/feedback/STUDENT.md
(every lost point with its reason) and OUT/summary.json (totals per student). All written atomically."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .assign import write_text_atomic

CSV_COLUMNS = ["student", "question", "points", "max_points", "status"]


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:g}"


def grades_csv(results) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for res in results:
        for q in res.questions:
            status = "needs manual grading" if q.status == "manual" else q.status
            writer.writerow([res.student, q.question, _fmt(q.points), _fmt(q.max_points), status])
    return buf.getvalue()


def feedback_markdown(res, bundle: dict) -> str:
    manual = [q for q in res.questions if q.kind != "test"]
    pending = sum(q.max_points for q in manual if q.points is None)
    lines = [f"# {bundle['name']}: feedback for {res.student}", "",
             f"**Automatically graded: {res.points:g} / {res.max_points:g} points.**"]
    if pending:
        lines.append(f"A further {pending:g} points are graded by hand.")
    lines.append("")
    if res.events:
        lines += ["## What happened while grading", ""] + [f"- {e}" for e in res.events] + [""]
    lines += ["## Checks", ""]
    for q in res.questions:
        if q.status == "passed":
            lines.append(f"- [x] `{q.question}`: {q.points:g} / {q.max_points:g}, passed")
        elif q.status == "manual":
            lines.append(f"- [ ] `{q.question}`: ? / {q.max_points:g}, needs manual grading")
        else:
            lines.append(f"- [ ] `{q.question}`: {q.points or 0:g} / {q.max_points:g}, {q.status}: "
                         f"{q.message or 'no message'}")
            if q.output_tail:
                lines += ["", "  ```text"] + [f"  {ln}" for ln in q.output_tail.splitlines()] + ["  ```", ""]
    if res.executed:
        lines += ["", f"The notebook as it ran: `{Path(res.executed).name}` in the grader's executed/ folder."]
    return "\n".join(lines) + "\n"


def write_reports(results, bundle: dict, out: Path) -> None:
    write_text_atomic(out / "grades.csv", grades_csv(results))
    for res in results:
        write_text_atomic(out / "feedback" / f"{res.student}.md", feedback_markdown(res, bundle))
    summary = {
        "assignment": bundle["name"],
        "max_points": bundle["max_points"],
        "manual_points": bundle["manual_points"],
        "students": {r.student: {"points": r.points, "max_points": r.max_points, "seconds": round(r.seconds, 2),
                                 "events": r.events, "submission": r.path} for r in results},
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1) + "\n")
