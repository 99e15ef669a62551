"""Grading real submission fixtures (tests/fixtures/grading/, made by scripts/make_grading_fixtures.py).

Each assignment's fixtures are graded in the same class run as its hostile submissions
(`grading_attacks.graded_class`: one `grade` call per assignment, shared with tests/test_grading_attacks.py and
across pytest-xdist workers); each submission runs in its own sandboxed kernel in fast mode and is judged outside
it. Assignment 2 has every kind of submission the grader must survive; assignment 3 a reference, an untouched
version, hand-typed scores and deleted checkpoints; assignments 1 and 4 have the reference solution, the untouched
student version and a partly correct one.
"""

import csv
import json
from pathlib import Path

import nbformat
import pytest
from grading_attacks import CELL_TIMEOUT, graded_class


def assert_scores(result, expected, max_points):
    """A graded submission (its summary.json entry) got `expected` = (points, names of the failing checks)."""
    points, failing = expected
    assert result["max_points"] == max_points
    assert result["points"] == points, (result["events"], result["failed"])
    assert set(result["failed"]) == failing


@pytest.fixture(scope="module")
def graded_02(tmp_path_factory):
    run = graded_class("02_is_fid", tmp_path_factory)
    return run["summary"]["students"], run["out"]


EXPECTED_02 = {  # student: (points of 11, failing checks)
    "reference": (11, set()),
    "untouched": (0, {"test_is_visible", "test_is_hidden", "test_fid_visible", "test_fid_hidden", "test_fid_features"}),
    "partly_wrong": (4, {"test_fid_visible", "test_fid_hidden", "test_fid_features"}),
    "raises": (7, {"test_is_visible", "test_is_hidden"}),
    "loops": (9, {"test_fid_features"}),
    "invalid_json": (
        0,
        {"test_is_visible", "test_is_hidden", "test_fid_visible", "test_fid_hidden", "test_fid_features"},
    ),
    "edits_locked": (4, {"test_fid_visible", "test_fid_hidden", "test_fid_features"}),
    "deletes_cells": (11, set()),
    "prints_megabytes": (11, set()),
}


@pytest.mark.parametrize("student", sorted(EXPECTED_02))
def test_assignment_2_scores(graded_02, student):
    assert_scores(graded_02[0][student], EXPECTED_02[student], max_points=11)


def _output_text(output) -> str:
    return "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))


def _feedback(out, students):
    """Feedback as text, with the markdown escapes of names (test\\_x) undone for comparisons."""
    return {s: (out / "feedback" / f"{s}.md").read_text().replace("\\_", "_") for s in students}


def test_assignment_2_feedback_explains_what_happened(graded_02):
    _, out = graded_02
    feedback = _feedback(out, EXPECTED_02)
    # The assignment has hidden checks: the kernel's messages stay with the instructor (they could hold hidden
    # inputs, issue 32); the student reads which exception was raised.
    students = graded_02[0]
    assert "raised RuntimeError" in feedback["raises"] and "I gave up on this part" not in feedback["raises"]
    assert any("RuntimeError: I gave up on this part" in e for e in students["raises"]["events"])
    assert "raised NameError" in feedback["raises"]
    assert "name 'inception_score' is not defined" in json.dumps(students["raises"]["failed"])  # the check's reason
    assert f"more than {CELL_TIMEOUT} s" in feedback["loops"]
    assert "not a valid notebook" in feedback["invalid_json"]
    assert "test_fid_visible was changed; the original was used" in feedback["edits_locked"]
    assert "test_is_hidden was deleted; the original was put back" in feedback["deletes_cells"]
    assert "MB of output" in feedback["prints_megabytes"]
    assert "1-D case: expected (m1 - m2)^2 + (s1 - s2)^2" in feedback["partly_wrong"]
    assert "NotImplementedError" in feedback["untouched"]
    assert "test_fid_hidden: 0 / 3, failed: a hidden check failed" in feedback["partly_wrong"]
    executed = nbformat.read(out / "executed" / "prints_megabytes.ipynb", as_version=4)
    assert sum(len(o.get("text", "")) for c in executed.cells for o in c.get("outputs", [])) < 300_000
    # What happened to a cell is said once, by the grader (the runner writes no note of its own into the cell).
    for student, note in (("prints_megabytes", "more output was dropped"), ("loops", "stopped at a time limit")):
        nb = nbformat.read(out / "executed" / f"{student}.ipynb", as_version=4)
        texts = [_output_text(o) for c in nb.cells for o in c.get("outputs", [])]
        assert sum(note in t for t in texts) == 1, texts
        assert not any("[course-lib grade]" in t and not t.startswith("[course-lib grade]") for t in texts), student
    # The written answer is left to a person, not scored 0 — unless it was left as the stub.
    rows = list(csv.DictReader((out / "grades.csv").open()))
    answer = {r["student"]: r for r in rows if r["question"] == "answer_fid_bias"}
    assert answer["reference"]["status"] == "needs manual grading" and answer["reference"]["points"] == ""
    assert answer["untouched"]["status"] == "no answer" and answer["untouched"]["points"] == "0"
    assert len([r for r in rows if r["student"] in EXPECTED_02]) == 6 * len(EXPECTED_02)


@pytest.fixture(scope="module")
def graded_03(tmp_path_factory):
    run = graded_class("03_improve_dcgan", tmp_path_factory)
    return run["summary"]["students"], run["out"]


ASSIGNMENT_03 = Path(__file__).resolve().parents[1] / "assignments" / "03_improve_dcgan"
EXPECTED_03 = {  # student: (points of 12, failing checks); the fast-mode budget, so "improved beats baseline"
    # only checks that the comparison was computed (see assignments/03_improve_dcgan/README.md)
    "reference": (12, set()),
    "untouched": (
        0,
        {"test_improved_settings", "test_scores_table", "test_checkpoints", "test_scores_match", "test_improvement"},
    ),
    "hand_typed": (9, {"test_scores_match"}),
    "no_checkpoints": (3, {"test_checkpoints", "test_scores_match", "test_improvement"}),
}


@pytest.mark.parametrize("student", sorted(EXPECTED_03))
def test_assignment_3_scores(graded_03, student):
    assert_scores(graded_03[0][student], EXPECTED_03[student], max_points=12)


def test_assignment_3_recomputes_scores_from_the_checkpoints(graded_03):
    _, out = graded_03
    feedback = _feedback(out, EXPECTED_03)
    # The hidden check's reason reaches the instructor (summary.json), not the student.
    summary = json.loads((out / "summary.json").read_text())
    assert (
        "scores.json reports IS 6.1200, but the checkpoint gives"
        in summary["students"]["hand_typed"]["failed"]["test_scores_match"]
    )
    assert "6.1200" not in feedback["hand_typed"] and "a hidden check failed" in feedback["hand_typed"]
    assert "raised AssertionError" in feedback["no_checkpoints"]  # the probe's message: in the summary only
    failed = json.dumps(graded_03[0]["no_checkpoints"]["failed"])
    assert "no checkpoint runs/baseline/checkpoints/last.pt" in failed
    assert "NotImplementedError" in feedback["untouched"]
    # The executed notebook shows each test cell as the student version with its verdict, no hidden part.
    executed = nbformat.read(out / "executed" / "reference.ipynb", as_version=4)
    match = next(c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_scores_match")
    printed = "".join(o.get("text", "") for o in match.outputs)
    assert "passed: 3 / 3 points" in printed and "BEGIN HIDDEN" not in match.source and "TOLERANCE" not in match.source
    # The three written answers are left to a person (0 only when left as the stub).
    status = {
        (r["student"], r["question"]): r["status"]
        for r in csv.DictReader((out / "grades.csv").open())
        if r["question"].startswith("answer_") and r["student"] in EXPECTED_03
    }
    assert len(status) == 3 * len(EXPECTED_03)
    assert {v for (s, _), v in status.items() if s == "reference"} == {"needs manual grading"}
    assert {v for (s, _), v in status.items() if s == "untouched"} == {"no answer"}


def test_assignment_3_source_is_consistent():
    """Student version and bundle are current, nbgrader accepts the markup, and the settings live in one cell that
    the checker runs too."""
    from course_lib.grading import markup
    from course_lib.grading.assign import make_bundle, student_notebook

    name, root = "03_improve_dcgan", ASSIGNMENT_03
    source = nbformat.read(root / "source" / f"{name}.ipynb", as_version=4)
    markup.validate_notebook(source)
    shipped = nbformat.read(root / "student" / f"{name}.ipynb", as_version=4)
    assert [c.source for c in shipped.cells] == [c.source for c in student_notebook(source).cells], (
        "regenerate with `course-lib assign`"
    )
    assert json.loads((root / "grading" / f"{name}.json").read_text()) == json.loads(
        json.dumps(make_bundle(source, name))
    )
    cells = {markup.grade_id_of(c): c.source for c in source.cells}
    assert sum("BASELINE = " in src for src in cells.values()) == 1 and "BASELINE = " in cells["setup"]
    assert {markup.grade_id_of(c) for c in source.cells if markup.checker_cell(c)} == {"setup", "grading_setup"}


def test_assignment_3_passes_nbgraders_own_preprocessors():
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (pip install nbgrader)")
    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    from course_lib.grading.assign import student_notebook

    source = nbformat.read(ASSIGNMENT_03 / "source" / "03_improve_dcgan.ipynb", as_version=4)
    MetadataValidator().validate_nb(source)
    theirs, _ = ClearSolutions().preprocess(nbformat.from_dict(json.loads(json.dumps(source))), {})
    theirs, _ = ClearHiddenTests().preprocess(theirs, {})
    assert [c.source for c in theirs.cells] == [c.source for c in student_notebook(source).cells]


@pytest.mark.parametrize(
    "name, max_points, partial",
    [("01_dcgan_mnist", 12, (10, {"test_init"})), ("04_wasserstein_lp", 10, (7, {"test_primal"}))],
)
def test_reference_full_marks_partial_its_points_untouched_zero(name, max_points, partial, tmp_path_factory):
    students = graded_class(name, tmp_path_factory)["summary"]["students"]
    assert_scores(students["reference"], (max_points, set()), max_points)
    assert_scores(students["partial"], partial, max_points)
    assert students["untouched"]["points"] == 0
