"""nbgrader's markup: solution and hidden-test regions, and the cell metadata that says what is graded.

A source notebook is written once, with everything in it (nbgrader's conventions, so the same file
works with nbgrader itself):

- a *solution cell* (metadata ``nbgrader.solution = true``) holds the answer between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``; the student version keeps the rest of the cell and
  puts ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (markdown: ``YOUR ANSWER HERE``) in
  its place. A solution cell without a region is replaced whole.
- a *test cell* (``grade = true``, ``solution = false``, code) is worth ``points`` when it runs without
  an error. Lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are removed from the
  student version and put back for grading.
- a *manually graded answer* (``grade = true`` and ``solution = true``) or a *task* (``task = true``,
  markdown) is marked by a person; the autograder lists it as "needs manual grading".
- a *locked* cell (``locked = true``) must not be edited; at grading time the original is used.

Every graded, solution or locked cell has a ``grade_id`` (letters, digits, ``_`` and ``-``), unique in
the notebook (nbgrader's cell metadata schema, version 3). This module parses and validates that
markup and turns source cells into student and grading cells; it does not execute anything.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass

from course_lib.core.errors import CourseLibError

BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
SCHEMA_VERSION = 3
# nbgrader's schema v3 (nbgrader/nbgraderformat/v3.json): these keys and no others.
METADATA_KEYS = {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points", "checksum", "cell_type"}
GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]*$")
# course_lib's own cell metadata (nbgrader ignores other namespaces): {"course_lib": {"checker": true}} on a
# read-only cell (imports, settings, helpers) makes the grader's checker run it too, before the test cells.
OWN_KEY = "course_lib"


class AssignmentError(CourseLibError):
    """A source or student notebook's nbgrader markup is malformed."""


@dataclass(frozen=True)
class CellKind:
    """What a cell is for grading, from its nbgrader metadata."""

    solution: bool = False
    grade: bool = False
    locked: bool = False
    task: bool = False

    @property
    def name(self) -> str:
        if self.task:
            return "task"
        if self.grade and self.solution:
            return "manual"
        if self.grade:
            return "test"
        if self.solution:
            return "solution"
        if self.locked:
            return "locked"
        return "plain"

    @property
    def autograded(self) -> bool:
        return self.name == "test"

    @property
    def manual(self) -> bool:
        return self.name in ("manual", "task")


def source_of(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def kind_of(cell) -> CellKind:
    meta = nbgrader_meta(cell)
    return CellKind(
        bool(meta.get("solution")), bool(meta.get("grade")), bool(meta.get("locked")), bool(meta.get("task"))
    )


def grade_id_of(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id") or None


def checker_cell(cell) -> bool:
    own = cell.get("metadata", {}).get(OWN_KEY)
    return bool(isinstance(own, dict) and own.get("checker"))


def checksum(text: str) -> str:
    """A fingerprint of a cell's source that ignores trailing whitespace (what an edit check needs)."""
    normal = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.md5(normal.encode()).hexdigest()


def _where(cell, index: int) -> str:
    gid = grade_id_of(cell)
    return f"cell {index + 1}" + (f" ({gid})" if gid else "")


def validate_metadata(cell, index: int = 0) -> None:
    """Check one cell's nbgrader metadata against nbgrader's schema v3 and its rules; AssignmentError if not."""
    if "nbgrader" not in cell.get("metadata", {}):
        return
    where = _where(cell, index)
    meta = cell["metadata"]["nbgrader"]
    if not isinstance(meta, dict):
        raise AssignmentError(f"{where}: metadata 'nbgrader' must be a mapping")
    unknown = sorted(set(meta) - METADATA_KEYS)
    if unknown:
        raise AssignmentError(
            f"{where}: unknown nbgrader metadata key(s) {', '.join(unknown)} "
            f"(schema v3 allows {', '.join(sorted(METADATA_KEYS))})"
        )
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise AssignmentError(
            f"{where}: nbgrader schema_version must be {SCHEMA_VERSION}, got {meta.get('schema_version')!r}"
        )
    for key in ("grade", "solution", "locked"):
        if not isinstance(meta.get(key), bool):
            raise AssignmentError(f"{where}: nbgrader metadata needs '{key}' as true/false, got {meta.get(key)!r}")
    if "task" in meta and not isinstance(meta["task"], bool):
        raise AssignmentError(f"{where}: nbgrader 'task' must be true/false, got {meta['task']!r}")
    kind = kind_of(cell)
    if kind.grade or kind.solution or kind.locked or kind.task:
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or not gid or not GRADE_ID.match(gid):
            raise AssignmentError(f"{where}: needs a grade_id made of letters, digits, '_' and '-', got {gid!r}")
    if kind.grade or kind.task:
        points = meta.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise AssignmentError(f"{where}: a graded cell needs 'points' (a number >= 0), got {points!r}")
    if kind.task:
        if cell.get("cell_type") != "markdown":
            raise AssignmentError(f"{where}: task cells must be markdown")
    elif cell.get("cell_type") == "markdown" and kind.grade != kind.solution:
        raise AssignmentError(
            f"{where}: a markdown answer must be both a solution and a grade cell (a manually graded answer)"
        )


def validate_notebook(nb) -> None:
    """Validate every cell's metadata and check that grade_ids are unique."""
    seen: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        validate_metadata(cell, i)
        if checker_cell(cell) and (kind_of(cell).name != "locked" or cell.get("cell_type") != "code"):
            raise AssignmentError(
                f"{_where(cell, i)}: only read-only code cells (nbgrader locked: true, not graded) can be checker cells"
            )
        if isinstance(cell.get("metadata", {}).get(OWN_KEY), dict) and "fresh_kernel" in cell.metadata[OWN_KEY]:
            raise AssignmentError(
                f"{_where(cell, i)}: 'fresh_kernel' is gone: every check now runs outside the "
                'student\'s kernel; mark shared setup cells {"checker": true} instead'
            )
        kind = kind_of(cell)
        if kind.name == "plain":
            continue
        gid = grade_id_of(cell)
        if gid in seen:
            raise AssignmentError(f"grade_id {gid!r} is used by cells {seen[gid] + 1} and {i + 1}; ids must be unique")
        seen[gid] = i


def _replace_regions(text: str, begin: str, end: str, stub: list[str] | None, where: str) -> tuple[str, bool]:
    """Replace each begin..end region (marker lines included) by `stub` lines at the marker's indent,
    or drop it when stub is None. Returns (new text, whether a region was found)."""
    out, inside, found = [], False, False
    for line in text.split("\n"):
        if begin in line:
            if inside:
                raise AssignmentError(f"{where}: '### {begin}' inside another one; close it with '### {end}' first")
            inside, found = True, True
            indent = re.match(r"\s*", line).group(0)
            out.extend(indent + s for s in (stub or []))
        elif end in line:
            if not inside:
                raise AssignmentError(f"{where}: '### {end}' without a matching '### {begin}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise AssignmentError(f"{where}: '### {begin}' is never closed by '### {end}'")
    return "\n".join(out), found


def strip_solutions(cell, index: int = 0) -> str:
    """The cell's source with its solution regions replaced by the stub (nbgrader's ClearSolutions)."""
    where = _where(cell, index)
    stub = CODE_STUB if cell.get("cell_type") == "code" else TEXT_STUB
    text, found = _replace_regions(source_of(cell), BEGIN_SOLUTION, END_SOLUTION, stub.split("\n"), where)
    kind = kind_of(cell)
    if found and not kind.solution:
        raise AssignmentError(
            f"{where}: a '### {BEGIN_SOLUTION}' region in a cell not marked as a solution cell; "
            "mark it (nbgrader metadata solution: true) or remove the markers"
        )
    if kind.solution and not found:
        text = stub  # a solution cell without a region is the solution as a whole
    return text


def strip_hidden_tests(cell, index: int = 0, text: str | None = None) -> str:
    """The source without its hidden-test regions (nbgrader's ClearHiddenTests)."""
    where = _where(cell, index)
    text, found = _replace_regions(source_of(cell) if text is None else text, BEGIN_HIDDEN, END_HIDDEN, None, where)
    if found and not kind_of(cell).grade:
        raise AssignmentError(f"{where}: a '### {BEGIN_HIDDEN}' region in a cell that is not a test (grade) cell")
    return text


def student_cell(cell, index: int = 0):
    """The student version of a source cell: no solutions, no hidden tests, no outputs."""
    new = copy.deepcopy(cell)
    strip_hidden_tests(cell, index)  # checks the hidden-test markup of the cell as written
    new["source"] = strip_hidden_tests(cell, index, strip_solutions(cell, index))
    if new.get("cell_type") == "code":
        new["outputs"], new["execution_count"] = [], None
    new.get("metadata", {}).pop("execution", None)
    return new


def bound_names(source: str) -> list[str]:
    """The names a code cell binds at the top level (functions, classes, variables), sorted; [] if it does not parse."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
    return sorted(names)


def grading_source(cell, index: int = 0) -> str:
    """What the grader runs for a test cell: solutions stubbed (there should be none), hidden tests kept."""
    return strip_solutions(cell, index)
