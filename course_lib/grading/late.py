"""Deadlines and the late policy of an assignment, and when a submission was handed in.

The policy lives in the source notebook's metadata, next to the time limits, and `course-lib assign` copies it
into the bundle:

    {"course_lib": {"grading": {"late_policy": {
        "deadline": "2026-12-01T23:59:00+00:00",   # ISO 8601; a time without a zone is UTC
        "grace_minutes": 15,                       # late by at most this much: no penalty
        "per_day": 0.1,                            # fraction of the points lost per started day after the grace
        "cap": 0.5,                                # the most that is ever taken off (fraction of the points)
        "accept_days": 7                           # later than this many days after the deadline: not accepted
    }}}}                                           # (0: nothing late is accepted; absent or null: always)

A submission's time is, in this order: the instructor's CSV (`course-lib grade --times FILE`: `student,
submitted_at`, e.g. from the LMS's submission export), `timestamp.txt` in its folder (nbgrader's layout, e.g.
"2026-12-01 23:59:00.123456 UTC"; the student's side of nbgrader writes it, so a student could change it), else
the notebook file's modification time (a copy can change it). Where the time came from is in the summary and the
feedback; give `--times` when the deadline matters.

The points after the policy (`standing`): automatic plus manual points, times (1 - penalty), 0 when not accepted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .markup import AssignmentError

POLICY_KEYS = {"deadline", "grace_minutes", "per_day", "cap", "accept_days"}


def parse_time(text: str) -> datetime:
    """An ISO 8601 time, or nbgrader's "YYYY-MM-DD HH:MM:SS[.ffffff] UTC"; no zone means UTC."""
    text = str(text).strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = datetime.fromisoformat(text)  # ValueError for anything else
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LatePolicy:
    deadline: datetime
    grace_minutes: float = 0.0
    per_day: float = 0.0
    cap: float = 1.0
    accept_days: float | None = None  # None: late work is always accepted

    @classmethod
    def from_dict(cls, raw: dict, where: str = "late_policy") -> LatePolicy:
        if not isinstance(raw, dict):
            raise AssignmentError(f"{where} must be a mapping with a deadline, got {raw!r}")
        unknown = set(raw) - POLICY_KEYS
        if unknown:
            raise AssignmentError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(POLICY_KEYS)}")
        if "deadline" not in raw:
            raise AssignmentError(f"{where} needs a deadline (ISO 8601, e.g. 2026-12-01T23:59:00+00:00)")
        try:
            deadline = parse_time(raw["deadline"])
        except (TypeError, ValueError) as exc:
            raise AssignmentError(f"{where}: deadline {raw['deadline']!r} is not an ISO 8601 time") from exc
        numbers = {}
        for key, low, high in (("grace_minutes", 0, math.inf), ("per_day", 0, 1), ("cap", 0, 1)):
            value = raw.get(key, {"grace_minutes": 0.0, "per_day": 0.0, "cap": 1.0}[key])
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise AssignmentError(f"{where}: {key} must be a number from {low} to {high}, got {value!r}")
            numbers[key] = float(value)
        accept = raw.get("accept_days")
        if accept is not None and (isinstance(accept, bool) or not isinstance(accept, (int, float)) or accept < 0):
            raise AssignmentError(f"{where}: accept_days must be a number >= 0 or null, got {accept!r}")
        return cls(deadline, accept_days=None if accept is None else float(accept), **numbers)

    def to_dict(self) -> dict:
        return {
            "deadline": self.deadline.isoformat(),
            "grace_minutes": self.grace_minutes,
            "per_day": self.per_day,
            "cap": self.cap,
            "accept_days": self.accept_days,
        }

    def describe(self) -> str:
        parts = [f"deadline {self.deadline.isoformat()}"]
        if self.grace_minutes:
            parts.append(f"{self.grace_minutes:g} minutes' grace")
        if self.accept_days == 0:
            parts.append("late work is not accepted")
        else:
            if self.per_day:
                parts.append(f"{self.per_day:.0%} off per started day late, at most {self.cap:.0%}")
            if self.accept_days is not None:
                parts.append(f"not accepted more than {self.accept_days:g} days late")
        return "; ".join(parts)


@dataclass(frozen=True)
class Lateness:
    seconds_late: float  # after the deadline (0 when on time), grace not subtracted
    days_charged: int  # started days after the grace
    penalty: float  # fraction of the points taken off (1.0 when not accepted)
    accepted: bool
    note: str  # one line for the student

    @property
    def hms(self) -> str:
        """Gradescope's "Lateness (H:M:S)"."""
        total = int(round(self.seconds_late))
        return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


ON_TIME = Lateness(0.0, 0, 0.0, True, "")


def policy_of(bundle: dict) -> LatePolicy | None:
    raw = bundle.get("late_policy")
    return None if raw is None else LatePolicy.from_dict(raw, f"{bundle.get('name', 'assignment')}: late_policy")


def assess(policy: LatePolicy | None, submitted: datetime | None) -> Lateness:
    if policy is None:
        return ON_TIME
    if submitted is None:
        return Lateness(0.0, 0, 0.0, True, "the submission time is unknown; no late penalty was applied")
    late = (submitted - policy.deadline).total_seconds()
    if late <= 0:
        return ON_TIME
    after_grace = late - policy.grace_minutes * 60
    if after_grace <= 0:
        return Lateness(late, 0, 0.0, True, f"handed in {_span(late)} after the deadline, within the grace period")
    days = math.ceil(after_grace / 86400)
    if policy.accept_days is not None and (policy.accept_days == 0 or late > policy.accept_days * 86400):
        return Lateness(late, days, 1.0, False, f"handed in {_span(late)} after the deadline: not accepted (0 points)")
    penalty = min(policy.cap, policy.per_day * days)
    return Lateness(
        late, days, penalty, True, f"handed in {_span(late)} after the deadline: {penalty:.0%} late penalty"
    )


def _span(seconds: float) -> str:
    delta = timedelta(seconds=round(seconds))
    days, rest = delta.days, delta.seconds
    text = f"{rest // 3600} h {rest % 3600 // 60} min"
    return f"{days} day(s) {text}" if days else text


def read_times(path: str | os.PathLike) -> dict[str, datetime]:
    """student -> submission time from a CSV with columns `student, submitted_at` (e.g. from the LMS's
    submissions export); AssignmentError naming the first bad line."""
    import csv
    import io

    path = Path(path)
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    except OSError as exc:
        raise AssignmentError(f"cannot read the submission times {path}: {exc.strerror or exc}") from None
    if not {"student", "submitted_at"} <= set(reader.fieldnames or []):
        raise AssignmentError(f"{path} needs the columns student, submitted_at")
    times: dict[str, datetime] = {}
    for line, row in enumerate(reader, start=2):
        student = (row.get("student") or "").strip()
        if student in times:
            raise AssignmentError(f"{path.name} line {line}: {student!r} is given twice")
        try:
            times[student] = parse_time(row.get("submitted_at") or "")
        except ValueError:
            raise AssignmentError(
                f"{path.name} line {line}: {row.get('submitted_at')!r} is not an ISO 8601 time"
            ) from None
    return times


def submission_time(path: Path, notebook_name: str) -> tuple[datetime | None, str]:
    """(when, where from) for a submission without a time from the instructor: `timestamp.txt` beside the notebook
    (nbgrader's layout; the student's side of nbgrader writes it), else the notebook's modification time. Read as a
    student's files are: no link followed, at most 100 bytes."""
    from .wire import WireError, read_regular_file

    if path.is_symlink() or path.parent.is_symlink():  # refused by the grader; its target is never read
        return None, "unknown"
    folder = path if path.is_dir() else path.parent
    if path.is_dir() or path.name == notebook_name:
        try:
            text = read_regular_file(folder / "timestamp.txt", 100).decode("utf-8", "replace")
            return parse_time(text), "timestamp.txt"
        except (WireError, ValueError):
            pass
    target = path
    if path.is_dir():
        found = [path / notebook_name] if (path / notebook_name).is_file() else sorted(path.glob("*.ipynb"))[:1]
        target = found[0] if found else path
    try:
        return datetime.fromtimestamp(os.lstat(target).st_mtime, tz=timezone.utc), "file time"
    except OSError:
        return None, "unknown"


def standing(res, bundle: dict, policy: LatePolicy | None) -> dict:
    """A submission's points after manual marks (already in `res`) and the late policy."""
    auto = res.points
    by_hand = sum(q.points or 0.0 for q in res.questions if q.kind in ("manual", "task"))
    unmarked = [q.question for q in res.questions if q.kind in ("manual", "task") and q.points is None]
    try:
        when = parse_time(res.submitted_at) if res.submitted_at else None
    except ValueError:
        when = None
    lateness = assess(policy, when)
    total = (auto + by_hand) * (1 - lateness.penalty) if lateness.accepted else 0.0
    return {
        "auto_points": round(auto, 4),
        "manual_points": round(by_hand, 4),
        "unmarked": unmarked,
        "days_late": lateness.days_charged,
        "seconds_late": round(lateness.seconds_late, 1),
        "lateness": lateness.hms,
        "late_penalty": lateness.penalty,
        "accepted": lateness.accepted,
        "late_note": lateness.note,
        "total": round(total, 4),
        "total_max": float(bundle["max_points"]) + float(bundle.get("manual_points", 0.0)),
    }
