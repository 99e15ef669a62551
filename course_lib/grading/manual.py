"""Points that a person gives: written answers (nbgrader's `grade: true, solution: true` cells) and tasks.

`course-lib grade --assignment A --out OUT --manual FILE` with no FILE yet writes it: one row per student and
manually graded cell to mark (`student, cell, max_points, points, comment`), with the marks given so far. The
instructor fills in `points` (and a comment, which the student sees) and runs the same command again to merge it;
a YAML file (FILE.yaml) with a list of the same mappings works too. A file naming a student or cell that does
not exist, points that are not a number, negative or above the cell's maximum, or a cell twice is refused as a
whole, with the first bad line. Merged marks are kept in OUT/manual.json, apart from the autograder's results,
so grading the class again never overwrites them; a row with empty points leaves a cell as it was. The summary
lists, per student, the cells still unmarked.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path

from ..core.io import write_text_atomic
from .markup import AssignmentError

MARKING_COLUMNS = ["student", "cell", "max_points", "points", "comment"]
STORE = "manual.json"
MAX_COMMENT = 2000


def manual_cells(bundle: dict) -> dict[str, float]:
    """grade_id -> max points of the cells a person grades."""
    return {c["grade_id"]: float(c["points"]) for c in bundle["cells"] if c["kind"] in ("manual", "task")}


def _read_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AssignmentError(f"cannot read the marking file {path}: {exc.strerror or exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # only for YAML marking files

        try:
            rows = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AssignmentError(f"the marking file {path} is not valid YAML: {exc}") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise AssignmentError(
                f"the marking file {path} must be a list of mappings (student, cell, points, comment)"
            )
        return [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
    reader = csv.DictReader(io.StringIO(text))
    missing = {"student", "cell", "points"} - set(reader.fieldnames or [])
    if missing:
        raise AssignmentError(
            f"the marking file {path} has no column(s) {sorted(missing)}; its first line must name "
            f"{', '.join(MARKING_COLUMNS)}"
        )
    return list(reader)


def read_marking_file(path: str | Path, bundle: dict, students) -> dict[str, dict[str, dict]]:
    """{student: {cell: {"points", "comment"}}} from a filled-in marking file; AssignmentError naming the first bad
    line (unknown student or cell, points that are not a number, negative or above the cell's maximum, a cell
    given twice)."""
    path = Path(path)
    cells = manual_cells(bundle)
    marks: dict[str, dict[str, dict]] = {}
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(_read_rows(path), start=2):
        student, cell = (row.get("student") or "").strip(), (row.get("cell") or "").strip()
        raw = (row.get("points") or "").strip()
        where = f"{path.name} line {line}"
        if student not in students:
            problems.append(f"{where}: no graded submission of {student!r} in this output folder")
            continue
        if cell not in cells:
            problems.append(
                f"{where}: {cell!r} is not a manually graded cell of {bundle['name']} "
                f"(those are: {', '.join(sorted(cells)) or 'none'})"
            )
            continue
        if (student, cell) in seen:
            problems.append(f"{where}: {student}'s cell {cell} is given twice")
            continue
        seen.add((student, cell))
        if not raw:
            continue  # not marked yet
        try:
            points = float(raw)
        except ValueError:
            problems.append(f"{where}: points {raw!r} is not a number")
            continue
        if not math.isfinite(points) or points < 0 or points > cells[cell]:
            problems.append(f"{where}: {points:g} points for {cell}, whose maximum is {cells[cell]:g}")
            continue
        comment = " ".join(str(row.get("comment") or "").split())[:MAX_COMMENT]
        marks.setdefault(student, {})[cell] = {"points": points, "comment": comment}
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise AssignmentError(f"{problems[0]}{more}; nothing was merged")
    return marks


def load_marks(out: Path) -> dict[str, dict[str, dict]]:
    path = out / STORE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))["marks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AssignmentError(
            f"{path} is unreadable ({exc}); restore it or delete it and merge the marks again"
        ) from exc


def merge_marks(out: Path, bundle: dict, new: dict[str, dict[str, dict]]) -> int:
    """Add `new` marks to OUT/manual.json (a later mark for the same cell replaces the earlier). Returns the count."""
    marks = load_marks(out)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    count = 0
    for student, cells in new.items():
        for cell, mark in cells.items():
            marks.setdefault(student, {})[cell] = {**mark, "marked_at": now}
            count += 1
    write_text_atomic(out / STORE, json.dumps({"assignment": bundle["name"], "marks": marks}, indent=1) + "\n")
    return count


def with_marks(res, marks: dict[str, dict] | None):
    """A copy of a student's result with their manual marks in it."""
    import copy

    res = copy.deepcopy(res)
    apply_marks(res, marks or {})
    return res


def apply_marks(res, marks: dict[str, dict]) -> None:
    """Put a student's manual marks into their question results (in place)."""
    for q in res.questions:
        mark = marks.get(q.question)
        if q.kind in ("manual", "task") and mark is not None:
            q.points, q.status, q.message = float(mark["points"]), "graded by hand", mark.get("comment", "")


def unmarked(res) -> list[str]:
    return [q.question for q in res.questions if q.kind in ("manual", "task") and q.points is None]


def marking_csv(results, marks: dict[str, dict[str, dict]], bundle: dict) -> str:
    """The marking file to fill in: one row per student and manually graded cell that has something to mark."""
    cells = manual_cells(bundle)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MARKING_COLUMNS)
    for res in results:
        own = marks.get(res.student, {})
        for q in res.questions:
            if q.question not in cells or (q.status != "manual" and q.question not in own):
                continue  # left as the stub (0, as nbgrader does), or the submission was not run
            mark = own.get(q.question, {})
            points = "" if "points" not in mark else f"{mark['points']:g}"
            writer.writerow([res.student, q.question, f"{cells[q.question]:g}", points, mark.get("comment", "")])
    return buf.getvalue()


def marking_text(results, marks: dict[str, dict[str, dict]], bundle: dict, path: Path) -> str:
    """The marking file to fill in, as CSV, or as YAML for a .yaml/.yml path."""
    text = marking_csv(results, marks, bundle)
    if Path(path).suffix.lower() not in (".yaml", ".yml"):
        return text
    import yaml  # only for YAML marking files

    rows = list(csv.DictReader(io.StringIO(text)))
    return yaml.safe_dump([{**r, "points": r["points"] or None} for r in rows], sort_keys=False, allow_unicode=True)
