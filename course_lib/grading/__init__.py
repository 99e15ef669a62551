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
- `report`: grades.csv, escaped per-student feedback, executed notebooks and a summary; `results`: what grading
  finds per submission, and safe file names.
- `returned`: what a student gets back (grader notes nobody can forge, no hidden test's inputs); `feedback_html`:
  the same as one page per student.
- Issue 32, a class: `partial` (points per case), `manual` (marks by hand), `late` (deadlines), `export` (LMS
  gradebooks), `classwork` (resuming, shards and their merge, and the commands on a graded folder).
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
