"""A class graded over several runs and machines: what `course-lib grade` does around `grade._grade_all`.

Every finished submission is kept in OUT/results/STUDENT.json (atomically: a run that is killed leaves whole
files or none), with the assignment's version (a digest of its bundle, the late policy left out so that a
changed deadline needs no regrading), a digest of the submission and when it was handed in. From these:

- resuming: a run skips every student whose result has this version and this submission, so a half-written
  output folder from a killed run is finished by running the same command again; a student is never counted
  twice (the class files are built from results/, one file per student);
- shards: `--shard i/n` grades the i-th of n deterministic slices (the class sorted by name, every n-th from
  the i-th, 0-based like SLURM's and Kubernetes' indices) into the shared folder; a shard writes only its own
  students' files and OUT/shards/i-of-n.json, never the class files; `--merge` checks that every shard
  finished on the same class and the same assignment version and then writes the class files (grades.csv,
  summary.json, marking.csv); merging again gives the same files;
- manual marks (`manual`), late penalties (`late`), exports (`export`), and the feedback pages
  (`feedback_html`) are computed from results/ at any time, without running anything again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.io import write_json_atomic, write_text_atomic
from . import feedback_html, late, manual, markup
from .assign import find_bundle, load_bundle
from .export import Row, export_text, read_roster

RESULTS = "results"
SHARDS = "shards"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


# ------------------------------------------------------------------------------ identities
def bundle_version(bundle: dict) -> str:
    """What must be equal for results to be merged: the bundle without its late policy."""
    graded = {k: v for k, v in bundle.items() if k != "late_policy"}
    return hashlib.sha256(json.dumps(graded, sort_keys=True).encode()).hexdigest()[:16]


def submission_digest(path: Path) -> str:
    """A digest of a submission's file, or of every file in its folder (names and contents; links by target)."""
    digest = hashlib.sha256()
    files = [path] if not path.is_dir() else sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink())
    for p in files:
        digest.update(str(p.relative_to(path) if path.is_dir() else p.name).encode() + b"\0")
        if p.is_symlink():
            digest.update(b"link:" + os.readlink(p).encode())
            continue
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:24]


def file_stem(student: str) -> str:
    """A file name for a student: the name itself when it is plainly safe, else a cleaned name and a digest."""
    if _SAFE_NAME.fullmatch(student) and student not in (".", ".."):
        return student
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", student).lstrip("-._")[:60] or "student"
    return f"{cleaned}-{hashlib.sha256(student.encode()).hexdigest()[:10]}"


def parse_shard(text: str) -> tuple[int, int]:
    """ "i/n" -> (i, n), 0 <= i < n (SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT with --array=0-(n-1))."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise markup.AssignmentError(f"--shard takes I/N (e.g. 0/4: the first of four slices), got {text!r}")
    i, n = int(match[1]), int(match[2])
    if n < 1 or not 0 <= i < n:
        raise markup.AssignmentError(f"--shard {text}: need 0 <= I < N (I counts from 0)")
    return i, n


# ------------------------------------------------------------------------------ stored results
@dataclass
class Stored:
    student: str
    version: str
    digest: str
    submitted_at: str  # ISO 8601, "" when unknown
    time_source: str  # timestamp.txt | file time | unknown
    header: dict  # the sandbox and memory limits it was graded with
    result: object  # grade.SubmissionResult


def _save(out: Path, st: Stored) -> None:
    data = asdict(st)
    data["result"] = asdict(st.result)
    write_json_atomic(out / RESULTS / f"{file_stem(st.student)}.json", data, indent=None)


def load_results(out: Path) -> dict[str, Stored]:
    from .grade import QuestionResult, SubmissionResult

    stored: dict[str, Stored] = {}
    for path in sorted((out / RESULTS).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            res = data.pop("result")
            res["questions"] = [QuestionResult(**q) for q in res["questions"]]
            st = Stored(**data, result=SubmissionResult(**res))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise markup.AssignmentError(
                f"{path} is not a result this grader wrote ({exc}); delete it to grade that student again"
            ) from exc
        stored[st.student] = st
    return stored


def _manifest_path(out: Path, i: int, n: int) -> Path:
    return out / SHARDS / f"{i}-of-{n}.json"


def load_manifests(out: Path) -> list[dict]:
    found = []
    for path in sorted((out / SHARDS).glob("*-of-*.json")):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise markup.AssignmentError(f"{path} is unreadable ({exc}); run that shard again") from exc
    return found


def _class_digest(students: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(students)).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ what a student gets
def _with_marks(res, marks: dict):
    res = copy.deepcopy(res)
    manual.apply_marks(res, marks)
    return res


def class_row(st: Stored, bundle: dict, marks: dict, policy) -> Row:
    res = _with_marks(st.result, marks)
    when = late.parse_time(st.submitted_at) if st.submitted_at else None
    lateness = late.assess(policy, when)
    auto = res.points
    by_hand = sum(q.points or 0.0 for q in res.questions if q.kind in ("manual", "task"))
    total = 0.0 if not lateness.accepted else (auto + by_hand) * (1 - lateness.penalty)
    status = "not accepted" if not lateness.accepted else res.status
    max_points = float(bundle["max_points"]) + float(bundle.get("manual_points", 0.0))
    feedback = f"{total:g} / {max_points:g}" + (f"; {lateness.note}" if lateness.note else "")
    return Row(
        st.student,
        auto,
        by_hand,
        manual.unmarked(res),
        round(total, 4),
        max_points,
        status,
        st.submitted_at,
        lateness.days_charged,
        lateness.seconds_late,
        lateness.penalty,
        lateness.accepted,
        lateness.hms,
        feedback,
    )


def summary_lines(st: Stored, bundle: dict, marks: dict, policy, hidden: bool) -> list[str]:
    res = _with_marks(st.result, marks)
    row = class_row(st, bundle, marks, policy)
    lines = [f"Automatically graded: {res.points:g} / {res.max_points:g} points."]
    manual_max = float(bundle.get("manual_points", 0.0))
    if manual_max:
        todo = f" Still to be marked: {', '.join(row.unmarked)}." if row.unmarked else ""
        lines.append(f"Marked by hand: {row.manual:g} / {manual_max:g} points.{todo}")
    if policy is not None:
        where = f" (time from {st.time_source})" if st.time_source != "timestamp.txt" else ""
        lines.append(f"Late policy: {policy.describe()}. Handed in {st.submitted_at or 'at an unknown time'}{where}.")
        lateness = late.assess(policy, late.parse_time(st.submitted_at) if st.submitted_at else None)
        if lateness.note:
            lines.append(lateness.note[0].upper() + lateness.note[1:] + ".")
    lines.append(f"Total: {row.total:g} / {row.max_points:g} points.")
    lines += [f"While grading: {feedback_html.student_event(e, hidden)}" for e in res.events[:30]]
    return lines


def write_student_files(out: Path, st: Stored, bundle: dict, marks: dict, policy) -> None:
    """feedback/STEM.md, .ipynb and .html for the student; executed/STEM.ipynb for the instructor."""
    from .report import feedback_markdown, plain_line

    stem = file_stem(st.student)
    hidden = feedback_html.has_hidden_tests(bundle)
    res = _with_marks(st.result, marks)
    lines = summary_lines(st, bundle, marks, policy, hidden)
    shown = copy.deepcopy(res)
    shown.events = [feedback_html.student_event(e, hidden) for e in shown.events]
    shown.executed = None
    md = feedback_markdown(shown, bundle).rstrip("\n")
    md += "\n\n## Total\n\n" + "\n".join(f"- {plain_line(line)}" for line in lines if not line.startswith("While"))
    student_nb = None
    if res.executed:
        student_nb = feedback_html.student_copy(res.executed, res, bundle, lines)
        write_text_atomic(out / "executed" / f"{stem}.ipynb", feedback_html.instructor_copy(res.executed, res))
        write_text_atomic(out / "feedback" / f"{stem}.ipynb", student_nb)
        md += f"\n\nYour notebook as it ran, with the grader's notes: {plain_line(stem)}\\.ipynb and {plain_line(stem)}\\.html."
    write_text_atomic(out / "feedback" / f"{stem}.md", md + "\n")
    title = f"{bundle['name']}: feedback for {st.student}"
    write_text_atomic(out / "feedback" / f"{stem}.html", feedback_html.feedback_html(student_nb, res, lines, title))


def write_class_files(out: Path, bundle: dict, stored: dict[str, Stored], marks: dict, policy) -> dict:
    """grades.csv, summary.json and marking.csv from every stored result (all of this assignment's version)."""
    from .report import grades_csv, summary

    version = bundle_version(bundle)
    other = sorted(s for s, st in stored.items() if st.version != version)
    if other:
        raise markup.AssignmentError(
            f"{len(other)} result(s) in {out / RESULTS} were graded with another version of {bundle['name']} "
            f"(e.g. {other[0]!r}); grade them again with this version or use a new --out"
        )
    order = sorted(stored)
    results = [_with_marks(stored[s].result, marks.get(s, {})) for s in order]
    headers = [stored[s].header for s in order]
    header = next((h for h in headers if h.get("warning")), headers[0] if headers else {})
    data = summary(results, bundle, header)
    data["version"] = version
    if policy is not None:
        data["late_policy"] = policy.to_dict()
    rows = {s: class_row(stored[s], bundle, marks.get(s, {}), policy) for s in order}
    for s in order:
        row = rows[s]
        data["students"][s].update(
            {
                "manual_points": row.manual,
                "unmarked": row.unmarked,
                "submitted_at": stored[s].submitted_at,
                "time_source": stored[s].time_source,
                "late_penalty": row.penalty,
                "accepted": row.accepted,
                "total": row.total,
            }
        )
    data["unmarked"] = {s: rows[s].unmarked for s in order if rows[s].unmarked}
    write_text_atomic(out / "grades.csv", grades_csv(results))
    write_text_atomic(out / "marking.csv", manual.marking_csv(results, marks, bundle))
    write_text_atomic(out / "summary.json", json.dumps(data, indent=1) + "\n")
    return data


# ------------------------------------------------------------------------------ the commands
def _open(assignment: str, out) -> tuple[Path, dict, str, object, Path]:
    bundle_path = find_bundle(assignment).resolve()
    bundle = load_bundle(bundle_path)
    return bundle_path, bundle, bundle_version(bundle), late.policy_of(bundle), Path(out)


def grade_class(
    submissions,
    assignment: str,
    out,
    shard: tuple[int, int] | None = None,
    regrade: bool = False,
    workers: int | None = None,
    cell_timeout: int | None = None,
    total_timeout: int | None = None,
    output_limit: int = 100_000,
    fast: bool | None = None,
    limits: dict | None = None,
    sandbox_mode: str | None = None,
    progress: bool = True,
) -> dict:
    """Grade the submissions (or this shard's slice of them) that have no current result in `out`.

    Returns {"graded": [students graded now], "skipped": [already graded], "shard": (i, n) or None}."""
    from . import cgroup, report, sandbox
    from .grade import GradeSettings, _grade_all, collect_submissions

    bundle_path, bundle, version, policy, out = _open(assignment, out)
    subs = collect_submissions(submissions, bundle["notebook"])
    if not subs:
        raise markup.AssignmentError("no submissions given")
    for name, value in (("cell timeout", cell_timeout), ("total timeout", total_timeout), ("workers", workers)):
        if value is not None and value < 1:
            raise markup.AssignmentError(f"the {name} must be at least 1, got {value}")
    out.mkdir(parents=True, exist_ok=True)
    stored = load_results(out)
    everyone = sorted(s for _, s in subs)
    subs = sorted(subs, key=lambda pair: pair[1])
    manifest = None
    if shard is not None:
        i, n = shard
        for other in load_manifests(out):
            if other["version"] != version:
                raise markup.AssignmentError(
                    f"shard {other['shard']}/{other['of']} in {out} was graded with another version of "
                    f"{bundle['name']} ({other['version']}, this one is {version}); use a new --out"
                )
            if other["of"] != n or other["class"] != _class_digest(everyone):
                raise markup.AssignmentError(
                    f"shard {other['shard']}/{other['of']} in {out} was run on "
                    f"{'another split' if other['of'] != n else 'another list of submissions'}; every shard must "
                    "be given the same submissions and the same N"
                )
        subs = subs[i::n]
        stale = sorted(s for _, s in subs if s in stored and stored[s].version != version)
        if stale and not regrade:
            raise markup.AssignmentError(
                f"{out} holds results of another version of {bundle['name']} (e.g. {stale[0]!r}); use a new --out"
            )
        manifest = {
            "assignment": bundle["name"],
            "version": version,
            "shard": i,
            "of": n,
            "class": _class_digest(everyone),
            "students": [s for _, s in subs],
            "finished": False,
        }
        write_json_atomic(_manifest_path(out, i, n), manifest)
    else:
        stale = sorted(s for s, st in stored.items() if st.version != version and s not in everyone)
        if stale:
            raise markup.AssignmentError(
                f"{out} holds results of another version of {bundle['name']} for students not given now "
                f"(e.g. {stale[0]!r}); give their submissions too, or use a new --out"
            )
    todo, skipped, meta = [], [], {}
    for path, student in subs:
        digest = submission_digest(path) if path.exists() else ""
        old = stored.get(student)
        if not regrade and old and old.version == version and old.digest == digest and old.result.status == "graded":
            skipped.append(student)
            continue
        when, source = late.submission_time(path, bundle["notebook"])
        meta[student] = (digest, when.isoformat() if when else "", source)
        todo.append((path, student))
    settings = GradeSettings(
        cell_timeout or bundle["cell_timeout"],
        total_timeout or bundle["total_timeout"],
        output_limit,
        fast,
        dict(limits or {}),
    )
    mode, why = (sandbox_mode, "turned off by the caller") if sandbox_mode == "none" else sandbox.detect()
    header = report.sandbox_header(mode, why, sandbox.Limits(**settings.limits), cgroup.find())
    marks = manual.load_marks(out)
    graded = []

    def on_result(res, _so_far):
        digest, when, source = meta[res.student]
        st = Stored(res.student, version, digest, when, source, header, res)
        _save(out, st)
        stored[res.student] = st
        graded.append(res.student)
        write_student_files(out, st, bundle, marks.get(res.student, {}), policy)
        if shard is None:
            write_class_files(out, bundle, stored, marks, policy)

    if todo:
        workers = workers or max(1, min(len(todo), os.cpu_count() or 1))
        _grade_all(todo, bundle, bundle_path, settings, out, workers, progress, mode, on_result)
    if manifest is not None:
        write_json_atomic(_manifest_path(out, *shard), {**manifest, "finished": True})
    elif stored:
        write_class_files(out, bundle, stored, marks, policy)
    return {"graded": sorted(graded), "skipped": skipped, "shard": shard, "header": header}


def merge(assignment: str, out) -> dict:
    """Write the class files from every shard's results; refuse unfinished shards and other assignment versions."""
    _, bundle, version, policy, out = _open(assignment, out)
    manifests = load_manifests(out)
    stored = load_results(out)
    if not stored:
        raise markup.AssignmentError(f"nothing graded in {out} (no {RESULTS}/ folder): run the shards first")
    for m in manifests:
        if m["version"] != version:
            raise markup.AssignmentError(
                f"refusing to merge: shard {m['shard']}/{m['of']} was graded with another version of "
                f"{bundle['name']} ({m['version']}; this one is {version})"
            )
    if manifests:
        splits = {(m["of"], m["class"]) for m in manifests}
        if len(splits) > 1:
            raise markup.AssignmentError(
                f"refusing to merge: the shards in {out / SHARDS} split different classes or into different numbers"
            )
        n = manifests[0]["of"]
        done = {m["shard"] for m in manifests if m["finished"]}
        missing = [f"{i}/{n}" for i in range(n) if i not in done]
        if missing:
            raise markup.AssignmentError(
                f"refusing to merge: shard(s) {', '.join(missing)} have not finished (run them; they resume)"
            )
        lost = sorted(s for m in manifests for s in m["students"] if s not in stored)
        if lost:
            raise markup.AssignmentError(f"refusing to merge: no result for {lost[0]!r} although its shard finished")
    return write_class_files(out, bundle, stored, manual.load_marks(out), policy)


def merge_manual(assignment: str, out, marking_file) -> int:
    """Merge a filled-in marking file into OUT/manual.json and rewrite every student's feedback and the class files."""
    _, bundle, version, policy, out = _open(assignment, out)
    stored = load_results(out)
    new = manual.read_marking_file(marking_file, bundle, set(stored))
    count = manual.merge_marks(out, bundle, new)
    refresh(assignment, out)
    return count


def refresh(assignment: str, out) -> None:
    """Rewrite every student's feedback and the class files from results/ (after new marks or a new late policy)."""
    _, bundle, version, policy, out = _open(assignment, out)
    stored = load_results(out)
    marks = manual.load_marks(out)
    for st in stored.values():
        write_student_files(out, st, bundle, marks.get(st.student, {}), policy)
    if stored and not (load_manifests(out) and not (out / "summary.json").exists()):
        write_class_files(out, bundle, stored, marks, policy)


def export(assignment: str, out, fmt: str, roster=None, missing: str = "zero") -> Path:
    """OUT/export/FORMAT.csv from the results in `out` (see `export`)."""
    _, bundle, version, policy, out = _open(assignment, out)
    stored = load_results(out)
    if not stored:
        raise markup.AssignmentError(f"nothing graded in {out}: grade (or merge the shards) before exporting")
    other = sorted(s for s, st in stored.items() if st.version != version)
    if other:
        raise markup.AssignmentError(f"{out} holds results of another version of {bundle['name']} (e.g. {other[0]!r})")
    marks = manual.load_marks(out)
    rows = [class_row(st, bundle, marks.get(s, {}), policy) for s, st in sorted(stored.items())]
    text = export_text(fmt, rows, bundle, read_roster(roster) if roster else None, missing)
    return write_text_atomic(out / "export" / f"{fmt}.csv", text)
