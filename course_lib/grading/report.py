"""What grading writes, all atomically and only from the grader's own process:

- OUT/grades.csv: one row per student and question;
- OUT/feedback/STUDENT.md: every lost point with its reason. Everything a submission could influence
  (error names and messages, the kernel's events, values printed in a check's details) is escaped to one line
  of plain text, so it cannot add headings, fake totals, links or HTML; hidden checks say only "failed";
- OUT/executed/STUDENT.ipynb: the notebook as it ran, test cells as the student version with their verdicts, for
  the instructor (every output); OUT/feedback/STUDENT.ipynb: the copy returned to the student (`returned`: with
  hidden checks, none of the kernel's outputs);
- OUT/summary.json: per submission what happened (status, events, seconds, points, and the full reason of
  every failed check, hidden ones included, for the instructor), the sandbox that was used, with a
  loud warning when there was none, and the memory limits that held.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict
from pathlib import Path

from ..core.io import write_text_atomic
from . import feedback_html, late, manual, returned
from .results import file_stem

CSV_COLUMNS = ["student", "question", "points", "max_points", "status"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_BLOCK_START = re.compile(r"^(#|>|\+|-|=|\d+[.)])")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")  # what can open emphasis, code, links or tables mid-line


def plain_line(text, limit: int = 400) -> str:
    """One line of literal text for markdown: control characters and line breaks become spaces, the markdown
    characters that work mid-line are backslash-escaped and HTML's special characters are entities (so no tag,
    link, emphasis or code span can start), cut at `limit` characters."""
    text = _CONTROL.sub(" ", str(text))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit] + " …"
    text = _MARKDOWN.sub(r"\\\1", text)
    if _BLOCK_START.match(text):  # a heading, quote, list item or rule if it started a line
        text = "\\" + text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _csv_cell(text: str) -> str:
    """No formulas in spreadsheets: a cell starting with = + - @ is prefixed with a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def grades_csv(results) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for res in results:
        for q in res.questions:
            status = "needs manual grading" if q.status == "manual" else q.status
            writer.writerow([_csv_cell(res.student), q.question, _fmt(q.points), _fmt(q.max_points), status])
    return buf.getvalue()


def memory_line(limits, memory_cgroups: tuple) -> str:
    """Which memory limits held: a cgroup per submission (all its processes together), or RLIMIT_AS only."""
    hierarchy, why = memory_cgroups
    per_process = f"{limits.memory_gb:g} GB of address space per process"
    if hierarchy is None:
        return f"{per_process} only (no memory cgroup: {why})"
    return (
        f"{limits.ram_gb:g} GB for all of a submission's processes and its /tmp ({hierarchy.describe()}); {per_process}"
    )


def sandbox_header(mode: str, why: str, limits=None, memory_cgroups: tuple = (None, "not checked")) -> dict:
    from .sandbox import Limits

    memory = memory_line(limits or Limits(), memory_cgroups)
    if mode == "none":
        return {
            "sandbox": "none",
            "memory": memory,
            "warning": f"WARNING: NO SANDBOX ({plain_line(why)}). Student code ran with the "
            "grader's permissions: it could read and change your files. Install bubblewrap "
            "(apt-get install bubblewrap) before grading submissions you do not trust.",
        }
    what = {"bwrap-root": "bubblewrap, an unprivileged uid per worker", "bwrap-user": "bubblewrap, a user namespace"}
    return {"sandbox": what.get(mode, mode), "memory": memory, "warning": ""}


def summary_lines(res, bundle: dict, policy=None) -> list[str]:
    """The top of a student's feedback as plain lines (manual marks already in `res`)."""
    manual_qs = [q for q in res.questions if q.kind != "test"]
    pending = sum(q.max_points for q in manual_qs if q.points is None)
    marked = [q for q in manual_qs if q.status == "graded by hand"]
    lines = [f"Automatically graded: {res.points:g} / {res.max_points:g} points."]
    if marked:
        lines.append(
            f"Marked by hand: {sum(q.points for q in marked):g} / {sum(q.max_points for q in marked):g} points."
        )
    if pending:
        lines.append(f"A further {pending:g} points are graded by hand.")
    if policy is not None or marked:
        got = late.standing(res, bundle, policy)
        if policy is not None:
            when = f"handed in {res.submitted_at or 'at an unknown time'} ({res.time_source or 'no time found'})"
            lines.append(f"Late policy: {policy.describe()}; {when}.")
            if got["late_note"]:
                lines.append(f"{got['late_note'][0].upper() + got['late_note'][1:]}.")
        lines.append(f"Total: {got['total']:g} / {got['total_max']:g} points.")
    events = res.events if res.student_events is None else res.student_events
    return lines + [f"While grading: {' '.join(str(e).split())[:400]}" for e in events[:30]]


def feedback_markdown(res, bundle: dict, policy=None) -> str:
    """The student's feedback (manual marks already in `res`; `policy`: the late policy, if any)."""
    top = [line for line in summary_lines(res, bundle, policy) if not line.startswith("While grading: ")]
    lines = [
        f"# {plain_line(bundle['name'])}: feedback for {plain_line(res.student)}",
        "",
        f"**{top[0]}**",  # made here from numbers: the only line that starts with **Automatically graded
        *[plain_line(line) for line in top[1:]],
    ]
    lines.append("")
    events = res.events if res.student_events is None else res.student_events  # the kernel's text cut (returned.py)
    if events:
        lines += ["## What happened while grading", ""] + [f"- {plain_line(e)}" for e in events[:30]] + [""]
    lines += ["## Checks", ""]
    for q in res.questions:
        gid = plain_line(q.question)
        if q.status == "passed":
            lines.append(f"- [x] {gid}: {q.points:g} / {q.max_points:g}, passed")
        elif q.status == "manual":
            lines.append(f"- [ ] {gid}: ? / {q.max_points:g}, needs manual grading")
        elif q.status == "graded by hand":
            comment = f": {plain_line(q.message)}" if q.message else ""
            lines.append(f"- [x] {gid}: {q.points:g} / {q.max_points:g}, graded by hand{comment}")
        else:
            lines.append(
                f"- [ ] {gid}: {q.points or 0:g} / {q.max_points:g}, {plain_line(q.status)}: "
                f"{plain_line(q.message or 'no message')}"
            )
            lines += [f"    - {plain_line(d)}" for d in q.details.splitlines()[:10]]
    if res.executed:
        lines += [
            "",
            f"Your notebook as it ran, with the grader's notes: {plain_line(file_stem(res.student))}\\.ipynb "
            f"(and as a page: {plain_line(file_stem(res.student))}\\.html).",
        ]
    return "\n".join(lines) + "\n"


def summary(results, bundle: dict, header: dict, marks: dict | None = None, version: str = "") -> dict:
    """Per student what happened, for the instructor. `results` as graded (without manual marks: those are in
    OUT/manual.json and applied here), each with its questions, so that a later run can resume or merge from it."""
    marks = marks or {}
    policy = late.policy_of(bundle)
    students = {}
    unmarked = {}
    for r in results:
        got = late.standing(manual.with_marks(r, marks.get(r.student)), bundle, policy)
        if got["unmarked"]:
            unmarked[r.student] = got["unmarked"]
        students[r.student] = {
            "status": r.status,
            "points": r.points,
            "max_points": r.max_points,
            "seconds": round(r.seconds, 2),
            "events": r.events,
            "submission": r.path,
            "failed": {
                q.question: q.instructor or q.message for q in r.questions if q.kind == "test" and q.status != "passed"
            },
            **{k: got[k] for k in ("manual_points", "unmarked", "late_penalty", "accepted", "total", "total_max")},
            "submitted_at": r.submitted_at,
            "time_source": r.time_source,
            "digest": r.digest,
            "timings": r.timings,
            "student_events": r.student_events,
            "questions": [asdict(q) for q in r.questions],
        }
    return {
        "assignment": bundle["name"],
        "version": version,
        "max_points": bundle["max_points"],
        "manual_points": bundle["manual_points"],
        **({"late_policy": policy.to_dict()} if policy is not None else {}),
        **header,
        "unmarked": unmarked,
        "students": students,
    }


def write_reports(
    results, bundle: dict, out: Path, header: dict, changed=None, marks=None, version: str = "", shard=None
) -> None:
    """Write the feedback (and executed notebooks) of `changed` (one result, a list, or None: everyone), then
    grades.csv and summary.json, or with `shard` (its manifest: classwork.shard_manifest) OUT/shards/I-of-N.json
    instead. File names are
    `file_stem(student)`: a name like '-rf' or one with a newline never becomes a file name. Manual marks (`marks`,
    from OUT/manual.json) are applied to what is written, never stored in the results."""
    marks = marks or {}
    policy = late.policy_of(bundle)
    hidden = returned.has_hidden_checks(bundle)
    for res in results if changed is None else changed if isinstance(changed, list) else [changed]:
        stem = file_stem(res.student)
        shown = manual.with_marks(res, marks.get(res.student))
        write_text_atomic(out / "feedback" / f"{stem}.md", feedback_markdown(shown, bundle, policy))
        student_nb = None
        if res.executed:  # the instructor's copy, every output; the student's copy beside the feedback
            write_text_atomic(out / "executed" / f"{stem}.ipynb", res.executed)
            student_nb = returned.student_copy(res.executed, hidden)
            write_text_atomic(out / "feedback" / f"{stem}.ipynb", student_nb)
        title = f"{bundle['name']}: feedback for {res.student}"
        lines = summary_lines(shown, bundle, policy)
        try:
            html_page = feedback_html.page(student_nb, shown, lines, title)
        except Exception as exc:  # noqa: BLE001 - one student's page never stops the class: the summary alone
            html_page = feedback_html.page(
                None, shown, [*lines, f"(the notebook could not be shown: {type(exc).__name__})"], title
            )
        write_text_atomic(out / "feedback" / f"{stem}.html", html_page)
    data = summary(results, bundle, header, marks, version)
    if shard is not None:
        write_text_atomic(
            out / "shards" / f"{shard['shard']}-of-{shard['of']}.json", json.dumps({**data, **shard}, indent=1) + "\n"
        )
        return
    shown = [manual.with_marks(r, marks.get(r.student)) for r in results]
    write_text_atomic(out / "grades.csv", grades_csv(shown))
    write_text_atomic(out / "summary.json", json.dumps(data, indent=1) + "\n")
