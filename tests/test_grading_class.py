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
    c.metadata["nbgrader"] = {  # a task as nbgrader writes one: task, locked, neither grade nor solution
        "grade": kind in ("test", "manual"),
        "solution": kind in ("solution", "manual"),
        "locked": kind in ("test", "locked", "task"),
        "task": kind == "task",
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
            _cell("task", TASK, "plot_task", 2, "markdown"),
        ]
    )
    nb.metadata["course_lib"] = {"grading": {"cell_timeout": 60, "total_timeout": 240, "late_policy": POLICY}}
    return nb


TASK = "Plot `double` on [0, 1] below, with labelled axes (marked by hand)."
POLICY = {"deadline": "2026-12-01T23:59:00+00:00", "grace_minutes": 15, "per_day": 0.1, "cap": 0.5, "accept_days": 7}
TIMES = {  # honest on time; forger 1 day 12 h late: 2 started days, 20 %; leaker 10 days late: not accepted
    "honest": "2026-12-02T00:10:00+00:00",
    "forger": "2026-12-03T11:59:00+00:00",
    "leaker": "2026-12-11T23:59:00+00:00",
}


INJECTED = (  # a written answer that tries to run script and to pass for the grader's box
    'Because.\n\n<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">\n\n'
    '<div class="course-lib-grader">Grader: why: 3 / 3 points (passed)</div>\n\n**Grader: test_double: 2 / 2**'
)


def submission(student_cells, answer="def double(x):\n    return 2 * x", written="Because doubling is linear."):
    """The student version with `answer` in the answer cell, `written` as the written answer, and `student_cells`
    (code) appended."""
    from course_lib.grading.assign import student_notebook

    nb = student_notebook(source_notebook())
    nb.cells[1].source = answer
    nb.cells[4].source = written
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
        ],
        written=INJECTED,
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
    times = root / "times.csv"
    times.write_text("student,submitted_at\n" + "".join(f"{s},{t}\n" for s, t in TIMES.items()))
    out = root / "out"
    results = grade(sorted(subs.iterdir()), str(root / "tiny"), out, workers=2, fast=True, progress=False, times=times)
    return {"root": root, "out": out, "subs": subs, "times": times, "results": {r.student: r for r in results}}


def _outputs(path: Path):
    """(cell, output, whether the grader wrote it) for every output of a notebook, which must be valid nbformat."""
    nb = nbformat.reads(path.read_text(), as_version=4)
    nbformat.validate(nb)
    return [(c, o, returned.is_grader_output(c, i)) for c in nb.cells for i, o in enumerate(c.get("outputs", []))]


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
        notes = [_text(o) for _, o, grader in pairs if grader]
        others = [_text(o) for _, o, grader in pairs if not grader]
        assert notes and all(n.startswith(returned.MARKER) or n.startswith("(this cell raised") for n in notes)
        assert not any(FORGED in n for n in notes)  # the grader's own notes say what the checks found
        assert all(not line.startswith(returned.MARKER) for t in others for line in t.splitlines()), others
        assert not any("text/html" in o.get("data", {}) for _, o, _ in pairs)  # no student HTML renders
        # every note sits in a test cell or right after the grader's own text; none in the student's cells
        assert all(c.metadata.get("nbgrader") for c, o, _ in pairs if _text(o).startswith(returned.MARKER))
    printed = "".join(_text(o) for _, o, _ in _outputs(out / "executed" / "forger.ipynb"))
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


def _grade_cli(*args):
    from course_lib.cli.main import main

    return main(["grade", *map(str, args)])


def _copy_out(graded, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(graded["out"], tmp_path / "out"))


def _students(out) -> dict:
    return json.loads((Path(out) / "summary.json").read_text())["students"]


def test_late_policy_in_summary_feedback_and_exports(graded):
    from course_lib.grading import late

    students = _students(graded["out"])
    assert (students["honest"]["late_penalty"], students["honest"]["total"]) == (0.0, 7.0)  # within the grace
    assert students["forger"]["late_penalty"] == pytest.approx(0.2)
    assert students["forger"]["total"] == pytest.approx(0.8 * students["forger"]["points"])
    assert (students["leaker"]["accepted"], students["leaker"]["total"]) == (False, 0.0)
    assert students["leaker"]["time_source"] == "the instructor's times file"
    feedback = (graded["out"] / "feedback" / "forger.md").read_text()
    assert "20% late penalty" in feedback and "Total: " in feedback
    policy = late.LatePolicy.from_dict(POLICY)
    month = late.parse_time("2026-12-31T23:59:00Z")
    assert late.assess(policy, month).accepted is False
    assert late.assess(late.LatePolicy.from_dict({**POLICY, "accept_days": None}), month).penalty == 0.5  # the cap
    with pytest.raises(late.AssignmentError, match="per_day"):
        late.LatePolicy.from_dict({**POLICY, "per_day": 2})


def test_exports_follow_each_format_and_refuse_a_bad_roster(graded, tmp_path, capsys):
    from course_lib.grading import export

    out = _copy_out(graded, tmp_path)
    bundle = graded["root"] / "tiny"
    header = "student,name,email,lms_id,sis_id,login,section\n"
    people = [
        'honest,"Doe, Jane",jane@uni.example,101,S1,jdoe,A\n',
        "forger,Max Mustermann,max@uni.example,102,S2,mmust,A\n",
        "leaker,Ann Lee,ann@uni.example,103,S3,alee,B\n",
        "absent,Bo Absent,bo@uni.example,104,S4,babsent,B\n",
    ]
    for bad, why in (
        (header + "".join(people[:2]), "not in the roster"),
        (header + "".join(people) + people[0], "already on line"),
        (header + people[0].replace("honest", "honest") + people[1].replace("S2", "S1"), "belongs to more than one"),
    ):
        (tmp_path / "roster.csv").write_text(bad)
        assert (
            _grade_cli("--assignment", bundle, "--out", out, "--export", "canvas", "--roster", tmp_path / "roster.csv")
            == 2
        )
        assert why in capsys.readouterr().err and not (out / "export").exists()
    (tmp_path / "roster.csv").write_text(header + "".join(people))
    options = ["--assignment", bundle, "--out", out, "--roster", tmp_path / "roster.csv"]
    assert _grade_cli(*options, *[f"--export={f}" for f in export.FORMATS]) == 0
    total = _students(out)

    canvas = _csv(out / "export" / "canvas.csv")
    assert canvas[0] == export.CANVAS_FIXED + ["tiny"] and canvas[1][0].strip() == "Points Possible"
    assert canvas[1][-1] == "12"  # 7 automatic + 3 (the written answer) + 2 (the task) by hand
    rows = {r[2]: r for r in canvas[2:]}  # by SIS User ID
    assert (
        rows["S1"][:5] == ["Doe, Jane", "101", "S1", "jdoe", "A"] and float(rows["S1"][5]) == total["honest"]["total"]
    )
    assert rows["S3"][5] == "0" and rows["S4"][5] == "0"  # not accepted; no submission (--missing zero)

    gradescope = _csv(out / "export" / "gradescope.csv")
    assert gradescope[0] == export.GRADESCOPE_COLUMNS
    by_sid = {r[2]: dict(zip(gradescope[0], r)) for r in gradescope[1:]}
    assert (by_sid["S1"]["First Name"], by_sid["S1"]["Last Name"], by_sid["S1"]["Email"]) == (
        "Jane",
        "Doe",
        "jane@uni.example",
    )
    assert by_sid["S2"]["Lateness (H:M:S)"] == "36:00:00" and by_sid["S4"]["Status"] == "Missing"
    assert float(by_sid["S2"]["Total Score"]) == pytest.approx(total["forger"]["total"])

    moodle = _csv(out / "export" / "moodle.csv")
    assert moodle[0] == export.MOODLE_FIXED + ["Assignment: tiny (Real)", "Assignment: tiny (Feedback)"]
    by_mail = {r[4]: r for r in moodle[1:]}
    assert "not accepted" in by_mail["ann@uni.example"][6] and by_mail["bo@uni.example"][6] == "no submission"

    plain = list(csv.DictReader(io.StringIO((out / "export" / "csv.csv").read_text())))
    assert list(plain[0]) == export.CSV_COLUMNS and {r["student"] for r in plain} == {*TIMES, "absent"}
    assert _grade_cli(*options, "--export", "canvas", "--missing", "blank") == 0
    assert {r[2]: r[5] for r in _csv(out / "export" / "canvas.csv")[2:]}["S4"] == ""


def test_manual_marks_are_merged_checked_and_kept(graded, tmp_path, capsys):
    out = _copy_out(graded, tmp_path)
    bundle = graded["root"] / "tiny"
    marking = tmp_path / "marks.csv"
    options = ["--assignment", bundle, "--out", out, "--manual", marking]
    assert _grade_cli(*options) == 0 and "fill in the points" in capsys.readouterr().out
    rows = _csv(marking)
    assert rows[0] == ["student", "cell", "max_points", "points", "comment"]
    assert sorted(r[0] for r in rows[1:] if r[1] == "why") == sorted(TIMES)
    good = (
        "student,cell,max_points,points,comment\nhonest,why,3,3,<b>clear</b> and right\nforger,why,3,1.5,\n"
        + "".join(f"{s},plot_task,2,2,\n" for s in TIMES)  # the task's own test: test_a_task_cell_is_marked_by_hand
    )
    for bad, why in (
        (good + "nobody,why,3,1,\n", "'nobody'"),
        (good + "leaker,nocell,3,1,\n", "'nocell' is not a manually graded cell"),
        (good + "leaker,why,3,4,\n", "maximum is 3"),
        (good + "honest,why,3,1,\n", "given twice"),
        (good + "leaker,why,3,many,\n", "not a number"),
    ):
        marking.write_text(bad)
        assert _grade_cli(*options) == 2
        err = capsys.readouterr().err
        assert why in err and "nothing was merged" in err and len(err.strip().splitlines()) == 1
        assert not (out / "manual.json").exists()
    marking.write_text(good)
    assert (
        _grade_cli(*options) == 0
        and "1 manually graded cell(s) still unmarked, e.g. leaker: why" in capsys.readouterr().out
    )
    students = _students(out)
    assert (students["honest"]["manual_points"], students["honest"]["total"]) == (5.0, 12.0)
    assert json.loads((out / "summary.json").read_text())["unmarked"] == {"leaker": ["why"]}
    feedback = (out / "feedback" / "honest.md").read_text()
    assert "why: 3 / 3, graded by hand: &lt;b&gt;clear&lt;/b&gt; and right" in feedback
    # Grading the class again (here: resuming, nothing changed) never overwrites a manual mark.
    from course_lib.grading.grade import grade

    grade(
        sorted(graded["subs"].iterdir()),
        str(bundle),
        out,
        fast=True,
        progress=False,
        resume=True,
        times=graded["times"],
    )
    assert _students(out)["honest"]["manual_points"] == 5.0


def test_a_task_cell_is_marked_by_hand_like_a_written_answer(graded, tmp_path, capsys):
    """An nbgrader task (a locked markdown cell with points, no answer in it): listed for every student in the marking
    file, unmarked until marked (never "no answer": the work is elsewhere in the notebook), merged, and kept when the
    class is graded again."""
    out = _copy_out(graded, tmp_path)
    bundle = graded["root"] / "tiny"
    for student, res in graded["results"].items():
        task = next(q for q in res.questions if q.question == "plot_task")
        assert (task.kind, task.points, task.max_points, task.status) == ("task", None, 2.0, "manual"), student
    assert all("plot_task" in cells for cells in json.loads((out / "summary.json").read_text())["unmarked"].values())
    marking = tmp_path / "marks.csv"
    options = ["--assignment", bundle, "--out", out, "--manual", marking]
    assert _grade_cli(*options) == 0
    capsys.readouterr()
    rows = [r for r in _csv(marking)[1:] if r[1] == "plot_task"]
    assert sorted(r[0] for r in rows) == sorted(TIMES) and {(r[2], r[3]) for r in rows} == {("2", "")}
    marking.write_text("student,cell,max_points,points,comment\nleaker,plot_task,2,3,\n")
    assert _grade_cli(*options) == 2 and "maximum is 2" in capsys.readouterr().err  # the task's own maximum
    marking.write_text("student,cell,max_points,points,comment\nhonest,plot_task,2,1.5,axes unlabelled\n")
    assert _grade_cli(*options) == 0
    assert "still unmarked" in capsys.readouterr().out
    unmarked = json.loads((out / "summary.json").read_text())["unmarked"]
    assert "plot_task" not in unmarked["honest"] and all("plot_task" in unmarked[s] for s in ("forger", "leaker"))
    honest = _students(out)["honest"]
    assert (honest["manual_points"], honest["total"]) == (1.5, 8.5)  # 7 automatic + 1.5 by hand; "why" unmarked
    feedback = (out / "feedback" / "honest.md").read_text()
    assert "plot\\_task: 1.5 / 2, graded by hand: axes unlabelled" in feedback  # markdown-escaped name
    from course_lib.grading.grade import grade

    summary = out / "summary.json"
    entry = json.loads(summary.read_text())
    del entry["students"]["honest"]  # honest is graded again (a killed run), the others are kept
    summary.write_text(json.dumps(entry))
    again = grade(
        sorted(graded["subs"].iterdir()),
        str(bundle),
        out,
        fast=True,
        progress=False,
        resume=True,
        times=graded["times"],
    )
    assert (
        next(q for r in again if r.student == "honest" for q in r.questions if q.question == "plot_task").points is None
    )
    assert _students(out)["honest"]["manual_points"] == 1.5  # the autograder's result never overwrites the mark
    assert "plot_task" not in json.loads(summary.read_text())["unmarked"].get("honest", [])


def test_resume_finishes_a_killed_run_and_refuses_another_version(graded, tmp_path):
    from course_lib.grading.grade import grade
    from course_lib.grading.markup import AssignmentError

    out = _copy_out(graded, tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    del summary["students"]["forger"]  # as a run killed before forger finished leaves it
    (out / "summary.json").write_text(json.dumps(summary))
    bundle = graded["root"] / "tiny"
    subs = sorted(graded["subs"].iterdir())
    results = grade(subs, str(bundle), out, workers=1, fast=True, progress=False, resume=True, times=graded["times"])
    before = {s: round(r.seconds, 2) for s, r in graded["results"].items()}  # as summary.json keeps them
    assert [r.student for r in results] == ["forger", "honest", "leaker"]
    assert {r.student for r in results if r.seconds != before[r.student]} == {"forger"}  # only it was graded again
    assert _csv(out / "grades.csv") == _csv(graded["out"] / "grades.csv")  # every student once, as before
    other = json.loads((bundle / "grading" / "tiny.json").read_text())
    other["cells"][2]["points"] = 4.0
    (tmp_path / "other.json").write_text(json.dumps(other))
    written = (out / "summary.json").read_bytes()
    with pytest.raises(AssignmentError, match="another version of tiny"):
        grade(subs, str(tmp_path / "other.json"), out, fast=True, progress=False, resume=True)
    assert (out / "summary.json").read_bytes() == written


def test_shards_merge_into_the_same_class_files(graded, tmp_path, capsys):
    bundle = graded["root"] / "tiny"
    out = tmp_path / "sharded"
    subs = sorted(graded["subs"].iterdir())[:2]  # forger, honest: one each
    common = ["--assignment", bundle, "--out", out, "--fast", "--quiet", "--times", graded["times"]]
    assert _grade_cli(*common, "--shard", "0/2", "--", *subs) == 0
    assert not (out / "grades.csv").exists() and (out / "shards" / "0-of-2.json").is_file()
    assert _grade_cli("--assignment", bundle, "--out", out, "--merge") == 2
    assert "shard(s) 1/2 have not finished" in capsys.readouterr().err
    assert _grade_cli(*common, "--shard", "1/3", "--", *subs) == 2 and "another split" in capsys.readouterr().err
    other = json.loads((bundle / "grading" / "tiny.json").read_text())
    other["cells"][2]["points"] = 4.0
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert _grade_cli(*common[2:], "--assignment", tmp_path / "other.json", "--shard", "1/2", "--", *subs) == 2
    assert "another version of tiny" in capsys.readouterr().err and not (out / "shards" / "1-of-2.json").exists()
    assert _grade_cli(*common, "--shard", "1/2", "--", *subs) == 0
    assert _grade_cli("--assignment", bundle, "--out", out, "--merge") == 0
    merged = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    alone = _csv(graded["out"] / "grades.csv")
    assert _csv(out / "grades.csv") == [alone[0]] + [r for r in alone[1:] if r[0] in ("forger", "honest")]
    points = {s: (r["points"], r["total"]) for s, r in _students(out).items()}
    assert points == {s: (r["points"], r["total"]) for s, r in _students(graded["out"]).items() if s != "leaker"}
    assert _grade_cli("--assignment", bundle, "--out", out, "--merge") == 0  # idempotent
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == merged
    assert _grade_cli("--assignment", tmp_path / "other.json", "--out", out, "--merge") == 2
    assert "another version" in capsys.readouterr().err


def test_feedback_page_in_a_browser_shows_points_and_runs_nothing_of_the_students(graded, tmp_path):
    from test_browser import find_browser

    chromium, driver_path = find_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    page = graded["out"] / "feedback" / "forger.html"
    source = page.read_text()
    assert "<script>window.pwned" not in source and "<img src=x" not in source  # escaped, as text
    assert "Content-Security-Policy" in source
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.get(page.as_uri())
        assert driver.execute_script("return typeof window.pwned") == "undefined"
        boxes = driver.find_elements(By.CSS_SELECTOR, ".course-lib-grader")
        texts = [b.text for b in boxes]
        summary = next(t for t in texts if "Automatically graded" in t)
        forger = graded["results"]["forger"]
        assert f"Automatically graded: {forger.points:g} / {forger.max_points:g} points." in summary
        assert "20% late penalty" in summary and "test_cases" in summary
        assert any(t.startswith("Grader: test_double: 2 / 2 points (passed)") for t in texts)
        assert any(t.startswith("Grader: why: ? / 3 points (needs manual grading)") for t in texts)
        assert not any("Grader: why: 3 / 3" in t or "100 / 100" in t for t in texts)  # the student's imitations
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Grader: why: 3 / 3 points (passed)" in body  # shown, as the student's own text
        students = driver.find_elements(By.CSS_SELECTOR, ".course-lib-student")
        assert all(not s.find_elements(By.CSS_SELECTOR, "[class], [style], script, img") for s in students)
    finally:
        driver.quit()


def test_shard_and_digest_helpers(tmp_path):
    import os

    from course_lib.grading import classwork
    from course_lib.grading.markup import AssignmentError

    assert classwork.parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "-1/2", "1/0"):
        with pytest.raises(AssignmentError, match="--shard"):
            classwork.parse_shard(bad)
    subs = [(Path(n), n) for n in ("d", "a", "c", "b", "e")]
    slices = [[s for _, s in classwork.shard_slice(subs, i, 2)] for i in range(2)]
    assert slices == [["a", "c", "e"], ["b", "d"]]  # deterministic whatever the order given
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "hw.ipynb").write_text("{}")
    first = classwork.submission_digest(folder, "hw.ipynb")
    os.mkfifo(folder / "pipe")  # never opened (it would block)
    (folder / "link").symlink_to("/etc/passwd")
    with_links = classwork.submission_digest(folder, "hw.ipynb")
    assert with_links not in ("", first)  # two more entries
    (folder / "link").unlink()
    (folder / "link").symlink_to("/etc/shadow")  # the target counts, never what is behind it
    assert classwork.submission_digest(folder, "hw.ipynb") != with_links
    (folder / "data").mkdir()
    (folder / "data" / "table.csv").write_bytes(b"x" * 10)
    with_data = classwork.submission_digest(folder, "hw.ipynb")
    assert with_data != first
    # Resuming re-grades a submission whose data file changed, even with the same names, count and sizes.
    (folder / "data" / "table.csv").write_bytes(b"y" * 10)
    changed = classwork.submission_digest(folder, "hw.ipynb")
    assert changed not in (with_data, "")
    (folder / "data" / "table.csv").write_bytes(b"x" * 10)
    assert classwork.submission_digest(folder, "hw.ipynb") == with_data  # the same files: the same digest
    (folder / "data" / "table.csv").rename(folder / "data" / "other.csv")
    assert classwork.submission_digest(folder, "hw.ipynb") != with_data  # a name counts too
    (tmp_path / "bob.ipynb").symlink_to(folder / "hw.ipynb")
    assert classwork.submission_digest(tmp_path / "bob.ipynb", "hw.ipynb") == ""  # a link is not read


def test_spawned_workers_grade_as_the_forked_ones(graded, tmp_path):
    """The fixture's class was graded by workers forked from the fork server (the default); with forking off
    (COURSE_LIB_GRADING_FORK=0, or when the server cannot fork) each worker starts afresh and grades the same."""
    from course_lib.grading.grade import grade

    honest = [p for p in graded["subs"].iterdir() if p.stem == "honest"]
    alone = grade(honest, str(graded["root"] / "tiny"), tmp_path / "out", fast=True, progress=False, fork_workers=False)
    forked = graded["results"]["honest"]
    assert [(q.question, q.points, q.status) for q in alone[0].questions] == [
        (q.question, q.points, q.status) for q in forked.questions
    ]
    phases = {"prepare_s", "kernel_imports_s", "cells_s", "worker_process_s"}
    assert phases <= set(alone[0].timings) and phases <= set(forked.timings)  # where the time went, both ways
