"""`course-lib student-edition`: the students' notebooks, generated from the instructors' ones.

The lecture notebooks are written once, in ``solutions/`` (the instructor edition): each exercise is an
nbgrader solution cell whose answer sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``. The
student edition in ``notebooks/`` (where students open the course) is generated from it with
`course_lib.grading.markup.student_cell`, the same rule `course-lib assign` applies to the graded
assignments: each answer becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError()``, outputs are
cleared, everything else is copied. The exercise's check cell then says "not done yet" and the rest of the
notebook goes on with course_lib's reference implementation (see `course_lib.course.exercises`).

The student edition must not give the answers away (`answer_leaks`, part of `problems`): no non-trivial line of
a solution body may appear anywhere in it (code or markdown, spaces ignored), and a check cell is only
``from course_lib.course.exercises import check`` and ``check("name")``: the cases, the reference and the
mistake models a check uses are registered in `course_lib.course.exercise_bank`, not written in the notebook.

A notebook without exercises (00, 09) has no instructor edition: it lives in ``notebooks/`` only, and must
not contain solution markup. This module lives in the CLI layer because it uses the grading layer's
markup rules (one place for them).
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import nbformat

from course_lib.core.errors import CourseLibError
from course_lib.core.io import write_text_atomic
from course_lib.core.runtime import REPO_ROOT
from course_lib.grading import markup

SOURCE_DIR = REPO_ROOT / "solutions"
STUDENT_DIR = REPO_ROOT / "notebooks"
EDITION_KEY = "course_lib"  # notebook metadata: {"course_lib": {"edition": "student", "source": ...}}


def _read(path: Path):
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook is the same problem for the user
        raise CourseLibError(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})") from exc


def _text(nb) -> str:
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def student_notebook(source_nb, source_name: str):
    """The student edition of one instructor notebook (a new notebook object)."""
    try:
        markup.validate_notebook(source_nb)
        cells = [markup.student_cell(cell, i) for i, cell in enumerate(source_nb.cells)]
    except markup.AssignmentError as exc:
        raise CourseLibError(f"{source_name}: {exc}") from exc
    student = nbformat.v4.new_notebook(metadata=dict(source_nb.metadata))
    student.metadata[EDITION_KEY] = {
        **dict(source_nb.metadata.get(EDITION_KEY, {})),
        "edition": "student",
        "source": source_name,
    }
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.setdefault("id", f"cell-{i}")  # the source's id when it has one: generating twice gives the same file
    student.cells = cells
    return nbformat.from_dict(student)


TRIVIAL_ANSWER_CHARS = 12  # answer lines shorter than this without spaces ("return r", "r = 1") say nothing


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_lines(source_nb) -> list[str]:
    """The non-trivial lines of the notebook's solution bodies, comments and spaces removed."""
    lines = []
    for cell in source_nb.cells:
        inside = False
        for line in markup.source_of(cell).split("\n"):
            if markup.BEGIN_SOLUTION in line or markup.END_SOLUTION in line:
                inside = markup.BEGIN_SOLUTION in line
                continue
            code = _squeezed(line.split(" #")[0] if not line.lstrip().startswith("#") else "")
            if inside and len(code) >= TRIVIAL_ANSWER_CHARS:
                lines.append(code)
    return lines


def is_check_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and re.search(r"(^|\W)check\(", markup.source_of(cell)) is not None


def check_cell_problem(source: str) -> str | None:
    """Why a check cell shows more than it should (None if it is only the import and check("name") calls)."""
    try:
        body = ast.parse(source).body
    except SyntaxError as exc:
        return f"does not parse ({exc.msg})"
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return "defines a function, lambda or class (the cases and mistakes belong in the exercise bank)"
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        if not (
            isinstance(call, ast.Call)
            and getattr(call.func, "id", None) == "check"
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
            and not call.keywords
        ):
            return f'line {node.lineno} is not an import or check("exercise name")'
    return None


def answer_leaks(source_nb, student_nb) -> list[str]:
    """Where the student edition shows an answer: solution lines found in it, check cells that show more than
    the check. One line each; empty when the student edition gives nothing away."""
    found = []
    answers = solution_lines(source_nb)
    for i, cell in enumerate(student_nb.cells):
        text = _squeezed(markup.source_of(cell))
        for line in answers:
            if line in text:
                found.append(f"cell {i + 1} ({cell.get('cell_type')}) contains the answer line {line!r}")
        if is_check_cell(cell):
            why = check_cell_problem(markup.source_of(cell))
            if why:
                found.append(f"check cell {i + 1} {why}")
    return found


def _sources(source_dir: Path) -> list[Path]:
    found = sorted(source_dir.glob("*.ipynb"))
    if not found:
        raise CourseLibError(f"no instructor notebooks (*.ipynb) in {source_dir}")
    return found


def expected_student_texts(source_dir: Path = SOURCE_DIR) -> dict[str, str]:
    """{file name: the student edition's text} for every instructor notebook."""
    texts = {}
    for path in _sources(source_dir):
        texts[path.name] = _text(student_notebook(_read(path), f"{source_dir.name}/{path.name}"))
    return texts


def problems(source_dir: Path = SOURCE_DIR, student_dir: Path = STUDENT_DIR) -> list[str]:
    """What is out of date or misplaced: one line each; empty when the student edition is current."""
    found = []
    expected = expected_student_texts(source_dir)
    for name, text in expected.items():
        target = student_dir / name
        if not target.is_file():
            found.append(f"{target} is missing")
        elif target.read_text(encoding="utf-8") != text:
            found.append(f"{target} differs from what {source_dir.name}/{name} generates")
        source_nb = _read(source_dir / name)
        student_nb = nbformat.reads(text, as_version=4)
        found += [f"{target}: {leak}" for leak in answer_leaks(source_nb, student_nb)]
    for path in sorted(student_dir.glob("*.ipynb")):
        if path.name in expected:
            continue
        nb = _read(path)
        if any(markup.kind_of(c).solution or markup.BEGIN_SOLUTION in markup.source_of(c) for c in nb.cells):
            found.append(
                f"{path} has solution cells but no instructor edition {source_dir.name}/{path.name}: "
                f"move it there and generate the student edition"
            )
    return found


def write_student_edition(source_dir: Path = SOURCE_DIR, student_dir: Path = STUDENT_DIR) -> list[Path]:
    """Write the student edition of every instructor notebook; returns the files that changed."""
    changed = []
    for name, text in expected_student_texts(source_dir).items():
        target = student_dir / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            write_text_atomic(target, text)
            changed.append(target)
    return changed


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "student-edition",
        help="write the students' notebooks (exercises blank) from the instructors' ones",
        description="Read the instructor edition (solutions/*.ipynb, exercises in nbgrader's markup: "
        "### BEGIN SOLUTION / ### END SOLUTION) and write the student edition to notebooks/: "
        "each answer replaced by `raise NotImplementedError()`, outputs cleared. With --check, "
        "write nothing and exit 1 when the student edition is out of date or gives an answer away (a line of a "
        'solution in it, or a check cell that is more than check("name")).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder of the instructor notebooks")
    parser.add_argument("--out", type=Path, default=STUDENT_DIR, help="folder of the student notebooks")
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.check:
        found = problems(args.source, args.out)
        for line in found:
            print(line)
        print(
            "student edition is up to date"
            if not found
            else f"{len(found)} problem(s): run `course-lib student-edition` (edit the notebooks in {args.source})"
        )
        return 1 if found else 0
    changed = write_student_edition(args.source, args.out)
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(changed)} student notebook(s) updated" if changed else "student edition already up to date")
    leftover = [p for p in problems(args.source, args.out) if "differs" not in p and "missing" not in p]
    for line in leftover:
        print(line)
    return 1 if leftover else 0
