"""A class graded over several runs and machines, with marks by hand and LMS exports (issue 32).

`grade.grade` keeps every result it finishes in OUT/summary.json (each student's questions, the assignment's
version, a digest of the submission and when it was handed in), atomically after every submission. From that:

- resuming (`--resume`): a run skips every student whose result has this assignment version and this submission
  (same digest), so a folder left half-written by a killed run is finished by the same command with `--resume`;
  a student is never counted twice (results are keyed by student; the class files are rebuilt from them);
- shards (`--shard I/N`): the I-th of N deterministic slices (the class sorted by name, every N-th from the I-th;
  I counts from 0 like SLURM's and Kubernetes' indices) into the shared folder: a shard writes its own students'
  feedback/ and executed/ files and OUT/shards/I-of-N.json, never the class files; `--merge` checks that all N
  shards finished, on the same list of submissions and this version of the assignment, and writes grades.csv and
  summary.json; merging again gives the same files;
- marks by hand (`--manual FILE`, `manual`), late penalties (`late`) and exports (`--export FORMAT`, `export`) are
  computed from the stored results at any time, without running a submission again.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ..core.io import write_text_atomic
from . import late, manual, markup
from .assign import find_bundle, load_bundle
from .results import SubmissionResult, file_stem, result_from_dict

SHARDS = "shards"


# ------------------------------------------------------------------------------ identities
def bundle_version(bundle: dict) -> str:
    """What must be equal for results to be resumed or merged: the bundle, its late policy left out (a new deadline
    needs no regrading)."""
    graded = {k: v for k, v in bundle.items() if k != "late_policy"}
    return hashlib.sha256(json.dumps(graded, sort_keys=True).encode()).hexdigest()[:16]


def submission_digest(path: Path, notebook_name: str) -> str:
    """A digest of a submission: its notebook's bytes, and for a folder every file's name and content (a data file
    beside the notebook counts: the kernel reads it), every link's target and every other entry's name and kind
    (`trees.tree_digest`). Read as a student's files are (no link followed, bounded); "" when the notebook cannot be
    read."""
    from . import trees, wire

    path = Path(path)
    notebook = path
    if path.is_dir() and not path.is_symlink():
        found = [path / notebook_name] if (path / notebook_name).is_file() else sorted(path.glob("*.ipynb"))[:1]
        notebook = found[0] if found else path
    digest = hashlib.sha256()
    try:
        digest.update(wire.read_regular_file(notebook, 50 * 1024 * 1024))
    except wire.WireError:
        return ""
    if path.is_dir() and not path.is_symlink():
        trees.tree_digest(path, digest)
    return digest.hexdigest()[:24]


def stamps(subs, notebook_name: str, times: dict | None = None) -> dict[str, tuple[str, str, str]]:
    """student -> (digest, submitted at (ISO 8601 or ""), where the time came from)."""
    found = {}
    for path, student in subs:
        if times and student in times:
            when, source = times[student], "the instructor's times file"
        else:
            when, source = late.submission_time(Path(path), notebook_name)
        found[student] = (submission_digest(path, notebook_name), when.isoformat() if when else "", source)
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" -> (I, N) with 0 <= I < N (SLURM: --array=0-(N-1), $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", str(text))
    if not match:
        raise markup.AssignmentError(f"--shard takes I/N (e.g. 0/4: the first of four slices), got {text!r}")
    i, n = int(match[1]), int(match[2])
    if n < 1 or not 0 <= i < n:
        raise markup.AssignmentError(f"--shard {text}: need 0 <= I < N (I counts from 0)")
    return i, n


def shard_slice(subs, i: int, n: int) -> list:
    """The I-th of N slices of a class: sorted by student name, every N-th from the I-th."""
    return sorted(subs, key=lambda pair: pair[1])[i::n]


def class_digest(students) -> str:
    return hashlib.sha256("\n".join(sorted(students)).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def shard_path(out: Path, i: int, n: int) -> Path:
    return Path(out) / SHARDS / f"{i}-of-{n}.json"


# ------------------------------------------------------------------------------ stored results
def read_json(path: Path, what: str) -> dict | None:
    """A JSON file the grader wrote (None when absent); a one-line error when it is not one."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("students"), dict):
            raise ValueError("no students")
        return data
    except (OSError, ValueError) as exc:
        raise markup.AssignmentError(f"{path} is not {what} this grader wrote ({exc}); move it away") from None


def stored_results(out: Path, data: dict, what: Path) -> dict[str, SubmissionResult]:
    """The results in a summary (or a shard's file), each with its executed notebook read back from OUT/executed."""
    found = {}
    for student, entry in data["students"].items():
        if "questions" not in entry:
            raise markup.AssignmentError(
                f"{what} was written by an older grader (no questions per student); grade into a new --out"
            )
        res = result_from_dict({**entry, "student": student, "path": entry.get("submission", "")})
        executed = Path(out) / "executed" / f"{file_stem(student)}.ipynb"
        res.executed = executed.read_text(encoding="utf-8") if executed.is_file() else None
        found[student] = res
    return found


def previous(out: Path, bundle: dict, version: str, shard: tuple[int, int] | None) -> dict[str, SubmissionResult]:
    """What an earlier run of this class (or of this shard) graded in `out`, for resuming."""
    path = shard_path(out, *shard) if shard else Path(out) / "summary.json"
    data = read_json(path, "a summary")
    if data is None:
        return {}
    if data.get("version") != version:
        raise markup.AssignmentError(
            f"{path} holds results of another version of {bundle['name']} ({data.get('version')}, this one is "
            f"{version}); grade into a new --out, or leave out --resume to grade everyone again"
        )
    return stored_results(out, data, path)


def check_shards(out: Path, bundle: dict, version: str, n: int, everyone: list[str]) -> None:
    """Before a shard runs: every other shard in `out` must split the same class the same way, with this version."""
    for path in sorted((Path(out) / SHARDS).glob("*-of-*.json")):
        data = read_json(path, "a shard's results")
        if data.get("version") != version:
            raise markup.AssignmentError(
                f"{path.name} in {out} was graded with another version of {bundle['name']} ({data.get('version')}, "
                f"this one is {version}); use a new --out"
            )
        if data.get("of") != n or data.get("class") != class_digest(everyone):
            raise markup.AssignmentError(
                f"{path.name} in {out} was run on {'another split' if data.get('of') != n else 'another class'}; "
                "give every shard the same submissions and the same N"
            )


def shard_manifest(bundle: dict, version: str, i: int, n: int, everyone: list[str], mine: list[str]) -> dict:
    return {
        "shard": i,
        "of": n,
        "class": class_digest(everyone),
        "class_size": len(everyone),
        "shard_students": sorted(mine),
        "finished": False,
    }


# ------------------------------------------------------------------------------ the class from its stored results
def _class(assignment: str, out) -> tuple[dict, Path, dict, dict[str, SubmissionResult]]:
    bundle = load_bundle(find_bundle(assignment).resolve())
    out = Path(out)
    data = read_json(out / "summary.json", "a summary")
    if data is None:
        raise markup.AssignmentError(
            f"nothing graded in {out} (no summary.json): grade the class (or --merge its shards) first"
        )
    if data.get("version") != bundle_version(bundle):
        raise markup.AssignmentError(
            f"{out / 'summary.json'} holds results of another version of {bundle['name']}; use the bundle it was "
            "graded with"
        )
    return bundle, out, data, stored_results(out, data, out / "summary.json")


def _header(data: dict) -> dict:
    return {k: data[k] for k in ("sandbox", "memory", "warning") if k in data}


def merge(assignment: str, out) -> list[SubmissionResult]:
    """Write the class files from every shard's results; refuse unfinished shards and other assignment versions."""
    from . import report

    bundle = load_bundle(find_bundle(assignment).resolve())
    version, out = bundle_version(bundle), Path(out)
    files = sorted((out / SHARDS).glob("*-of-*.json"))
    if not files:
        raise markup.AssignmentError(f"no shards in {out / SHARDS}: run `course-lib grade --shard I/N` first")
    shards = [(path, read_json(path, "a shard's results")) for path in files]
    for path, data in shards:
        if data.get("version") != version:
            raise markup.AssignmentError(
                f"refusing to merge: {path.name} was graded with another version of {bundle['name']} "
                f"({data.get('version')}; this one is {version})"
            )
    splits = {(data.get("of"), data.get("class")) for _, data in shards}
    if len(splits) > 1:
        raise markup.AssignmentError(f"refusing to merge: the shards in {out / SHARDS} split different classes")
    n = shards[0][1]["of"]
    done = {data.get("shard") for _, data in shards if data.get("finished")}
    missing = [f"{i}/{n}" for i in range(n) if i not in done]
    if missing:
        raise markup.AssignmentError(
            f"refusing to merge: shard(s) {', '.join(missing)} have not finished (run them again with --resume)"
        )
    results: dict[str, SubmissionResult] = {}
    for path, data in shards:
        for student, res in stored_results(out, data, path).items():
            if student in results:
                raise markup.AssignmentError(f"refusing to merge: {student!r} was graded by two shards")
            results[student] = res
    if len(results) != shards[0][1].get("class_size"):
        raise markup.AssignmentError(
            f"refusing to merge: the shards hold {len(results)} students, "
            f"the class has {shards[0][1].get('class_size')}"
        )
    ordered = [results[s] for s in sorted(results)]
    marks = manual.load_marks(out)
    policy = late.policy_of(bundle)
    same_policy = all(data.get("late_policy") == (policy.to_dict() if policy else None) for _, data in shards)
    # The shards wrote every student's files; they change only with marks by hand or another late policy.
    changed = None if marks or not same_policy else []
    report.write_reports(ordered, bundle, out, _header(shards[0][1]), changed, marks, version)
    return ordered


def merge_manual(assignment: str, out, marking_file) -> tuple[int, list[str]]:
    """Merge a filled-in marking file into OUT/manual.json and rewrite every student's feedback and the class files.
    Without the file, write it (one row per student and cell to mark) for the instructor to fill in. Returns (marks
    merged, cells still unmarked as "student: cell")."""
    from . import report

    bundle, out, data, results = _class(assignment, out)
    marks = manual.load_marks(out)
    path = Path(marking_file)
    if not path.exists():
        write_text_atomic(path, manual.marking_text([results[s] for s in sorted(results)], marks, bundle, path))
        return 0, _unmarked(results, marks)
    new = manual.read_marking_file(path, bundle, results)
    count = manual.merge_marks(out, bundle, new)
    marks = manual.load_marks(out)
    ordered = [results[s] for s in sorted(results)]
    report.write_reports(ordered, bundle, out, _header(data), marks=marks, version=data["version"])
    return count, _unmarked(results, marks)


def _unmarked(results: dict[str, SubmissionResult], marks: dict) -> list[str]:
    return [
        f"{s}: {cell}" for s in sorted(results) for cell in manual.unmarked(manual.with_marks(results[s], marks.get(s)))
    ]


def export(assignment: str, out, fmt: str, roster=None, missing: str = "zero") -> Path:
    """OUT/export/FORMAT.csv from the results in `out` (see `export`)."""
    from .export import export_text, read_roster, row_of

    bundle, out, data, results = _class(assignment, out)
    table = read_roster(roster) if roster else None  # errors before anything is written
    marks = manual.load_marks(out)
    policy = late.policy_of(bundle)
    rows = [row_of(manual.with_marks(results[s], marks.get(s)), bundle, policy) for s in sorted(results)]
    return write_text_atomic(out / "export" / f"{fmt}.csv", export_text(fmt, rows, bundle, table, missing))
