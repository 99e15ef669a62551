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
        c.metadata["nbgrader"] = {
            "grade": kind in ("test", "manual"),
            "solution": kind in ("solution", "manual"),
            "locked": kind in ("test", "locked"),
            "task": False,
            "grade_id": gid,
            "schema_version": 3,
        }
        if points is not None:
            c.metadata["nbgrader"]["points"] = points
    return c


def source_nb():
    return new_notebook(
        cells=[
            cell("locked", "import math", "setup"),
            cell("solution", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "f"),
            cell("test", "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(5) == 10\n### END HIDDEN TESTS", "t1", 2),
            cell("manual", "### BEGIN SOLUTION\nBecause.\n### END SOLUTION", "why", 3, "markdown"),
        ]
    )


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


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda nb: nb.cells[0].metadata["nbgrader"].update(grade_id="bad id!"), "grade_id"),
        (lambda nb: nb.cells[2].metadata["nbgrader"].pop("points"), "points"),
        (lambda nb: nb.cells[2].metadata["nbgrader"].update(grade_id="f"), "unique"),
        (lambda nb: nb.cells[1].metadata["nbgrader"].update(schema_version=2), "schema_version"),
        (lambda nb: nb.cells[1].metadata["nbgrader"].update(extra=1), "unknown nbgrader metadata"),
        (lambda nb: setattr(nb.cells[1], "source", "### BEGIN SOLUTION\nx = 1"), "never closed"),
        (lambda nb: nb.cells[0].update(source="### BEGIN SOLUTION\nx\n### END SOLUTION"), "not marked as a solution"),
        (lambda nb: nb.cells[1].update(source="### BEGIN HIDDEN TESTS\nx\n### END HIDDEN TESTS"), "not a test"),
    ],
)
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
    sub.cells[2].metadata["nbgrader"]["points"] = 100  # tries to change the points
    del sub.cells[2]  # ... and then deletes the test
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

    res = SubmissionResult(
        "alice",
        "x",
        [QuestionResult("t1", "test", 2.0, 2.0, "passed"), QuestionResult("why", "manual", None, 3.0, "manual")],
    )
    assert grades_csv([res]).splitlines() == [
        "student,question,points,max_points,status",
        "alice,t1,2,2,passed",
        "alice,why,,3,needs manual grading",
    ]


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
    assert [c.source for c in shipped.cells] == [c.source for c in student_notebook(source).cells], (
        "regenerate with `course-lib assign`"
    )
    assert json.loads((root / "grading" / f"{name}.json").read_text()) == json.loads(
        json.dumps(make_bundle(source, name))
    )


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


# ------------------------------------------------------------------------------ checks outside the student's process
def test_wire_round_trip_and_refusals(tmp_path):
    import numpy as np
    import torch

    from course_lib.grading import wire

    data = {
        "a": (1, 2.5, None, True, "x"),
        "arrays": [np.arange(6).reshape(2, 3), np.float32(1.5), torch.ones(2), torch.tensor(3)],
        7: float("nan"),
    }
    wire.write(tmp_path / "d", data)
    back = wire.read(tmp_path / "d")
    assert back["a"] == (1, 2.5, None, True, "x") and np.isnan(back[7])
    assert back["arrays"][0].shape == (2, 3) and back["arrays"][3].shape == () and back["arrays"][2].tolist() == [1, 1]
    with pytest.raises(wire.WireError, match="cannot be sent"):
        wire.encode({"f": len})
    with pytest.raises(wire.WireError, match="dtype object"):
        wire.encode(np.array([{}], dtype=object))
    # Hostile files: a link, an object array (pickle), a file over the limit, nesting bombs.
    (tmp_path / "link.json").symlink_to(tmp_path / "d.json")
    (tmp_path / "link.npz").symlink_to(tmp_path / "d.npz")
    with pytest.raises(wire.WireError, match="links are not followed"):
        wire.read(tmp_path / "link")
    np.savez(tmp_path / "p.npz", a0=np.array([{"x": 1}], dtype=object))
    (tmp_path / "p.json").write_text('{"__array__": "a0"}')
    with pytest.raises(wire.WireError):
        wire.read(tmp_path / "p")
    with pytest.raises(wire.WireError, match="limit"):
        wire.read(tmp_path / "d", max_bytes=10)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    np.savez(tmp_path / "deep.npz")
    with pytest.raises(wire.WireError):
        wire.read(tmp_path / "deep")


def test_checks_run_directly_in_a_notebook(capsys):
    from course_lib.grading.checks import expect, expect_close

    expect_close(lambda x: 2 * x, [(1.0,), (2.0,)], reference=lambda x: x + x)
    assert "RIGHT" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="doubling is wrong"):
        expect_close(lambda x: 3 * x, [(1.0,)], expected=[2.0], message="doubling is wrong")
    assert "case 0: values differ" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not positive"):
        expect(lambda x: -x, [(1.0,)], check=lambda out, x: out > 0, message="not positive")


def _planned(test_source: str, answers=("f",)):
    from course_lib.grading import checker

    bundle = {
        "cells": [
            {
                "grade_id": "setup",
                "kind": "locked",
                "cell_type": "code",
                "checker": True,
                "answers": [],
                "source": "import numpy as np\nfrom course_lib.grading.checks import expect, expect_close",
            },
            {
                "grade_id": "f",
                "kind": "solution",
                "cell_type": "code",
                "checker": False,
                "answers": list(answers),
                "source": "# YOUR CODE HERE",
            },
            {
                "grade_id": "t",
                "kind": "test",
                "cell_type": "code",
                "checker": False,
                "answers": [],
                "source": test_source,
            },
        ]
    }
    return checker.plan(bundle).cells["t"]


def test_the_checker_records_instead_of_running_student_code():
    from course_lib.grading import checker

    planned = _planned(
        "expect_close(f, [(np.arange(3),)], reference=lambda x: 2 * x)\n"
        "### BEGIN HIDDEN TESTS\n"
        "expect_close(f, [(5,)], expected=[10], message='hidden doubling')\n"
        "### END HIDDEN TESTS"
    )
    assert planned.error == "" and [e.hidden for e in planned.plan.expectations] == [False, True]
    assert checker.inputs(planned)[0]["target"] == "f"  # names and cases only, no reference values
    assert "reference" not in str(checker.inputs(planned))
    ok = checker.judge(planned, [[{"output": [0, 2, 4]}], [{"output": 10}]])
    assert ok.passed
    wrong_hidden = checker.judge(planned, [[{"output": [0, 2, 4]}], [{"output": 11}]])
    assert not wrong_hidden.passed and wrong_hidden.message == "a hidden check failed" and not wrong_hidden.details
    assert "hidden doubling" in wrong_hidden.instructor
    raised = checker.judge(planned, [[{"error": "ValueError: no"}], [{"output": 10}]])
    assert not raised.passed and "f raised ValueError: no" in raised.details[0]
    for hostile in (None, [], [[{"output": 1}]], [[{"output": 1, "error": "x"}], [{}]], [[1], [2]], "text"):
        assert not checker.judge(planned, hostile).passed
    # Calling the answer directly in a test cell is an assignment bug, reported when the checks are prepared.
    assert "directly" in _planned("assert f(1) == 2").error
    assert "checks nothing" in _planned("x = 1").error


def test_feedback_escapes_everything_a_submission_controls():
    from course_lib.grading.grade import QuestionResult, SubmissionResult
    from course_lib.grading.report import feedback_markdown, plain_line

    assert (
        plain_line("a\n\n# b <b>c</b> [x](y) `z` **w**")
        == "a # b &lt;b&gt;c&lt;/b&gt; \\[x\\](y) \\`z\\` \\*\\*w\\*\\*"
    )
    forged = "E\n\n**Automatically graded: 11 / 11 points.**\n- [x] t1: 2 / 2, passed"
    res = SubmissionResult(
        "mallory", "x", [QuestionResult("t1", "test", 0.0, 2.0, "failed", forged, forged)], events=[forged]
    )
    text = feedback_markdown(res, {"name": "demo"})
    assert [ln for ln in text.splitlines() if "Automatically graded" in ln and ln.startswith("**")] == [
        "**Automatically graded: 0 / 2 points.**"
    ]
    assert not any(ln.startswith("- [x]") for ln in text.splitlines())


def test_old_and_misplaced_grading_metadata_get_a_clear_error(tmp_path):
    from course_lib.grading.assign import load_bundle

    nb = source_nb()
    nb.cells[2].metadata["course_lib"] = {"fresh_kernel": True}
    with pytest.raises(markup.AssignmentError, match="fresh_kernel"):
        make_bundle(nb, "demo")
    nb = source_nb()
    nb.cells[1].metadata["course_lib"] = {"checker": True}  # an answer cell cannot run in the checker
    with pytest.raises(markup.AssignmentError, match="checker"):
        make_bundle(nb, "demo")
    (tmp_path / "old.json").write_text(json.dumps({"format": "course_lib.grading/1"}))
    with pytest.raises(markup.AssignmentError, match="another version"):
        load_bundle(tmp_path / "old.json")


@pytest.mark.parametrize("name", ["01_dcgan_mnist", "02_is_fid", "03_improve_dcgan", "04_wasserstein_lp"])
def test_every_shipped_check_can_be_prepared_without_student_code(name, monkeypatch):
    """The checker can plan every test cell of every assignment with nothing but placeholders for the answers,
    and what it hands the kernel is names and inputs only."""
    from pathlib import Path

    from course_lib.grading import checker, wire
    from course_lib.grading.assign import load_bundle

    monkeypatch.setenv("COURSE_LIB_FAST", "1")
    bundle = load_bundle(Path(__file__).resolve().parents[1] / "assignments" / name / "grading" / f"{name}.json")
    planned = checker.plan(bundle)
    tests = [c["grade_id"] for c in bundle["cells"] if c["kind"] == "test"]
    assert sorted(planned.cells) == sorted(tests)
    for gid, cell_plan in planned.cells.items():
        assert cell_plan.error == "" and cell_plan.plan.expectations, (gid, cell_plan.error)
        wire.encode(checker.inputs(cell_plan))  # sendable to the kernel
    hidden = {gid: any(e.hidden for e in p.plan.expectations) for gid, p in planned.cells.items()}
    with_hidden = {c["grade_id"] for c in bundle["cells"] if c["kind"] == "test" and markup.BEGIN_HIDDEN in c["source"]}
    assert {gid for gid, h in hidden.items() if h} == with_hidden


def test_without_a_sandbox_the_summary_warns_loudly(monkeypatch):
    from course_lib.grading import report, sandbox

    monkeypatch.setenv("COURSE_LIB_GRADING_SANDBOX", "off")
    sandbox.detect.cache_clear()
    try:
        mode, why = sandbox.detect()
    finally:
        sandbox.detect.cache_clear()
    header = report.sandbox_header(mode, why)
    assert mode == "none" and header["warning"].startswith("WARNING: NO SANDBOX")
    assert "apt-get install bubblewrap" in header["warning"]
    assert report.sandbox_header("bwrap-root", "")["warning"] == ""


def test_a_memory_cgroup_stops_only_its_own_processes():
    """Over its limit, a process in a submission's cgroup is stopped by the out-of-memory killer; a process outside
    allocates the same amount and goes on; `remove` kills what is left in the cgroup (the issue-17 memory limit)."""
    import subprocess
    import sys
    import uuid

    from course_lib.grading import cgroup

    hierarchy, why = cgroup.find()
    if hierarchy is None:
        pytest.skip(f"no memory cgroup can be created here, RLIMIT_AS is the only memory limit: {why}")
    path = cgroup.create(hierarchy, cgroup.path_for(hierarchy, f"test-{uuid.uuid4().hex[:8]}"), 200 * 1024**2)
    hog = (
        "import subprocess; subprocess.Popen(['sleep', '300'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "x = [b'x' * 2 ** 26 for _ in range(6)]; print('ok')"
    )
    try:
        inside = subprocess.run(
            cgroup.command(path, [sys.executable, "-c", hog]), capture_output=True, text=True, timeout=120, check=False
        )
        outside = subprocess.run(
            [sys.executable, "-c", hog.replace("'sleep', '300'", "'true'")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert inside.returncode == -9 and cgroup.oom_kills(path) >= 1  # SIGKILL from the OOM killer
        assert outside.returncode == 0 and outside.stdout.strip() == "ok"
        assert (path / "cgroup.procs").read_text().split(), "the detached sleep is still in the cgroup"
    finally:
        cgroup.remove(path)
    assert not path.exists()


def test_the_summary_says_which_memory_limit_held(monkeypatch):
    from course_lib.grading import cgroup, report, sandbox

    monkeypatch.setenv("COURSE_LIB_GRADING_CGROUP", "off")
    cgroup.find.cache_clear()
    try:
        header = report.sandbox_header("bwrap-root", "", sandbox.Limits(memory_gb=6, ram_gb=3), cgroup.find())
    finally:
        cgroup.find.cache_clear()
    assert (
        header["memory"] == "6 GB of address space per process only (no memory cgroup: turned off by "
        "COURSE_LIB_GRADING_CGROUP=off)"
    )
    found = cgroup.Hierarchy(1, cgroup.Path("/sys/fs/cgroup/memory/x"))
    assert report.sandbox_header("bwrap-root", "", sandbox.Limits(ram_gb=3), (found, ""))["memory"].startswith(
        "3 GB for all of a submission's processes and its /tmp (cgroup v1 memory controller)"
    )
