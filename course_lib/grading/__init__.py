"""Assignments and autograding in nbgrader's markup, with checks that run outside the student's process.

- `markup`: solution / hidden-test regions and nbgrader cell metadata (schema v3): parse, validate, strip.
- `assign`: `course-lib assign` — student versions and a grading bundle from source notebooks.
- `checks`: what test cells call (`expect`, `expect_close`, `expect_value`, `@probe`): checks at once in a
  student's notebook; at grading time a record of what to run, judged by the checker.
- `checker`: plans the checks and judges the results, in a process that never runs student code.
- `wire`: the only format data crosses the sandbox in (JSON + npz, never pickle), read as hostile.
- `collect`: runs in the student's kernel where each test cell stood: call the answers, write the results.
- `sandbox`: bubblewrap per submission (read-only system, no network, private /tmp, limits).
- `runner`, `execute`: inside the sandbox, run the notebook cell by cell with time limits and output caps.
- `worker`: one submission, end to end; `grade`: `course-lib grade`, a class run nothing can break.
- `report`: grades.csv, escaped per-student feedback, executed notebooks and a summary.
"""

from .assign import assign, find_bundle, load_bundle, make_bundle, student_notebook
from .grade import grade
from .markup import AssignmentError, validate_notebook

__all__ = [
    "AssignmentError",
    "assign",
    "find_bundle",
    "grade",
    "load_bundle",
    "make_bundle",
    "student_notebook",
    "validate_notebook",
]
