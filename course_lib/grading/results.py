"""What grading finds per submission (`QuestionResult`, `SubmissionResult`) and the safe file name of a student.

A leaf module: the grader (`grade`), the worker, the reports and the class-scale tools (`classwork`) all use it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field


@dataclass
class QuestionResult:
    question: str  # the grade_id
    kind: str  # test | manual | task
    points: float | None  # None: to be graded by hand
    max_points: float
    status: str  # passed | failed | timeout | not run | manual | no answer
    message: str = ""  # for the student (hidden checks: only that one failed)
    details: str = ""  # per-case lines of a failed visible check
    instructor: str = ""  # the full reason, hidden checks included: summary.json only


@dataclass
class SubmissionResult:
    student: str
    path: str
    questions: list[QuestionResult] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    executed: str | None = None  # the executed notebook, every output: the instructor's copy (JSON text)
    status: str = "graded"  # graded | grader failure | refused
    # The events as the student may read them (None: all of them): with hidden checks, the kernel's text is cut to
    # exception classes, since it may hold a hidden test's inputs (returned.py, issue 32).
    student_events: list[str] | None = None
    # Set by the grader's own process (issue 32): what resuming compares, and when the work was handed in.
    digest: str = ""  # of the submission when it was graded (classwork.submission_digest)
    submitted_at: str = ""  # ISO 8601; "" when unknown
    time_source: str = ""  # where submitted_at comes from (late.submission_time)
    timings: dict = field(default_factory=dict)  # phase -> seconds, where the time went (worker._timings)

    @property
    def points(self) -> float:
        return sum(q.points or 0.0 for q in self.questions if q.kind == "test")

    @property
    def max_points(self) -> float:
        return sum(q.max_points for q in self.questions if q.kind == "test")


_UNSAFE = re.compile(r"[^\w.+=@-]|^[-.]", re.ASCII)


def file_stem(student: str) -> str:
    """The student's name as a file name in OUT/feedback and OUT/executed: letters, digits and . + = @ _ - only, no
    leading '-' or '.', at most 100 characters. A name that had to change gets a short hash of the original, so
    that two names never share a file (the CSV and the summary keep the original)."""
    stem = _UNSAFE.sub("_", student)[:100] or "_"
    if stem == student:
        return stem
    return f"{stem}-{hashlib.sha256(student.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def result_from_dict(data: dict) -> SubmissionResult:
    """A SubmissionResult from its JSON form (asdict, or a summary.json entry with its `questions`)."""
    fields = {k: data[k] for k in SubmissionResult.__dataclass_fields__ if k in data and k != "questions"}
    return SubmissionResult(**fields, questions=[QuestionResult(**q) for q in data.get("questions", [])])
