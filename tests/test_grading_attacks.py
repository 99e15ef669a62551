"""A hostile class per assignment: every attack of issue 17, graded in one class run with honest students.

For each assignment, the attacks of tests/grading_attacks.py are generated from its student notebook (and its
reference solution) and know every path that matters; they are graded in ONE class run (`grading_attacks.
graded_class`: 2 workers) together with the assignment's other submission fixtures and an honest correct and an
honest partly correct student, shared by every test here and in tests/test_grading_assignments.py, also across
pytest-xdist workers. Each attack must get exactly the score it deserves (0 for a blank notebook with an attack,
full marks for correct answers plus resource bombs), the honest students theirs, nothing outside a submission's
own folder may change, no process may survive, and the feedback cannot be forged or show a hidden test. In the
run of assignment 2 two grading workers are killed and stopped from outside; a separate run kills the grader
itself. Issue 36's sandbox escapes (`test_1_...` to `test_8_...`, one per finding) are graded in one more class
(`grading_attacks.escape_class`, assignment 4): with `course-lib grade` run from inside the class folder, every
name after `--`, while a second grader run grades a second class of honest students on the same machine. These
need the sandbox (bubblewrap); .ci/run installs it.
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
from course_lib.grading.grade import file_stem

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
    # The assignments have hidden checks: the kernel's messages stay with the instructor (issue 32), escaped there.
    assert "Automatically graded" not in feedback.split("## Checks")[1], "a message of the kernel's reached the student"
    failed = json.dumps(hostile["summary"]["students"]["forges_feedback"]["failed"])
    assert "Automatically graded" in failed, "the forged text should reach the instructor's summary"


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


# ------------------------------------------------------------------------------ issue 36: escaping the sandbox
@pytest.fixture(scope="module")
def escape(tmp_path_factory):
    """Issue 36's class (grading_attacks.escape_class): graded with `course-lib grade` from inside the class folder,
    every name after `--`, while a second grader run grades a second class; one run of each per test session.
    Its folders hold trees deeper than any recursion limit: removed here, iteratively, so that pytest's own
    (recursive) clean-up of old temporary folders never meets them."""
    yield grading_attacks.escape_class(tmp_path_factory)
    grading_attacks.remove_escape_class(tmp_path_factory)


def _printed(out, student: str) -> str:
    """Everything the executed notebook returned to `student` shows."""
    nb = json.loads((out / "executed" / f"{file_stem(student)}.ipynb").read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def test_escape_every_student_is_graded_once_and_the_honest_ones_keep_their_scores(escape):
    students = escape["summary"]["students"]
    assert escape["grader_code"] == 0 and set(students) == set(escape["deserved"])
    assert {s: students[s]["points"] for s in students} == escape["deserved"], {
        s: students[s]["events"] for s in students
    }
    assert {s: r["points"] for s, r in escape["summary_b"]["students"].items()} == escape["deserved_b"]
    rows = list(csv.DictReader((escape["out"] / "grades.csv").open()))
    # Names starting with - = + @ keep a leading ' in the CSV (no formulas in spreadsheets), as before.
    assert sorted({r["student"].removeprefix("'") for r in rows}) == sorted(students)
    assert len(rows) == escape["questions"] * len(students)  # every submission once, the refused ones too
    assert escape["summary"]["warning"] == "" and escape["summary"]["sandbox"].startswith("bubblewrap")


def test_escape_nothing_outside_a_students_folder_is_written_or_read(escape):
    before, source, bundle = escape["before"], *assignment_paths(escape["name"])
    assert tree(escape["klass"]) == before["tree"], "a submission (or the class folder) was changed"
    assert tree(escape["canary"]) == before["canary"], "a folder outside every submission was changed"
    assert digest(source) == before["source"] and digest(bundle) == before["bundle"], "the instructor's files changed"
    assert {p.name: os.readlink(p) for p in escape["klass"].iterdir() if p.is_symlink()} == before["links"]
    assert sorted(p.name for p in escape["out"].iterdir()) == ["executed", "feedback", "grades.csv", "summary.json"]
    for out in (escape["out"], escape["out_b"]):
        for path in (p for p in out.rglob("*") if p.is_file()):
            text = path.read_text()
            for secret in (
                escape["secrets"] + escape["hidden_lines"]
            ):  # another student's file, the canary, hidden tests
                assert secret not in text, (path.name, secret)


def test_escape_the_next_run_starts_cleanly(escape):
    assert not escape["stale_left"], "a killed grader's scratch folder (a tree 1,500 levels deep) stayed"
    assert escape["scratch_left"] == [] and escape["survivors"] == []
    hierarchy = cgroup.find()[0]
    if hierarchy is not None:
        assert list(hierarchy.parent.glob(f"{escape['grader_pid']}-*")) == [], "a submission's cgroup stayed"
    if os.geteuid() == 0:  # the run's uid block is free again
        block = sandbox.reserve_uids(2)
        block.release()


def test_1_student_code_never_runs_as_root_or_with_capabilities(escape):
    """Modules in the submission folder that shadow the runner's imports never run in the runner; the kernel and
    the runner run as the sandbox's uid with no capability and no_new_privs, isolated (-I) in /."""
    printed = _printed(escape["out"], "shadows")
    kernel = next(ln for ln in printed.splitlines() if ln.startswith("KERNEL")).split()
    runner = next(ln for ln in printed.splitlines() if ln.startswith("RUNNER")).split(maxsplit=6)
    for who in (kernel, runner):
        uid, cap_eff, cap_bnd, no_new_privs = who[1:5]
        assert int(uid) != 0 and int(cap_eff, 16) == 0 and int(cap_bnd, 16) == 0 and no_new_privs == "1", who
    assert runner[5] == "/" and "'-I'" in runner[6], runner  # working directory "/", isolated interpreter
    tries = next(ln for ln in printed.splitlines() if ln.startswith("TRIES")).split()[1:]
    assert len(tries) == 6 and not [t for t in tries if t.endswith("=ALLOWED")], tries
    shadowed = [ln for ln in printed.splitlines() if ln.startswith("SHADOW")]
    assert not [ln for ln in shadowed if "course_lib.grading.runner" in ln or " uid=0 " in ln], shadowed
    assert "STOLEN" not in printed
    assert escape["summary"]["students"]["shadows"]["points"] == 0


def test_2_the_graders_workers_never_import_from_its_working_directory(escape):
    """The grader ran in the class folder, which holds student folders named json/ and course_lib/ (a forged
    course_lib.grading.worker that gives full marks to everyone); neither was imported by any worker."""
    students = escape["summary"]["students"]
    for module in ("json", "course_lib"):
        assert students[module]["points"] == 0 and students[module]["status"] == "graded"
        assert "not a valid notebook" in " ".join(students[module]["events"])
    assert not [p for p in escape["canary"].iterdir() if p.name.startswith("escaped-")]
    assert students["partial"]["points"] < students["partial"]["max_points"]  # no forged full marks


def test_3_trees_deeper_than_any_recursion_limit_cost_only_their_own_submission(escape):
    """A submission folder holding a tree 1,500 levels deep, a kernel that makes one 3,000 levels deep in its
    folder, and a killed grader's scratch folder 1,500 levels deep: each costs nothing but its own verdict."""
    students = escape["summary"]["students"]
    assert "deeper than 32 folders" in " ".join(students["junk_folder"]["events"])
    assert set(students["bombs"]["failed"]) == {"test_constraint_matrix", "test_primal", "test_dual", "test_cdf"}
    assert not escape["stale_left"] and escape["scratch_left"] == []
    assert all(s["status"] in ("graded", "refused") for s in students.values())


def test_4_decoding_what_a_kernel_wrote_is_bounded_by_what_it_unpacks_to(escape):
    """Results whose .npz declares 16 GiB (64 MB of real zeros), JSON of millions of empty lists or nested 200,000
    deep, an executed notebook and a report of empty lists, a submitted notebook of empty lists: each is refused
    from its header or its counts, as that submission's verdict."""
    students = escape["summary"]["students"]
    failed = students["bombs"]["failed"]
    assert "would unpack to 17,180 MB" in failed["test_constraint_matrix"], failed
    assert "over the limit of 1,000,000" in failed["test_primal"], failed
    assert "nested" in failed["test_dual"], failed
    executed = json.loads((escape["out"] / "executed" / "bombs.ipynb").read_text())
    texts = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert texts and all(t.startswith("[course-lib grade]") for t in texts)  # the kernel's notebook was refused
    assert "over the limit of 2,000,000" in " ".join(students["notebook_bomb"]["events"])


def test_5_a_submission_is_copied_by_apparent_size_without_sparse_or_special_files(escape):
    students = escape["summary"]["students"]
    events = " ".join(students["junk_folder"]["events"])
    for why in ("a sparse file of 3.22 GB", "a fifo", "a socket", "a symbolic link", "a hard link"):
        assert why in events, events
    assert "a device" in events or os.geteuid() != 0
    assert students["junk_folder"]["points"] == 0 and (escape["out"] / "executed" / "junk_folder.ipynb").is_file()
    assert "holds more than 0.05 GB" in " ".join(students["too_big"]["events"])


def test_6_concurrent_grader_runs_never_share_sandbox_uids(escape):
    """A fork bomb held every process its uid may have for the whole of a second grader run on this machine; the
    second run's honest students kept their scores (with one uid per slot for every run they scored 0)."""
    assert escape["fork_bomb_held"] >= 100 and escape["fork_bomb_held_after_second_run"] >= 100
    assert {s: r["points"] for s, r in escape["summary_b"]["students"].items()} == escape["deserved_b"]
    printed = _printed(escape["out"], "fork_bomb")
    uid, started = re.search(r"FORK BOMB uid (\d+) started (\d+)", printed).groups()
    assert int(uid) != 0 and int(started) < 256  # the process limit of its own uid held


def test_7_symlinked_student_folders_are_refused_one_by_one(escape):
    students = escape["summary"]["students"]
    for link in ("link_to_reference", "link_outside"):
        assert students[link]["status"] == "refused" and students[link]["points"] == 0
        assert "is a symbolic link" in " ".join(students[link]["events"])
    assert students["reference"]["points"] == escape["deserved"]["reference"]
    assert students["reference"]["submission"].endswith("/reference")


def test_8_names_that_look_like_options_need_double_dash(escape):
    assert escape["refused"]["code"] == 2 and "after `--`" in escape["refused"]["stderr"]
    assert not escape["refused_out"].exists(), "a refused command line wrote something"
    students = escape["summary"]["students"]
    assert students["--total-timeout=3"]["points"] == 0  # a student, not an option
    rows = list(csv.DictReader((escape["out"] / "grades.csv").open()))
    assert "'--total-timeout=3" in {r["student"] for r in rows}  # kept (spreadsheet-quoted) in the CSV
    names = [p.name for p in (escape["out"] / "feedback").iterdir()] + os.listdir(escape["out"] / "executed")
    assert f"{file_stem('--total-timeout=3')}.md" in names and not [n for n in names if n.startswith(("-", "."))]
