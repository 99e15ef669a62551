"""`course-lib assign`: student versions and a grading bundle from source notebooks.

For a source notebook NAME.ipynb this writes

    OUT/student/NAME.ipynb   what students get: solutions replaced by stubs, hidden tests removed,
                             outputs cleared, test and locked cells marked read-only and undeletable;
    OUT/grading/NAME.json    the grading bundle: every graded, solution and locked cell with the source
                             the grader runs (hidden tests included), its points, and a checksum of the
                             student version so edits to locked cells can be detected.

The bundle holds the hidden tests, so it is for instructors only (the solutions are not in it).
Grading settings come from the source notebook's metadata, e.g.
``{"course_lib": {"grading": {"cell_timeout": 300, "total_timeout": 1800}}}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.io import write_text_atomic
from . import markup

BUNDLE_FORMAT = "course_lib.grading/2"  # 2: checks run in the checker, not the kernel
DEFAULT_CELL_TIMEOUT = 300  # seconds one cell may run
DEFAULT_TOTAL_TIMEOUT = 1800  # seconds a whole submission may run


def read_notebook(path: str | os.PathLike):
    """Read a notebook with nbformat, or AssignmentError naming the file and the problem."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise markup.AssignmentError(f"no notebook at {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:
        raise markup.AssignmentError(f"{path} is not a readable notebook: {type(exc).__name__}: {exc}") from exc


def write_notebook_atomic(nb, path: Path) -> Path:
    import nbformat

    return write_text_atomic(path, nbformat.writes(nb) + "\n")


def student_notebook(source_nb):
    """The student version of a validated source notebook."""
    import nbformat

    markup.validate_notebook(source_nb)
    nb = nbformat.from_dict(json.loads(json.dumps(source_nb)))  # a deep, plain copy
    nb.cells = [markup.student_cell(cell, i) for i, cell in enumerate(source_nb.cells)]
    for cell in nb.cells:
        kind = markup.kind_of(cell)
        if kind.locked or kind.name == "test":
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    return nb


def make_bundle(source_nb, name: str) -> dict:
    """The grading bundle (a JSON-able dict) of a validated source notebook."""
    markup.validate_notebook(source_nb)
    settings = source_nb.metadata.get(markup.OWN_KEY, {}).get("grading", {})
    cells = []
    for i, cell in enumerate(source_nb.cells):
        kind = markup.kind_of(cell)
        if kind.name == "plain":
            continue
        student = markup.student_cell(cell, i)
        cells.append(
            {
                "grade_id": markup.grade_id_of(cell),
                "kind": kind.name,
                "locked": kind.locked or kind.name == "test",
                "cell_type": cell.cell_type,
                "points": float(markup.nbgrader_meta(cell).get("points", 0)) if (kind.grade or kind.task) else 0.0,
                "source": markup.grading_source(cell, i),
                "student_source": markup.source_of(student),
                "student_checksum": markup.checksum(markup.source_of(student)),
                "checker": markup.checker_cell(cell),
                # what the answer defines (from the solution): the names the checker stands placeholders in for
                "answers": markup.bound_names(markup.source_of(cell))
                if kind.solution and cell.cell_type == "code"
                else [],
                # opt-in points per case (issue 32); the key only where it is on, so older bundles stay as they are
                **({"partial_credit": True} if kind.name == "test" and _partial_credit(cell) else {}),
            }
        )
    if not any(c["kind"] in ("test", "manual", "task") for c in cells):
        raise markup.AssignmentError(f"{name}: no graded cells (nbgrader metadata grade: true or task: true)")
    return {
        "format": BUNDLE_FORMAT,
        "name": name,
        "notebook": f"{name}.ipynb",
        "cell_timeout": int(settings.get("cell_timeout", DEFAULT_CELL_TIMEOUT)),
        "total_timeout": int(settings.get("total_timeout", DEFAULT_TOTAL_TIMEOUT)),
        "max_points": sum(c["points"] for c in cells if c["kind"] == "test"),
        "manual_points": sum(c["points"] for c in cells if c["kind"] in ("manual", "task")),
        "cells": cells,
        **({"late_policy": _late_policy(settings, name)} if settings.get("late_policy") is not None else {}),
    }


def _partial_credit(cell) -> bool:
    own = cell.metadata.get(markup.OWN_KEY, {})
    return isinstance(own, dict) and own.get("partial_credit") is True


def _late_policy(settings: dict, name: str) -> dict:
    from .late import LatePolicy

    return LatePolicy.from_dict(settings["late_policy"], f"{name}: late_policy").to_dict()


def assign(sources: list[str | os.PathLike], out: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Write OUT/student/NAME.ipynb and OUT/grading/NAME.json for each source. Returns the pairs written.

    Everything is checked before anything is written, so a bad source leaves OUT untouched.
    """
    out = Path(out)
    prepared = []
    names: dict[str, Path] = {}
    for src in sources:
        src = Path(src)
        name = src.stem
        if name in names:
            raise markup.AssignmentError(f"{src} and {names[name]} have the same name {name!r}; rename one")
        names[name] = src
        nb = read_notebook(src)
        try:
            prepared.append((name, student_notebook(nb), make_bundle(nb, name)))
        except markup.AssignmentError as exc:
            raise markup.AssignmentError(f"{src}: {exc}") from None
    written = []
    for name, student, bundle in prepared:
        nb_path = write_notebook_atomic(student, out / "student" / f"{name}.ipynb")
        bundle_path = write_text_atomic(out / "grading" / f"{name}.json", json.dumps(bundle, indent=1) + "\n")
        written.append((nb_path, bundle_path))
    return written


def load_bundle(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise markup.AssignmentError(f"cannot read grading bundle {path}: {exc}") from exc
    if (
        isinstance(bundle, dict)
        and str(bundle.get("format", "")).startswith("course_lib.grading/")
        and bundle.get("format") != BUNDLE_FORMAT
    ):
        raise markup.AssignmentError(
            f"{path} was made by another version of course-lib ({bundle['format']}); "
            "run `course-lib assign` on the source notebook again"
        )
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise markup.AssignmentError(f"{path} is not a course-lib grading bundle (made by `course-lib assign`)")
    return bundle


def find_bundle(assignment: str, search: list[str | os.PathLike] | None = None) -> Path:
    """The bundle for `assignment`: a bundle file, a folder `course-lib assign` wrote, or a name looked up
    under ./assignments/*/grading/ (the course's checkout, where instructors run the grader)."""
    given = Path(assignment)
    if given.suffix == ".json" and given.is_file():
        return given
    if given.is_dir():
        found = sorted((given / "grading").glob("*.json")) or sorted(given.glob("*.json"))
        if len(found) == 1:
            return found[0]
        raise markup.AssignmentError(f"{given} holds {len(found)} grading bundles; name one (…/grading/NAME.json)")
    roots = [Path(p) for p in (search or [])] or [Path.cwd() / "assignments"]
    for root in roots:
        hits = sorted(root.glob(f"*/grading/{assignment}.json")) + sorted(root.glob(f"grading/{assignment}.json"))
        if hits:
            return hits[0]
    looked = ", ".join(str(r) for r in roots)
    raise markup.AssignmentError(
        f"no grading bundle for assignment {assignment!r} (looked for */grading/"
        f"{assignment}.json under {looked}); run `course-lib assign SOURCE --out DIR` "
        "first or pass the bundle file"
    )
