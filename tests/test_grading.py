"""Unit tests of the nbgrader markup, `course-lib assign` and the reconciling of submissions (no kernels)."""
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.cli import main
from course_lib.grading import markup
from course_lib.grading.assign import make_bundle, student_notebook
from course_lib.grading.grade import reconcile, student_name
from course_lib.grading.report import grades_csv


def cell(kind, source, gid=None, points=None, cell_type="code"):
    c = (new_code_cell if cell_type == "code" else new_markdown_cell)(source)
    if kind:
        c.metadata["nbgrader"] = {"grade": kind in ("test", "manual"), "solution": kind in ("solution", "manual"),
                                  "locked": kind in ("test", "locked"), "task": False, "grade_id": gid,
                                  "schema_version": 3}
        if points is not None:
            c.metadata["nbgrader"]["points"] = points
    return c


def source_nb():
    return new_notebook(cells=[
        cell("locked", "import math", "setup"),
        cell("solution", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "f"),
        cell("test", "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(5) == 10\n### END HIDDEN TESTS", "t1", 2),
        cell("manual", "### BEGIN SOLUTION\nBecause.\n### END SOLUTION", "why", 3, "markdown"),
    ])


def test_student_version_strips_solutions_and_hidden_tests_like_nbgrader():
    student = student_notebook(source_nb())
    assert student.cells[1].source == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert student.cells[2].source == "assert f(1) == 2"
    assert student.cells[3].source == "YOUR ANSWER HERE"
    assert student.cells[2].metadata["editable"] is False and student.cells[2].metadata["deletable"] is False
    assert all(c.get("outputs", []) == [] for c in student.cells)


def test_bundle_keeps_hidden_tests_and_points():
    bundle = make_bundle(source_nb(), "demo")
    test = next(c for c in bundle["cells"] if c["grade_id"] == "t1")
    assert "assert f(5) == 10" in test["source"] and "BEGIN HIDDEN" in test["source"]
    assert bundle["max_points"] == 2 and bundle["manual_points"] == 3


@pytest.mark.parametrize("mutate, message", [
    (lambda nb: nb.cells[0].metadata["nbgrader"].update(grade_id="bad id!"), "grade_id"),
    (lambda nb: nb.cells[2].metadata["nbgrader"].pop("points"), "points"),
    (lambda nb: nb.cells[2].metadata["nbgrader"].update(grade_id="f"), "unique"),
    (lambda nb: nb.cells[1].metadata["nbgrader"].update(schema_version=2), "schema_version"),
    (lambda nb: nb.cells[1].metadata["nbgrader"].update(extra=1), "unknown nbgrader metadata"),
    (lambda nb: setattr(nb.cells[1], "source", "### BEGIN SOLUTION\nx = 1"), "never closed"),
    (lambda nb: nb.cells[0].update(source="### BEGIN SOLUTION\nx\n### END SOLUTION"), "not marked as a solution"),
    (lambda nb: nb.cells[1].update(source="### BEGIN HIDDEN TESTS\nx\n### END HIDDEN TESTS"), "not a test"),
])
def test_malformed_markup_gets_a_clear_error(mutate, message):
    nb = source_nb()
    mutate(nb)
    with pytest.raises(markup.AssignmentError, match=message):
        make_bundle(nb, "demo")


def test_reconcile_restores_locked_cells_hidden_tests_and_deleted_tests():
    bundle = make_bundle(source_nb(), "demo")
    sub = student_notebook(source_nb())
    sub.cells[1].source = "def f(x):\n    return 2 * x"
    sub.cells[0].source = "import math\nf = lambda x: 0"  # edits a read-only cell
    sub.cells[2].metadata["nbgrader"]["points"] = 100     # tries to change the points
    del sub.cells[2]                                      # ... and then deletes the test
    sub.cells.append(new_code_cell("print('extra')"))
    nb, events, index = reconcile(sub, bundle)
    assert nb.cells[0].source == "import math"
    restored = nb.cells[index["t1"]]
    assert "assert f(5) == 10" in restored.source and restored.metadata["nbgrader"]["points"] == 2
    assert index["t1"] == index["f"] + 1  # put back where it was
    assert any("setup was changed" in e for e in events) and any("t1 was deleted" in e for e in events)
    assert nb.cells[-1].source == "print('extra')"


def test_student_names_and_csv():
    from pathlib import Path

    assert student_name(Path("subs/alice.ipynb"), "hw.ipynb") == "alice"
    assert student_name(Path("subs/bob/hw.ipynb"), "hw.ipynb") == "bob"
    from course_lib.grading.grade import QuestionResult, SubmissionResult

    res = SubmissionResult("alice", "x", [QuestionResult("t1", "test", 2.0, 2.0, "passed"),
                                          QuestionResult("why", "manual", None, 3.0, "manual")])
    assert grades_csv([res]).splitlines() == ["student,question,points,max_points,status", "alice,t1,2,2,passed",
                                              "alice,why,,3,needs manual grading"]


def test_assign_command_and_its_errors(tmp_path, capsys):
    src = tmp_path / "hw.ipynb"
    nbformat.write(source_nb(), src)
    assert main(["assign", str(src), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "student" / "hw.ipynb").is_file()
    assert json.loads((tmp_path / "out" / "grading" / "hw.json").read_text())["name"] == "hw"
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert main(["assign", str(tmp_path / "broken.ipynb"), "--out", str(tmp_path / "o2")]) == 2
    assert "not a readable notebook" in capsys.readouterr().err
    assert main(["grade", str(src), "--assignment", "no-such-assignment", "--out", str(tmp_path / "g")]) == 2
    assert "no grading bundle" in capsys.readouterr().err


def _nbgrader_schema_check(nb):
    """nbgrader's documented cell metadata (schema v3, nbgrader/nbgraderformat/v3.json), checked directly."""
    allowed = {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points", "checksum", "cell_type"}
    for c in nb.cells:
        meta = c.metadata.get("nbgrader")
        if meta is None:
            continue
        assert set(meta) <= allowed and meta["schema_version"] == 3
        assert all(isinstance(meta[k], bool) for k in ("grade", "locked", "solution"))
        if meta["grade"] or meta["solution"] or meta["locked"]:
            assert meta["grade_id"] and all(ch.isalnum() or ch in "_-" for ch in meta["grade_id"])
        if meta["grade"]:
            assert isinstance(meta["points"], (int, float)) and meta["points"] >= 0


@pytest.mark.parametrize("name", ["01_dcgan_mnist", "02_is_fid", "03_improve_dcgan", "04_wasserstein_lp"])
def test_shipped_assignments_are_valid_and_their_student_versions_are_current(name):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "assignments" / name
    source = nbformat.read(root / "source" / f"{name}.ipynb", as_version=4)
    _nbgrader_schema_check(source)
    markup.validate_notebook(source)
    shipped = nbformat.read(root / "student" / f"{name}.ipynb", as_version=4)
    assert [c.source for c in shipped.cells] == [c.source for c in student_notebook(source).cells], \
        "regenerate with `course-lib assign`"
    assert json.loads((root / "grading" / f"{name}.json").read_text()) == json.loads(json.dumps(make_bundle(source, name)))


def test_sources_pass_nbgraders_own_preprocessors():
    """With nbgrader installed (a dev dependency), its validator and ClearSolutions/ClearHiddenTests accept
    our sources and produce the same student versions."""
    nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is not installed (pip install nbgrader)")
    from pathlib import Path

    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    assert nbgrader
    for name in ("01_dcgan_mnist", "02_is_fid", "03_improve_dcgan", "04_wasserstein_lp"):
        root = Path(__file__).resolve().parents[1] / "assignments" / name
        source = nbformat.read(root / "source" / f"{name}.ipynb", as_version=4)
        MetadataValidator().validate_nb(source)
        theirs, _ = ClearSolutions().preprocess(nbformat.from_dict(json.loads(json.dumps(source))), {})
        theirs, _ = ClearHiddenTests().preprocess(theirs, {})
        ours = student_notebook(source)
        assert [c.source for c in theirs.cells] == [c.source for c in ours.cells]
