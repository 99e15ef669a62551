"""Assignments and autograding in nbgrader's markup.

- `markup`: solution / hidden-test regions and nbgrader cell metadata (schema v3): parse, validate, strip.
- `assign`: `course-lib assign` — student versions and a grading bundle from source notebooks.
- `execute`: running a notebook's cells in a fresh kernel with time limits and output caps.
- `grade`: `course-lib grade` — reconcile, run and score submissions in parallel.
- `report`: grades.csv, per-student feedback and a summary.

Student code runs with the grader's permissions: grade untrusted submissions inside a container.
"""
from .assign import assign, find_bundle, load_bundle, make_bundle, student_notebook
from .grade import grade
from .markup import AssignmentError, validate_notebook

__all__ = ["AssignmentError", "assign", "find_bundle", "grade", "load_bundle", "make_bundle", "student_notebook",
           "validate_notebook"]
