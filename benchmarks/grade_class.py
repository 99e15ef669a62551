"""Wall time of grading a class: N copies of assignment 2's reference submission, graded in parallel.

    python benchmarks/grade_class.py [--students 30] [--workers N] [--fast]

Prints JSON: students, workers, wall seconds, seconds per submission (mean), and whether every copy got
full marks. The copies and the grading output go to a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from course_lib.grading import grade

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "fixtures" / "grading" / "02_is_fid" / "reference.ipynb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--fast", action="store_true", help="COURSE_LIB_FAST=1 in the kernels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = []
        for i in range(args.students):
            path = Path(tmp) / "submissions" / f"student{i + 1:02d}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REFERENCE, path)
            subs.append(path)
        started = time.perf_counter()
        results = grade(subs, "02_is_fid", Path(tmp) / "graded", workers=args.workers, fast=args.fast or None,
                        progress=False)
        wall = time.perf_counter() - started
    print(json.dumps({
        "students": args.students, "workers": args.workers, "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 1),
        "mean_seconds_per_submission": round(sum(r.seconds for r in results) / len(results), 2),
        "all_full_marks": all(r.points == r.max_points for r in results),
    }))


if __name__ == "__main__":
    main()
