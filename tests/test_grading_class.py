"""Issue 32: what students get back (unforgeable grader notes, no hidden inputs), partial credit, and the class-scale
features around one graded class of a tiny assignment (graded once, in the sandbox where there is one)."""

import csv
import io
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.grading import returned
from course_lib.grading.assign import assign

HIDDEN_INPUT = "7919.25"  # only ever an input of a hidden case
SETUP = "import numpy as np\nfrom course_lib.grading.checks import expect, expect_close"
ANSWER = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
TEST = (
    "expect_close(double, [(1.0,), (2.5,)], reference=lambda x: 2 * x, message='double(x) is 2 x')\n"
    "### BEGIN HIDDEN TESTS\n"
    f"expect_close(double, [({HIDDEN_INPUT},)], reference=lambda x: 2 * x, message='double fails elsewhere')\n"
    "### END HIDDEN TESTS"
)
PARTIAL = "expect(double, [(0,), (1,), (2,), (3,), (4,)], check=lambda y, x: y == 2 * x, message='per case')"


def _cell(kind, source, gid, points=None, cell_type="code", own=None):
    c = (new_code_cell if cell_type == "code" else new_markdown_cell)(source)
    c.metadata["nbgrader"] = {
        "grade": kind in ("test", "manual"),
        "solution": kind in ("solution", "manual"),
        "locked": kind in ("test", "locked"),
        "task": False,
        "grade_id": gid,
        "schema_version": 3,
        **({"points": points} if points is not None else {}),
    }
    if own:
        c.metadata["course_lib"] = own
    return c


def source_notebook():
    nb = new_notebook(
        cells=[
            _cell("locked", SETUP, "setup", own={"checker": True}),
            _cell("solution", ANSWER, "double"),
            _cell("test", TEST, "test_double", 2),
            _cell("test", PARTIAL, "test_cases", 5, own={"partial_credit": True}),
            _cell("manual", "### BEGIN SOLUTION\nBecause.\n### END SOLUTION", "why", 3, "markdown"),
        ]
    )
    nb.metadata["course_lib"] = {"grading": {"cell_timeout": 60, "total_timeout": 240}}
    return nb


def submission(student_cells, answer="def double(x):\n    return 2 * x"):
    """The student version with `answer` in the answer cell and `student_cells` (code) appended."""
    from course_lib.grading.assign import student_notebook

    nb = student_notebook(source_notebook())
    nb.cells[1].source = answer
    nb.cells[4].source = "Because doubling is linear."
    nb.cells += [new_code_cell(src) for src in student_cells]
    return nb


FORGED = f"{returned.MARKER} passed: 100 / 100 points"
STUDENTS = {
    "honest": submission([]),
    # prints and displays imitations of the grader's notes, and forges the metadata of a note
    "forger": submission(
        [
            f"print({FORGED!r})\nprint('[COURSE\\u200b-LIB  grade] test_cases: 5 / 5 points')",
            "from IPython.display import HTML, display\n"
            "display(HTML('<div class=\"course-lib-grader\">Grader: 100 / 100 points</div>'))",
        ]
    ),
    # stashes the inputs its answer is called with (the hidden one too), reads the kernel's input files, and puts
    # both into what it prints, raises and returns
    "leaker": submission(
        [
            "import glob, pathlib\nseen = [open(p, 'rb').read().hex() for p in glob.glob('/grading/in/*')]\n"
            "print('INPUT FILES', seen)",
            "print('SEEN', CALLS)\nraise ValueError(f'seen {CALLS}')",
        ],
        answer="CALLS = []\ndef double(x):\n    CALLS.append(repr(x))\n    return 2 * x if x < 3 else ' '.join(CALLS)",
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from course_lib.grading.grade import grade

    root = tmp_path_factory.mktemp("class")
    nbformat.write(source_notebook(), root / "tiny.ipynb")
    assign([root / "tiny.ipynb"], root / "tiny")
    subs = root / "subs"
    subs.mkdir()
    for name, nb in STUDENTS.items():
        nbformat.write(nb, subs / f"{name}.ipynb")
    out = root / "out"
    results = grade(sorted(subs.iterdir()), str(root / "tiny"), out, workers=2, fast=True, progress=False)
    return {"root": root, "out": out, "subs": subs, "results": {r.student: r for r in results}}


def _outputs(path: Path):
    nb = json.loads(path.read_text())
    return [(c, o) for c in nb["cells"] for o in c.get("outputs", [])]


def _text(out) -> str:
    return "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))


def test_honest_student_and_partial_credit(graded):
    honest = graded["results"]["honest"]
    assert honest.points == 7 and honest.max_points == 7, honest.events
    leaker = {q.question: q for q in graded["results"]["leaker"].questions}
    # double(3) and double(4) return text: 3 of 5 cases right give 3/5 of 5 points; all-or-nothing stays the default
    assert (leaker["test_cases"].points, leaker["test_cases"].status) == (3.0, "partly passed")
    assert (leaker["test_double"].points, leaker["test_double"].message) == (0.0, "a hidden check failed")
    assert "3 of 5 cases right" in leaker["test_cases"].message


def test_grader_notes_cannot_be_forged(graded):
    out = graded["out"]
    for folder in ("executed", "feedback"):
        pairs = _outputs(out / folder / "forger.ipynb")
        notes = [_text(o) for _, o in pairs if returned.is_grader_output(o)]
        others = [_text(o) for _, o in pairs if not returned.is_grader_output(o)]
        assert notes and all(n.startswith(returned.MARKER) or n.startswith("(this cell raised") for n in notes)
        assert not any(FORGED in n for n in notes)  # the grader's own notes say what the checks found
        assert all(not line.startswith(returned.MARKER) for t in others for line in t.splitlines()), others
        assert not any("text/html" in o.get("data", {}) for _, o in pairs)  # no student HTML renders
        # every note sits in a test cell or right after the grader's own text; none in the student's cells
        assert all(c["metadata"].get("nbgrader") for c, o in pairs if _text(o).startswith(returned.MARKER))
    printed = "".join(_text(o) for _, o in _outputs(out / "executed" / "forger.ipynb"))
    assert returned.PRINTED + FORGED in printed  # kept for the instructor, marked as the submission's


def test_hidden_inputs_never_reach_the_student(graded):
    out = graded["out"]
    instructor = (out / "executed" / "leaker.ipynb").read_text()
    assert HIDDEN_INPUT in instructor  # the kernel did see it: the channel is real
    for path in (out / "feedback").iterdir():
        text = path.read_text()
        assert HIDDEN_INPUT not in text and HIDDEN_INPUT.encode().hex() not in text, path.name
    feedback = (out / "feedback" / "leaker.md").read_text()
    assert "raised ValueError" in feedback and "its message is not returned" in feedback
    summary = json.loads((out / "summary.json").read_text())
    assert any(HIDDEN_INPUT in e for e in summary["students"]["leaker"]["events"])  # the instructor sees it all


def test_returned_helpers():
    assert returned.defuse("ok\n[course-lib grade] passed") == f"ok\n{returned.PRINTED}[course-lib grade] passed"
    assert returned.defuse("[ＣＯＵＲＳＥ-lib\u200b grade]").startswith(returned.PRINTED)  # fullwidth, zero-width
    assert "7919" not in returned.kernel_text_for_student("cell 3 raised h7919_25: x", {"cell 3"})  # a class name
    assert returned.kernel_text_for_student("cell 3 raised ValueError: 7919.25", {"cell 3"}) == (
        "cell 3 raised ValueError (its message is not returned: this assignment has hidden tests)"
    )
    assert returned.cell_error_for_student("test cell t", "KeyError: 7919").startswith("raised KeyError (its")
    timeout = "ran for more than 60 s (the time limit per cell) and was stopped"
    assert returned.cell_error_for_student("test cell t", timeout) == timeout
    event = "cell 3 printed 1.2 MB of output; only the first 100,000 characters were kept"
    assert returned.kernel_text_for_student(event, {"cell 3"}) == event
    assert "not returned" in returned.kernel_text_for_student(event, {"cell 4"})
    assert returned.detail_for_student("case 1: got '7919.25', expected 'x'") == "case 1: wrong"
    assert returned.detail_for_student("case 0: f raised KeyError: 7919") == "case 0: raised KeyError"


def _csv(path):
    return list(csv.reader(io.StringIO(Path(path).read_text())))
