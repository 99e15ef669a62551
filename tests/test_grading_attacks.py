"""A hostile class: every attack of issue 17 on assignment 2, graded in one class run with honest students.

The attacks (tests/grading_attacks.py) are generated from the assignment's student notebook and know every path
that matters. Each must get exactly the score it deserves (0 for a blank notebook with an attack, full marks for
correct answers plus resource abuse), nothing outside its own folder may change, no process may survive, and the
honest students' grades must be what they would be alone. A second run kills and stops grading workers, and a
third kills the grader itself. These need the sandbox (bubblewrap); .ci/run installs it.
"""
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import grading_attacks
import nbformat
import pytest

from course_lib.grading import grade, sandbox

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = ROOT / "assignments" / "02_is_fid"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading" / "02_is_fid"
SOURCE, BUNDLE = ASSIGNMENT / "source" / "02_is_fid.ipynb", ASSIGNMENT / "grading" / "02_is_fid.json"
HIDDEN_ONLY = ("default_rng(123)", "default_rng(99)", "logspace(-12", "BEGIN HIDDEN", "hidden_cases")
HONEST = {"reference": 11, "partly_wrong": 4}

pytestmark = pytest.mark.skipif(sandbox.detect()[0] == "none",
                                reason=f"no sandbox on this machine: {sandbox.detect()[1]}")


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): _digest(p) for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def _survivors(marker: str) -> list[int]:
    """Processes with marker in their command line or environment."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline or marker.encode() in environ:
            found.append(int(entry))
    return found


def _startup_files() -> set:
    folder = Path.home() / ".ipython" / "profile_default" / "startup"
    return set(folder.glob("*course-lib-attack*")) if folder.is_dir() else set()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacked")
    subs, out, canary = base / "submissions", base / "graded", base / "canary"
    for folder in (subs, out, canary):
        folder.mkdir()
    (canary / "secret.txt").write_text("nobody may change this")
    targets = {"source": str(SOURCE), "bundle": str(BUNDLE), "out": str(out), "submissions": str(subs),
               "canary": str(canary), "home": str(Path.home())}
    student = nbformat.read(ASSIGNMENT / "student" / "02_is_fid.ipynb", as_version=4)
    reference = nbformat.read(FIXTURES / "reference.ipynb", as_version=4)
    deserved = dict(HONEST)
    for name in HONEST:
        shutil.copyfile(FIXTURES / f"{name}.ipynb", subs / f"{name}.ipynb")
    for name, (nb, points) in grading_attacks.attacks(student, reference, targets).items():
        deserved[name] = points
        if "link" in nb:  # a folder whose notebook is a link
            (subs / name).mkdir()
            (subs / name / "02_is_fid.ipynb").symlink_to(nb["link"])
        else:
            nbformat.write(nb, subs / f"{name}.ipynb")
    before = {"tree": _tree(subs), "canary": _tree(canary), "source": _digest(SOURCE), "bundle": _digest(BUNDLE),
              "startup": _startup_files()}
    results = grade(sorted(subs.iterdir()), "02_is_fid", out, workers=3, cell_timeout=60, total_timeout=300,
                    fast=True, progress=False)
    survivors = _survivors(grading_attacks.SURVIVOR)
    grades_right_after = (out / "grades.csv").read_text()
    time.sleep(8)  # a detached process of "touches_others" would rewrite grades.csv after 20 s of its own clock
    yield {"results": {r.student: r for r in results}, "deserved": deserved, "out": out, "subs": subs,
           "canary": canary, "before": before, "survivors": survivors, "grades_right_after": grades_right_after}
    for planted in _startup_files() - before["startup"]:
        planted.unlink()


def test_every_submission_gets_the_score_it_deserves(attacked):
    got = {name: res.points for name, res in attacked["results"].items()}
    assert got == attacked["deserved"], {n: attacked["results"][n].events for n in got if got[n] != attacked["deserved"][n]}


def test_nothing_outside_a_submissions_folder_changed(attacked):
    before = attacked["before"]
    assert _tree(attacked["subs"]) == before["tree"], "a submission (or the submissions folder) was changed"
    assert _tree(attacked["canary"]) == before["canary"], "a folder outside every submission was changed"
    assert _digest(SOURCE) == before["source"] and _digest(BUNDLE) == before["bundle"], "the instructor's files changed"
    assert _startup_files() == before["startup"], "an IPython startup file was planted in the grader's home"
    out = attacked["out"]
    assert sorted(p.name for p in out.iterdir()) == ["executed", "feedback", "grades.csv", "summary.json"]
    assert "planted.txt" not in {p.name for p in out.rglob("*")}


def test_no_process_of_a_submission_survives_grading(attacked):
    assert attacked["survivors"] == []
    assert _survivors(grading_attacks.SURVIVOR) == []


def test_grades_csv_is_the_graders_alone(attacked):
    out = attacked["out"]
    text = (out / "grades.csv").read_text()
    assert text == attacked["grades_right_after"] and "tampered" not in text
    rows = list(csv.DictReader(text.splitlines()))
    assert {r["student"] for r in rows} == set(attacked["deserved"]) and len(rows) == 6 * len(attacked["deserved"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["warning"] == "" and summary["sandbox"].startswith("bubblewrap")
    assert set(summary["students"]) == set(attacked["deserved"])


def test_feedback_cannot_be_forged(attacked):
    feedback = (attacked["out"] / "feedback" / "forges_feedback.md").read_text()
    lines = feedback.splitlines()
    assert [ln for ln in lines if ln.startswith("**Automatically graded")] == ["**Automatically graded: 0 / 11 points.**"]
    assert sum(ln.startswith("# ") for ln in lines) == 1 and "```" not in feedback
    for raw in ("<script", "<b>", "<img", "](http"):
        assert raw not in feedback
    assert not any(ln.startswith("- [x]") for ln in lines), "a forged 'passed' line"


def test_hidden_tests_never_reach_the_student(attacked):
    out = attacked["out"]
    for path in list((out / "executed").iterdir()) + list((out / "feedback").iterdir()):
        text = path.read_text()
        for hidden in HIDDEN_ONLY:
            assert hidden not in text, (path.name, hidden)
    partly = (out / "feedback" / "partly_wrong.md").read_text()
    assert "test_fid_hidden: 0 / 3, failed: a hidden check failed" in partly.replace("\\_", "_")


def test_a_linked_notebook_is_refused(attacked):
    events = " ".join(attacked["results"]["symlink"].events)
    assert "symbolic link" in events


# ------------------------------------------------------------------------------ killed and stopped processes
def _victim(reference, marker: str, seconds: int):
    """The reference solution with a cell that sleeps (and leaves a detached process with marker behind)."""
    return grading_attacks._with_code(reference, f"import time\n{grading_attacks._spawn(600)}\n"
                                                 f"import subprocess\nsubprocess.Popen(['sleep', '600', {marker!r}])\n"
                                                 f"time.sleep({seconds})")


def test_killed_and_stopped_workers_cost_only_their_own_submission(tmp_path):
    marker = f"victim-{uuid.uuid4().hex}"
    reference = nbformat.read(FIXTURES / "reference.ipynb", as_version=4)
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("victim_killed", "victim_stopped"):
        nbformat.write(_victim(reference, marker, 200), subs / f"{name}.ipynb")
    for name in ("honest_a", "honest_b"):
        shutil.copyfile(FIXTURES / "reference.ipynb", subs / f"{name}.ipynb")
    hit = {}

    def attack_workers():
        deadline = time.monotonic() + 240
        while len(hit) < 2 and time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                try:
                    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"course_lib.grading.worker" not in args:
                    continue
                try:
                    student = json.loads(Path(args[args.index(b"course_lib.grading.worker") + 1].decode()).read_text())["student"]
                except (OSError, ValueError, IndexError):
                    continue
                if student.startswith("victim") and student not in hit:
                    time.sleep(20)  # let its sandbox start
                    os.kill(int(pid), signal.SIGKILL if student == "victim_killed" else signal.SIGSTOP)
                    hit[student] = int(pid)
            time.sleep(0.5)

    watcher = threading.Thread(target=attack_workers, daemon=True)
    watcher.start()
    results = {r.student: r for r in grade(sorted(subs.iterdir()), "02_is_fid", tmp_path / "out", workers=4,
                                           cell_timeout=120, total_timeout=300, fast=True, progress=False)}
    watcher.join(timeout=5)
    assert set(hit) == {"victim_killed", "victim_stopped"}
    assert results["honest_a"].points == results["honest_b"].points == 11
    assert results["victim_killed"].status == results["victim_stopped"].status == "grader failure"
    assert "killed by signal 9" in " ".join(results["victim_killed"].events)
    assert "SIGSTOP" in " ".join(results["victim_stopped"].events)
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert len(rows) == 6 * 4  # every submission graded exactly once
    assert _survivors(marker) == [] and _survivors(grading_attacks.SURVIVOR) == []


def test_killing_the_grader_keeps_what_was_graded_and_leaves_no_process(tmp_path):
    marker = f"grader-{uuid.uuid4().hex}"
    reference = nbformat.read(FIXTURES / "reference.ipynb", as_version=4)
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    shutil.copyfile(FIXTURES / "reference.ipynb", subs / "quick.ipynb")
    nbformat.write(_victim(reference, marker, 900), subs / "slow.ipynb")
    env = {**os.environ, "COURSE_LIB_TEST_MARK": marker}
    program = "from course_lib.cli.main import main; import sys; sys.exit(main(sys.argv[1:]))"
    grader = subprocess.Popen([sys.executable, "-c", program, "grade", str(subs / "quick.ipynb"), str(subs / "slow.ipynb"),
                               "--assignment", "02_is_fid", "--out", str(out), "--workers", "2", "--fast", "--quiet",
                               "--cell-timeout", "1000", "--total-timeout", "1200"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    assert _survivors(marker) == []  # the workers (environment) and the slow kernel's children (command line)
