"""Gradebook files that an LMS imports, from a graded output folder (`course-lib grade --export FORMAT`).

A roster (CSV) maps each submission's name to the student's identifiers in the LMS:

    student,name,email,lms_id,sis_id,login,section
    alice,"Liddell, Alice",alice@uni.example,1234,S001,aliddell,Section A

Only `student` (the submission's name: its file or folder name) is required, plus the identifier the format
matches on. Students in the roster without a submission get 0 (`--missing zero`, the default) or an empty
cell (`--missing blank`, which leaves the LMS's grade as it is); a graded submission that is not in the roster,
or a roster naming a student twice, is an error (nothing is written). Without a roster the submission names are
the identifiers (the login, and the SIS id). Each file has one column for this assignment, with the total after
manual marks and the late penalty; the formats, as the LMSs document them:

- `canvas`: Canvas's Gradebook import (Grades > Import): columns `Student, ID, SIS User ID, SIS Login ID,
  Section` then one column per assignment (a header that matches no existing assignment creates one), and a
  second row `Points Possible` with the assignment's maximum. Canvas matches rows on ID, SIS User ID or
  SIS Login ID: the roster needs `lms_id`, `sis_id` or `login`.
- `gradescope`: the columns of Gradescope's assignment score export, which its score import reads back:
  `First Name, Last Name, SID, Email, Total Score, Max Points, Status, Lateness (H:M:S)`; Gradescope matches
  on Email or SID: the roster needs `email` or `sis_id`. Status is `Graded` or `Missing`.
- `moodle`: Moodle's grade import from CSV (Grades > Import > CSV file): a header row; at import, map the
  identifier column (`Email address` to email, `ID number` to ID number or `Username` to username) and the
  grade column `Assignment: NAME (Real)` to the grade item, `Assignment: NAME (Feedback)` to its feedback. The
  grade item's maximum is set in Moodle, not in the file; the roster needs `email`, `sis_id` or `login`.
- `csv`: everything, one row per student: identifiers, automatic and manual points, the cells still to mark,
  lateness, penalty, total and maximum.

Every cell that starts with = + - @ is prefixed with a quote, so that no spreadsheet runs it as a formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .markup import AssignmentError

FORMATS = ("canvas", "gradescope", "moodle", "csv")
ROSTER_COLUMNS = ("student", "name", "email", "lms_id", "sis_id", "login", "section")
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
GRADESCOPE_COLUMNS = [
    "First Name",
    "Last Name",
    "SID",
    "Email",
    "Total Score",
    "Max Points",
    "Status",
    "Lateness (H:M:S)",
]
MOODLE_FIXED = ["First name", "Last name", "ID number", "Username", "Email address"]
CSV_COLUMNS = [
    "student",
    "name",
    "email",
    "lms_id",
    "sis_id",
    "auto_points",
    "manual_points",
    "unmarked",
    "submitted_at",
    "days_late",
    "late_penalty",
    "accepted",
    "total",
    "max_points",
    "status",
]
NEEDS = {
    "canvas": ("lms_id", "sis_id", "login"),
    "gradescope": ("email", "sis_id"),
    "moodle": ("email", "sis_id", "login"),
}


@dataclass
class Row:
    """One student's line in the gradebook (`row_of`)."""

    student: str
    auto: float
    manual: float
    unmarked: list
    total: float  # after the late penalty
    max_points: float  # automatic and manual together
    status: str  # graded | grader failure | not accepted
    submitted_at: str = ""
    days_late: int = 0
    seconds_late: float = 0.0
    penalty: float = 0.0
    accepted: bool = True
    late_hms: str = "0:00:00"
    feedback: str = ""  # one line


def row_of(res, bundle: dict, policy) -> Row:
    """A student's gradebook line from their result (manual marks already in it) and the late policy."""
    from .late import standing

    got = standing(res, bundle, policy)
    status = "not accepted" if not got["accepted"] else res.status
    note = f"; {got['late_note']}" if got["late_note"] else ""
    todo = f"; still to be marked: {', '.join(got['unmarked'])}" if got["unmarked"] else ""
    return Row(
        student=res.student,
        auto=got["auto_points"],
        manual=got["manual_points"],
        unmarked=got["unmarked"],
        total=got["total"],
        max_points=got["total_max"],
        status=status,
        submitted_at=res.submitted_at,
        days_late=got["days_late"],
        seconds_late=got["seconds_late"],
        penalty=got["late_penalty"],
        accepted=got["accepted"],
        late_hms=got["lateness"],
        feedback=f"{got['total']:g} / {got['total_max']:g}{note}{todo}",
    )


def read_roster(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AssignmentError(f"cannot read the roster {path}: {exc.strerror or exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    if "student" not in (reader.fieldnames or []):
        raise AssignmentError(
            f"the roster {path} has no 'student' column (the submission's name); columns: {', '.join(ROSTER_COLUMNS)}"
        )
    rows, seen = [], {}
    for line, raw in enumerate(reader, start=2):
        row = {k: (raw.get(k) or "").strip() for k in ROSTER_COLUMNS}
        if not row["student"]:
            raise AssignmentError(f"{path.name} line {line}: the student column is empty")
        if row["student"] in seen:
            raise AssignmentError(
                f"{path.name} line {line}: student {row['student']!r} is already on line {seen[row['student']]}"
            )
        seen[row["student"]] = line
        rows.append(row)
    for key in ("lms_id", "sis_id", "email", "login"):
        values = [r[key] for r in rows if r[key]]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise AssignmentError(f"{path.name}: {key} {twice[0]!r} belongs to more than one student")
    return rows


def _split_name(name: str) -> tuple[str, str]:
    """(first, last) from "Last, First" or "First Last"."""
    if "," in name:
        last, first = (p.strip() for p in name.split(",", 1))
        return first, last
    parts = name.split()
    return (" ".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (name, "")


def _safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(x: float) -> str:
    return f"{round(x, 4):g}"


def entries(rows: list[Row], roster: list[dict] | None, missing: str) -> list[tuple[dict, Row | None]]:
    """(roster row, graded row or None) for every student; errors for graded students missing from the roster."""
    if missing not in ("zero", "blank"):
        raise AssignmentError(f"--missing must be zero or blank, got {missing!r}")
    graded = {r.student: r for r in rows}
    if roster is None:  # the submission names are the LMS's logins (and SIDs)
        roster = [{k: "" for k in ROSTER_COLUMNS} | {"student": s, "login": s, "sis_id": s} for s in sorted(graded)]
    known = {r["student"] for r in roster}
    unknown = sorted(set(graded) - known)
    if unknown:
        raise AssignmentError(
            f"{len(unknown)} graded submission(s) are not in the roster, e.g. {unknown[0]!r}; add them "
            "(student column = the submission's name) so that no grade is lost"
        )
    return [(r, graded.get(r["student"])) for r in roster]


def _score(row: Row | None, missing: str) -> str:
    if row is None:
        return "0" if missing == "zero" else ""
    return _num(row.total)


def export_text(fmt: str, rows: list[Row], bundle: dict, roster: list[dict] | None, missing: str = "zero") -> str:
    if fmt not in FORMATS:
        raise AssignmentError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    pairs = entries(rows, roster, missing)
    if roster is not None and fmt in NEEDS:
        have = [k for k in NEEDS[fmt] if all(r[k] for r, _ in pairs)]
        if not have:
            raise AssignmentError(
                f"{fmt} matches students on {' or '.join(NEEDS[fmt])}: the roster needs one of these columns filled "
                "in for every student"
            )
    max_points = float(bundle["max_points"]) + float(bundle.get("manual_points", 0.0))
    name = bundle["name"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if fmt == "canvas":
        writer.writerow(CANVAS_FIXED + [name])
        writer.writerow(["    Points Possible", "", "", "", "", _num(max_points)])
        for r, row in pairs:
            writer.writerow(
                [_safe(v) for v in (r["name"] or r["student"], r["lms_id"], r["sis_id"], r["login"], r["section"])]
                + [_score(row, missing)]
            )
    elif fmt == "gradescope":
        writer.writerow(GRADESCOPE_COLUMNS)
        for r, row in pairs:
            first, last = _split_name(r["name"] or r["student"])
            status = "Missing" if row is None else "Graded"
            late = "0:00:00" if row is None else row.late_hms
            writer.writerow(
                [_safe(v) for v in (first, last, r["sis_id"], r["email"])]
                + [_score(row, missing), _num(max_points), status, late]
            )
    elif fmt == "moodle":
        writer.writerow(MOODLE_FIXED + [f"Assignment: {name} (Real)", f"Assignment: {name} (Feedback)"])
        for r, row in pairs:
            first, last = _split_name(r["name"] or r["student"])
            login = r["login"]
            feedback = "no submission" if row is None else row.feedback
            writer.writerow(
                [_safe(v) for v in (first, last, r["sis_id"], login, r["email"])]
                + [_score(row, missing), _safe(feedback)]
            )
    else:
        writer.writerow(CSV_COLUMNS)
        for r, row in pairs:
            ids = [_safe(r[k]) for k in ("student", "name", "email", "lms_id", "sis_id")]
            if row is None:
                writer.writerow(
                    ids + ["", "", "", "", "", "", "", _score(None, missing), _num(max_points), "no submission"]
                )
                continue
            writer.writerow(
                ids
                + [
                    _num(row.auto),
                    _num(row.manual),
                    " ".join(row.unmarked),
                    row.submitted_at,
                    str(row.days_late),
                    _num(row.penalty),
                    "yes" if row.accepted else "no",
                    _num(row.total),
                    _num(max_points),
                    row.status,
                ]
            )
    return buf.getvalue()
