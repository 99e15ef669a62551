"""A hostile class per assignment: every attack of issue 17, graded in one class run with honest students.

For each assignment, the attacks of tests/grading_attacks.py are generated from its student notebook (and its
reference solution) and know every path that matters; they are graded in ONE class run (`grading_attacks.
graded_class`: 2 workers) together with the assignment's other submission fixtures and an honest correct and an
honest partly correct student, shared by every test here and in tests/test_grading_assignments.py, also across
pytest-xdist workers. Each attack must get exactly the score it deserves (0 for a blank notebook with an attack,
full marks for correct answers plus resource bombs), the honest students theirs, nothing outside a submission's
own folder may change, no process may survive, and the feedback cannot be forged or show a hidden test. In the
run of assignment 2 two grading workers are killed and stopped from outside; a separate run kills the grader
itself. These need the sandbox (bubblewrap); .ci/run installs it.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import grading_attacks
import nbformat
import pytest
from grading_attacks import FIXTURES, assignment_paths, digest, survivors, tree

from course_lib.grading import cgroup, sandbox

ASSIGNMENTS = ["01_dcgan_mnist", "02_is_fid", "03_improve_dcgan", "04_wasserstein_lp"]

pytestmark = pytest.mark.skipif(
    sandbox.detect()[0] == "none", reason=f"no sandbox on this machine: {sandbox.detect()[1]}"
)


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def hostile(request, tmp_path_factory):
    """The graded class of one assignment (graded once per test session, whichever xdist worker asks first)."""
    return grading_attacks.graded_class(request.param, tmp_path_factory)


def test_every_attack_and_honest_student_gets_the_score_it_deserves(hostile):
    students = hostile["summary"]["students"]
    got = {name: students[name]["points"] for name in hostile["deserved"]}
    assert got == hostile["deserved"], {n: students[n]["events"] for n in got if got[n] != hostile["deserved"][n]}


def test_nothing_outside_a_submissions_folder_changed(hostile):
    before = hostile["before"]
    source, bundle = assignment_paths(hostile["name"])
    assert tree(hostile["subs"]) == before["tree"], "a submission (or the submissions folder) was changed"
    assert tree(hostile["canary"]) == before["canary"], "a folder outside every submission was changed"
    assert digest(source) == before["source"] and digest(bundle) == before["bundle"], "the instructor's files changed"
    assert hostile["planted"] == [], "an IPython startup file was planted in the grader's home"
    out = hostile["out"]
    assert sorted(p.name for p in out.iterdir()) == ["executed", "feedback", "grades.csv", "summary.json"]
    assert "planted.txt" not in {p.name for p in out.rglob("*")}


def test_no_process_of_a_submission_survives_grading(hostile):
    assert hostile["survivors"] == []
    assert [pid for marker in hostile["markers"] for pid in survivors(marker)] == []


def test_grades_csv_is_the_graders_alone(hostile):
    out = hostile["out"]
    text = (out / "grades.csv").read_text()
    assert text == hostile["grades_right_after"] and "tampered" not in text
    rows = list(csv.DictReader(text.splitlines()))
    questions = [
        c
        for c in json.loads(assignment_paths(hostile["name"])[1].read_text())["cells"]
        if c["kind"] in ("test", "manual", "task")
    ]
    students = {p.name.removesuffix(".ipynb") for p in hostile["subs"].iterdir()}
    assert {r["student"] for r in rows} == students and set(hostile["deserved"]) <= students
    assert len(rows) == len(questions) * len(students)  # every submission graded exactly once
    summary = hostile["summary"]
    assert summary["warning"] == "" and summary["sandbox"].startswith("bubblewrap")
    assert set(summary["students"]) == students


def test_feedback_cannot_be_forged(hostile):
    feedback = (hostile["out"] / "feedback" / "forges_feedback.md").read_text()
    lines = feedback.splitlines()
    full = hostile["summary"]["max_points"]
    assert [ln for ln in lines if ln.startswith("**Automatically graded")] == [
        f"**Automatically graded: 0 / {full:g} points.**"
    ]
    assert sum(ln.startswith("# ") for ln in lines) == 1 and "```" not in feedback
    for raw in ("<script", "<b>", "<img"):
        assert raw not in feedback
    assert re.search(r"(?<!\\)\]\(", feedback) is None, "a markdown link: an unescaped ]("
    assert not any(ln.startswith("- [x]") for ln in lines), "a forged 'passed' line"
    assert "Automatically graded" in feedback.split("## Checks")[1], "the forged text should be there, escaped"


def test_hidden_tests_never_reach_the_student(hostile):
    out = hostile["out"]
    assert hostile["hidden_lines"], "the assignment has hidden tests"
    for path in list((out / "executed").iterdir()) + list((out / "feedback").iterdir()):
        text = path.read_text()
        for hidden in hostile["hidden_lines"] + ["BEGIN HIDDEN"]:
            assert hidden not in text, (path.name, hidden)
    student, test = hostile["partial"]  # the honest partly correct student fails a hidden check
    feedback = (out / "feedback" / f"{student}.md").read_text().replace("\\_", "_")
    assert any(
        ln.startswith(f"- [ ] {test}: 0 / ") and ln.endswith("failed: a hidden check failed")
        for ln in feedback.splitlines()
    ), feedback
    assert hostile["summary"]["students"][student]["failed"][test] != "a hidden check failed", (
        "the instructor gets the full reason"
    )


def test_sandbox_attacks_are_graded_in_one_class(hostile):
    graded = set(hostile["deserved"])
    expected = grading_attacks.SANDBOX_ATTACKS if hostile["name"] == grading_attacks.SANDBOX_CLASS else set()
    assert graded & grading_attacks.SANDBOX_ATTACKS == expected


@pytest.fixture(scope="module")
def sandbox_class(tmp_path_factory):
    """The class that also holds the attacks on the sandbox itself (grading_attacks.SANDBOX_ATTACKS)."""
    return grading_attacks.graded_class(grading_attacks.SANDBOX_CLASS, tmp_path_factory)


def test_a_linked_notebook_is_refused(sandbox_class):
    events = " ".join(sandbox_class["summary"]["students"]["symlink"]["events"])
    assert "symbolic link" in events


def test_memory_over_the_limit_costs_only_that_submission(sandbox_class):
    hostile = sandbox_class
    bombs = hostile["summary"]["students"]["resource_bombs"]
    assert bombs["points"] == bombs["max_points"]  # the bombs came after every check
    honest = {s: hostile["summary"]["students"][s]["points"] for s in ("reference", hostile["partial"][0])}
    assert honest == {s: hostile["deserved"][s] for s in honest}
    # Whichever limit the allocation meets first stops it, and only it: the cgroup's (its kernel is killed, the
    # feedback says so) or the per-process address-space limit (the allocation raises MemoryError in the kernel,
    # which goes on). Which comes first depends on how much address space the kernel had already reserved.
    executed = (hostile["out"] / "executed" / "resource_bombs.ipynb").read_text()
    killed = any("memory limit" in e for e in bombs["events"])
    assert killed or "MemoryError after" in executed, bombs["events"]
    if killed:
        assert cgroup.find()[0] is not None


# ------------------------------------------------------------------------------ killed and stopped processes
def test_killed_and_stopped_workers_cost_only_their_own_submission(tmp_path_factory):
    """In the class run of assignment 2, one grading worker was killed (SIGKILL) and one stopped (SIGSTOP) while
    their kernels ran; every other submission got its score (above), each was graded once, nothing survived."""
    run = grading_attacks.graded_class("02_is_fid", tmp_path_factory)
    assert run["hit"] == ["victim_killed", "victim_stopped"]
    students = run["summary"]["students"]
    assert students["victim_killed"]["status"] == students["victim_stopped"]["status"] == "grader failure"
    assert "killed by signal 9" in " ".join(students["victim_killed"]["events"])
    assert "SIGSTOP" in " ".join(students["victim_stopped"]["events"])
    assert students["reference"]["points"] == 11 and students["partly_wrong"]["points"] == 4
    rows = list(csv.DictReader((run["out"] / "grades.csv").open()))
    assert len(rows) == 6 * len(students)  # every submission graded exactly once
    assert run["survivors"] == []


def test_killing_the_grader_keeps_what_was_graded_and_leaves_no_process(tmp_path):
    marker = f"grader-{uuid.uuid4().hex}"
    reference = nbformat.read(FIXTURES / "02_is_fid" / "reference.ipynb", as_version=4)
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    shutil.copyfile(FIXTURES / "02_is_fid" / "reference.ipynb", subs / "quick.ipynb")
    nbformat.write(grading_attacks.victim(reference, marker, 900), subs / "slow.ipynb")
    env = {**os.environ, "COURSE_LIB_TEST_MARK": marker}
    program = "from course_lib.cli.main import main; import sys; sys.exit(main(sys.argv[1:]))"
    grader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            program,
            "grade",
            str(subs / "quick.ipynb"),
            str(subs / "slow.ipynb"),
            "--assignment",
            "02_is_fid",
            "--out",
            str(out),
            "--workers",
            "2",
            "--fast",
            "--quiet",
            "--cell-timeout",
            "1000",
            "--total-timeout",
            "1200",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # until the quick submission is graded (the slow one sleeps for 900 s)
        if (out / "grades.csv").exists() and "quick" in (out / "grades.csv").read_text():
            break
        time.sleep(1)
    grader.kill()
    grader.wait()
    time.sleep(3)
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert {r["student"] for r in rows} == {"quick"} and sum(float(r["points"] or 0) for r in rows) == 11
    assert (out / "feedback" / "quick.md").is_file() and json.loads((out / "summary.json").read_text())["students"]
    assert survivors(marker) == []  # the workers (environment) and the slow kernel's children (command line)
