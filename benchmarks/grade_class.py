"""Grading a class: the wall time per submission, and what each attack of issue 17 scores.

    python benchmarks/grade_class.py [--students 30] [--workers N] [--fast]
    python benchmarks/grade_class.py --attacks [--workers N]

The first form grades N copies of assignment 2's reference submission in parallel and prints JSON: students,
workers, wall seconds, seconds per submission (mean) and whether every copy got full marks. The second grades
the hostile submissions of tests/grading_attacks.py (with two honest students) and prints one JSON line per
submission: its score, the score it deserves, and a final line with the processes left behind and the files
outside the submissions that changed. The attacks run with a private HOME and temporary folder, so that without
a sandbox (an older course-lib, for the "before" column) they still cannot reach this machine's real ones; the
processes they leave behind are killed at the end. Everything goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "fixtures" / "grading" / "02_is_fid" / "reference.ipynb"


def timing(args) -> None:
    from course_lib.grading import grade

    with tempfile.TemporaryDirectory() as tmp:
        subs = []
        for i in range(args.students):
            path = Path(tmp) / "submissions" / f"student{i + 1:02d}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REFERENCE, path)
            subs.append(path)
        started = time.perf_counter()
        results = grade(
            subs, "02_is_fid", Path(tmp) / "graded", workers=args.workers, fast=args.fast or None, progress=False
        )
        wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "students": args.students,
                "workers": args.workers,
                "cpu_count": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "wall_seconds": round(wall, 1),
                "mean_seconds_per_submission": round(sum(r.seconds for r in results) / len(results), 2),
                "all_full_marks": all(r.points == r.max_points for r in results),
            }
        )
    )


def _digests(folder: Path) -> dict:
    return {
        str(p): (os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def _tagged(marker: bytes) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                blob = Path(f"/proc/{entry}/cmdline").read_bytes() + Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if marker in blob:
                pids.append(int(entry))
    return pids


def attacks(args) -> None:
    import nbformat

    sys.path.insert(0, str(ROOT / "tests"))
    import grading_attacks

    base = Path(tempfile.mkdtemp(prefix="attacks-"))
    home, tmp = base / "home", base / "tmp"
    for folder in (home, tmp):
        folder.mkdir()
    os.environ["HOME"], os.environ["TMPDIR"] = str(home), str(tmp)
    tempfile.tempdir = str(tmp)
    from course_lib.grading import grade

    assignment = ROOT / "assignments" / "02_is_fid"
    subs, out, canary = base / "submissions", base / "graded", base / "canary"
    for folder in (subs, out, canary):
        folder.mkdir()
    (canary / "secret.txt").write_text("nobody may change this")
    targets = {
        "source": str(assignment / "source" / "02_is_fid.ipynb"),
        "bundle": str(assignment / "grading" / "02_is_fid.json"),
        "out": str(out),
        "submissions": str(subs),
        "canary": str(canary),
        "home": str(home),
        "tmp": str(tmp),
    }
    student = nbformat.read(assignment / "student" / "02_is_fid.ipynb", as_version=4)
    reference = nbformat.read(REFERENCE, as_version=4)
    deserved = {"honest_reference": 11, "honest_partly_wrong": 4}
    shutil.copyfile(REFERENCE, subs / "honest_reference.ipynb")
    shutil.copyfile(REFERENCE.with_name("partly_wrong.ipynb"), subs / "honest_partly_wrong.ipynb")
    for name, (nb, points) in grading_attacks.attacks(student, reference, targets).items():
        deserved[name] = points
        if "link" in nb:
            (subs / name).mkdir()
            (subs / name / "02_is_fid.ipynb").symlink_to(nb["link"])
        else:
            nbformat.write(nb, subs / f"{name}.ipynb")
    watched = {"instructor": [Path(targets["source"]), Path(targets["bundle"])], "canary": [canary]}
    before = {
        k: {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in v if p.is_file()}
        | (_digests(canary) if k == "canary" else {})
        for k, v in watched.items()
    }
    subs_before = _digests(subs)
    started = time.perf_counter()
    results = grade(
        sorted(subs.iterdir()),
        "02_is_fid",
        out,
        workers=args.workers,
        cell_timeout=60,
        total_timeout=300,
        fast=True,
        progress=False,
    )
    wall = time.perf_counter() - started
    for res in sorted(results, key=lambda r: r.student):
        print(
            json.dumps(
                {
                    "submission": res.student,
                    "points": res.points,
                    "max_points": res.max_points,
                    "deserved": deserved[res.student],
                    "seconds": round(res.seconds, 1),
                }
            )
        )
    time.sleep(25)  # the delayed writer of "touches_others"
    survivors = _tagged(grading_attacks.SURVIVOR.encode())
    after = {
        k: {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in v if p.is_file()}
        | (_digests(canary) if k == "canary" else {})
        for k, v in watched.items()
    }
    grades = (out / "grades.csv").read_text() if (out / "grades.csv").exists() else ""
    print(
        json.dumps(
            {
                "wall_seconds": round(wall, 1),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "processes_left_behind": len(survivors),
                "instructor_files_changed": before["instructor"] != after["instructor"],
                "canary_changed": before["canary"] != after["canary"],
                "submissions_changed": subs_before != _digests(subs),
                "grades_csv_tampered": "tampered" in grades,
            }
        )
    )
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--fast", action="store_true", help="COURSE_LIB_FAST=1 in the kernels")
    parser.add_argument("--attacks", action="store_true", help="grade the hostile class instead (see above)")
    args = parser.parse_args()
    attacks(args) if args.attacks else timing(args)


if __name__ == "__main__":
    main()
