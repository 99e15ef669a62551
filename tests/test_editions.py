"""The two editions of the lecture notebooks: solutions/ (instructors, the source) and notebooks/ (students)."""

import json
import re

import nbformat
import pytest

from course_lib.cli import main
from course_lib.cli.editions import (
    SOURCE_DIR,
    STUDENT_DIR,
    answer_leaks,
    is_check_cell,
    problems,
    student_notebook,
    write_student_edition,
)
from course_lib.core.errors import CourseLibError
from course_lib.grading import markup


def solution_cell(source, grade_id="ex-f"):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {
        "schema_version": 3,
        "grade": False,
        "solution": True,
        "locked": False,
        "grade_id": grade_id,
    }
    return cell


def source_notebook():
    nb = nbformat.v4.new_notebook()
    check = nbformat.v4.new_code_cell('from course_lib.course.exercises import check\n\ncheck("f")')
    check.outputs = [nbformat.v4.new_output("stream", text="RIGHT: f matches course_lib\n")]
    check.execution_count = 3
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A lesson"),
        solution_cell(
            "def f(x):\n    ### BEGIN SOLUTION\n    twice = np.add(x, x)  # the answer\n    return twice\n    ### END SOLUTION"
        ),
        check,
    ]
    return nb


def test_the_committed_student_edition_is_what_the_command_generates():
    found = problems()
    assert not found, (
        "the student edition in notebooks/ is out of date; edit solutions/ and run "
        "`course-lib student-edition`:\n" + "\n".join(found)
    )


def test_every_instructor_notebook_has_exercises_and_every_exercise_is_blank_for_students():
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        source = nbformat.read(path, as_version=4)
        answers = [c for c in source.cells if markup.kind_of(c).solution]
        assert answers, f"{path.name} has no exercise: it belongs in notebooks/ only"
        student = nbformat.read(STUDENT_DIR / path.name, as_version=4)
        for cell in student.cells:
            text = markup.source_of(cell)
            assert markup.BEGIN_SOLUTION not in text, path.name
            if markup.kind_of(cell).solution:
                assert "raise NotImplementedError()" in text, (path.name, text)
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_student_notebook_blanks_the_answer_keeps_the_rest_and_clears_outputs():
    student = student_notebook(source_notebook(), "solutions/lesson.ipynb")
    assert student.cells[0].source == "# A lesson"
    assert student.cells[1].source == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert student.cells[2].source == source_notebook().cells[2].source
    assert student.cells[2].outputs == [] and student.cells[2].execution_count is None
    assert student.metadata["course_lib"] == {"edition": "student", "source": "solutions/lesson.ipynb"}


def test_the_blank_exercise_runs_and_its_check_says_not_done(capsys):
    from course_lib.course.exercises import check_against

    student = student_notebook(source_notebook(), "lesson")
    namespace = {}
    exec(student.cells[1].source, namespace)
    result = check_against(namespace["f"], lambda x: 2 * x, [(1.0,)], name="f", strict="wrong")
    assert result.status == "not done" and "NOT DONE YET" in capsys.readouterr().out


def test_malformed_markup_is_one_clear_error():
    nb = source_notebook()
    nb.cells[1].source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + x"
    with pytest.raises(CourseLibError, match=r"lesson.ipynb: .*never closed"):
        student_notebook(nb, "solutions/lesson.ipynb")


def test_command_writes_checks_and_reports_stale_or_misplaced_notebooks(tmp_path, capsys):
    source, out = tmp_path / "solutions", tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(source_notebook(), source / "01_lesson.ipynb")
    args = ["student-edition", "--source", str(source), "--out", str(out)]
    assert main(args + ["--check"]) == 1 and "01_lesson.ipynb is missing" in capsys.readouterr().out
    assert main(args) == 0
    assert main(args + ["--check"]) == 0 and "up to date" in capsys.readouterr().out
    first = (out / "01_lesson.ipynb").read_text()
    assert write_student_edition(source, out) == [] and (out / "01_lesson.ipynb").read_text() == first

    edited = json.loads(first)
    edited["cells"][1]["source"] = "def f(x):\n    return x + x"  # someone solved it in the student edition
    (out / "01_lesson.ipynb").write_text(json.dumps(edited))
    assert (
        main(args + ["--check"]) == 1
        and "differs from what solutions/01_lesson.ipynb generates" in capsys.readouterr().out
    )

    nbformat.write(source_notebook(), out / "02_misplaced.ipynb")  # an instructor notebook among the students'
    found = problems(source, out)
    assert any("02_misplaced.ipynb has solution cells but no instructor edition" in line for line in found)


def test_empty_source_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["student-edition", "--source", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no instructor notebooks" in capsys.readouterr().err


def test_the_student_install_brings_no_instructor_tools():
    import tomllib

    project = tomllib.loads((SOURCE_DIR.parent / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert "jupyterlab" in core and "ipywidgets" in core  # what the notebooks need
    for tool in ("nbgrader", "pytest", "nbval"):  # the instructor's tools come only with .[dev]
        assert tool not in core and tool in " ".join(project["optional-dependencies"]["dev"])
    welcome = (STUDENT_DIR / "00_welcome.ipynb").read_text()
    assert "pip install -e ." in welcome and 'pip install -e \\".[dev]\\"' in welcome


def test_checks_in_the_instructor_edition_run_strict(monkeypatch):
    """solutions/conftest.py turns on strict mode "wrong" for the kernels nbval starts there, and only there."""
    import importlib.util
    import os
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("solutions_conftest", SOURCE_DIR / "conftest.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    monkeypatch.delenv("COURSE_LIB_STRICT_CHECKS", raising=False)
    here, there = (
        SimpleNamespace(path=SOURCE_DIR / "01_toy_gan_1d.ipynb"),
        SimpleNamespace(path=STUDENT_DIR / "01_toy_gan_1d.ipynb"),
    )
    hooks.pytest_runtest_setup(here)
    assert os.environ["COURSE_LIB_STRICT_CHECKS"] == "wrong"
    hooks.pytest_runtest_teardown(here, here)  # the next cell is in solutions/ too: still strict
    assert os.environ["COURSE_LIB_STRICT_CHECKS"] == "wrong"
    hooks.pytest_runtest_teardown(here, there)  # the student edition's kernels start without it
    assert "COURSE_LIB_STRICT_CHECKS" not in os.environ


def test_the_student_edition_gives_no_answer_away():
    """Issue 35: no line of a solution body anywhere in the student edition, and check cells that are only
    `check("name")`: the cases and the common-mistake models (each one edit from the answer) live in
    course_lib.course.exercise_bank."""
    from course_lib.course import exercise_bank

    checked = set()
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        source, student = nbformat.read(path, as_version=4), nbformat.read(STUDENT_DIR / path.name, as_version=4)
        assert answer_leaks(source, student) == [], path.name
        for cell in filter(is_check_cell, student.cells):
            checked.update(re.findall(r'check\("(\w+)"\)', cell.source))
    assert checked == set(exercise_bank.INDEX)  # every registered exercise is checked in its notebook


def test_a_leaked_answer_line_or_a_mistake_model_in_a_check_cell_is_reported():
    source = source_notebook()
    student = student_notebook(source, "lesson")
    assert answer_leaks(source, student) == []
    student.cells.append(nbformat.v4.new_markdown_cell("Hint: `twice = np.add(x,x)` does it."))
    mistake = 'mistakes = {"you added": lambda x: x + x}\ncheck("f")'
    student.cells.append(nbformat.v4.new_code_cell(mistake))
    student.cells.append(
        nbformat.v4.new_code_cell("def reference(x):\n    return 2 * x\n\n\ncheck(f, reference, [(1,)])")
    )
    student.cells.append(nbformat.v4.new_code_cell('cases = [(1.0,)]\ncheck("f")'))
    found = answer_leaks(source, student)
    assert found[0] == "cell 4 (markdown) contains the answer line 'twice=np.add(x,x)'"
    assert found[1].startswith("check cell 5 defines a function, lambda or class")
    assert found[2].startswith("check cell 6 defines a function")
    assert found[3] == 'check cell 7 line 1 is not an import or check("exercise name")'
    assert len(found) == 4  # "return twice" is too short to count as an answer
