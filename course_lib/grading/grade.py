"""`course-lib grade`: run every submission in its own kernel, score its test cells, explain every lost point.

For each submission (a notebook file, or a folder holding the notebook and any files it needs, such as
checkpoints):

1. copy it into a temporary folder (the original is never touched) and read the notebook; a file that
   is not valid notebook JSON scores 0 with a line saying so;
2. put the grading cells back (`reconcile`): every test and locked cell gets the bundle's source,
   hidden tests included, whatever the student did to it; deleted test cells are re-inserted after the
   cell that preceded them; the bundle's points count, not the submission's metadata;
3. run it (`execute.run_notebook`: per-cell and total time limits, output caps, a fresh kernel);
4. score: a test cell earns its points when it ran without an error; manually graded answers and
   tasks are listed as needing manual grading (an answer left as the stub scores 0, as in nbgrader);
5. write OUT/grades.csv, OUT/feedback/STUDENT.md and the executed notebook OUT/executed/STUDENT.ipynb.

Submissions run in parallel, each in a worker process of its own (`workers` at a time); a problem with one\nnever stops the others.
Student code runs with the grader's permissions: grade untrusted submissions inside a container.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import markup
from .assign import find_bundle, load_bundle, write_notebook_atomic
from .execute import kernel_environment, run_notebook


@dataclass
class QuestionResult:
    question: str  # the grade_id
    kind: str  # test | manual | task
    points: float | None  # None: to be graded by hand
    max_points: float
    status: str  # passed | failed | timeout | not run | manual | no answer
    message: str = ""
    output_tail: str = ""  # the last lines the failing cell printed (e.g. which check failed)


@dataclass
class SubmissionResult:
    student: str
    path: str
    questions: list[QuestionResult] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    executed: str | None = None

    @property
    def points(self) -> float:
        return sum(q.points or 0.0 for q in self.questions if q.kind == "test")

    @property
    def max_points(self) -> float:
        return sum(q.max_points for q in self.questions if q.kind == "test")


# ------------------------------------------------------------------------------ submissions
def student_name(path: Path, notebook_name: str) -> str:
    """alice.ipynb -> alice; alice/ or alice/NAME.ipynb (nbgrader's layout) -> alice."""
    if path.is_dir() or path.name == notebook_name:
        return (path if path.is_dir() else path.parent).resolve().name
    return path.stem


def notebook_in(folder: Path, notebook_name: str) -> Path | None:
    if (folder / notebook_name).is_file():
        return folder / notebook_name
    found = [p for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith(".")]
    return found[0] if len(found) == 1 else None


# ------------------------------------------------------------------------------ reconciling
def _new_cell(spec: dict):
    from nbformat.v4 import new_code_cell, new_markdown_cell

    make = new_code_cell if spec["cell_type"] == "code" else new_markdown_cell
    return make(spec["source"])


def _set_meta(cell, spec: dict) -> None:
    kind = markup.CellKind(solution=spec["kind"] in ("solution", "manual"), grade=spec["kind"] in ("test", "manual"),
                           locked=spec["locked"], task=spec["kind"] == "task")
    cell.metadata["nbgrader"] = {"grade": kind.grade, "solution": kind.solution, "locked": kind.locked,
                                 "task": kind.task, "grade_id": spec["grade_id"], "points": spec["points"],
                                 "schema_version": markup.SCHEMA_VERSION}


def reconcile(nb, bundle: dict) -> tuple[object, list[str], dict[str, int]]:
    """Put the bundle's grading cells into a submitted notebook. Returns (notebook, events, grade_id -> index).

    Students may add cells anywhere and edit solution and answer cells freely. Test and locked cells
    always run as the bundle has them; metadata changes are ignored (the bundle decides what is graded).
    """
    specs = {c["grade_id"]: c for c in bundle["cells"]}
    order = [c["grade_id"] for c in bundle["cells"]]
    events: list[str] = []
    cells, seen = [], set()
    for cell in nb.cells:
        gid = markup.grade_id_of(cell) if isinstance(cell.get("metadata"), dict) else None
        spec = specs.get(gid)
        if spec is None or gid in seen:
            if spec is not None:
                events.append(f"a second copy of cell {gid} was found; it ran as an ordinary cell and was not graded")
            if isinstance(cell.get("metadata"), dict):
                cell.metadata.pop("nbgrader", None)
            cells.append(cell)
            continue
        seen.add(gid)
        if spec["locked"]:
            if cell.get("cell_type") != spec["cell_type"] or markup.checksum(markup.source_of(cell)) != spec["student_checksum"]:
                events.append(f"the read-only cell {gid} was changed; the original was used")
            cell = _new_cell(spec)
        elif cell.get("cell_type") != spec["cell_type"]:
            events.append(f"cell {gid} was changed from {spec['cell_type']} to {cell.get('cell_type')}; it was changed back")
            cell = _new_cell({**spec, "source": markup.source_of(cell)})
        _set_meta(cell, spec)
        cells.append(cell)
    for pos, gid in enumerate(order):
        if gid in seen:
            continue
        spec = specs[gid]
        if spec["locked"]:
            previous = [g for g in order[:pos] if g in seen]
            at = 0
            if previous:
                at = next(i for i, c in enumerate(cells) if markup.grade_id_of(c) == previous[-1]) + 1
            cell = _new_cell(spec)
            _set_meta(cell, spec)
            cells.insert(at, cell)
            seen.add(gid)
            events.append(f"the read-only cell {gid} was deleted; the original was put back")
        elif spec["kind"] == "solution":
            events.append(f"the answer cell {gid} was deleted; the checks that need it fail")
    nb.cells = cells
    index = {markup.grade_id_of(c): i for i, c in enumerate(cells) if markup.grade_id_of(c) in specs}
    return nb, events, index


# ------------------------------------------------------------------------------ scoring
def _stdout_tail(cell, lines: int = 8, width: int = 240) -> str:
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    tail = [ln[:width] for ln in text.strip().splitlines()[-lines:]]
    return "\n".join(tail)


def score(nb, bundle: dict, index: dict[str, int], report) -> list[QuestionResult]:
    results = []
    for spec in bundle["cells"]:
        kind, gid, pts = spec["kind"], spec["grade_id"], spec["points"]
        if kind not in ("test", "manual", "task"):
            continue
        if gid not in index:
            if kind == "test":
                results.append(QuestionResult(gid, kind, 0.0, pts, "not run", "the cell is missing"))
            else:
                results.append(QuestionResult(gid, kind, 0.0, pts, "no answer", "the answer cell was deleted"))
            continue
        cell = nb.cells[index[gid]]
        if kind == "task":
            results.append(QuestionResult(gid, kind, None, pts, "manual", "graded by hand"))
        elif kind == "manual":
            unchanged = markup.checksum(markup.source_of(cell)) == spec["student_checksum"]
            if unchanged:
                results.append(QuestionResult(gid, kind, 0.0, pts, "no answer", "the answer was left as given"))
            else:
                results.append(QuestionResult(gid, kind, None, pts, "manual", "graded by hand"))
        else:
            run = report.cells.get(index[gid]) if report is not None else None
            if run is None or run.status == "not run":
                why = run.error if run is not None and run.error else "the notebook could not be run"
                results.append(QuestionResult(gid, kind, 0.0, pts, "not run", why))
            elif run.status == "ok":
                results.append(QuestionResult(gid, kind, pts, pts, "passed"))
            else:
                status = "timeout" if run.status == "timeout" else "failed"
                results.append(QuestionResult(gid, kind, 0.0, pts, status, run.error, _stdout_tail(cell)))
    return results


def _unreadable(bundle: dict, why: str) -> list[QuestionResult]:
    return [QuestionResult(c["grade_id"], c["kind"], 0.0, c["points"], "not run", why)
            for c in bundle["cells"] if c["kind"] in ("test", "manual", "task")]


# ------------------------------------------------------------------------------ one submission
@dataclass
class GradeSettings:
    cell_timeout: int
    total_timeout: int
    output_limit: int = 100_000
    fast: bool | None = None  # COURSE_LIB_FAST for the kernels; None: inherit
    env: dict = field(default_factory=dict)


async def grade_submission(path: Path, student: str, bundle: dict, settings: GradeSettings, out: Path) -> SubmissionResult:
    import nbformat

    result = SubmissionResult(student, str(path))
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=f"course-lib-grade-{student}-") as tmp:
            work = Path(tmp) / "submission"
            if path.is_dir():
                shutil.copytree(path, work, symlinks=True)
                notebook = notebook_in(work, bundle["notebook"])
                if notebook is None:
                    result.events.append(f"no notebook found in {path} (expected {bundle['notebook']})")
                    result.questions = _unreadable(bundle, "no notebook submitted")
                    return result
            else:
                work.mkdir()
                notebook = work / bundle["notebook"]
                shutil.copyfile(path, notebook)
            try:
                nb = nbformat.reads(notebook.read_text(encoding="utf-8", errors="replace"), as_version=4)
                if not isinstance(nb.get("cells"), list):
                    raise TypeError("it has no list of cells")
            except Exception as exc:  # noqa: BLE001 - any parse failure: not a notebook
                why = f"the submission is not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                result.events.append(why + "; nothing could be run, so every check scores 0")
                result.questions = _unreadable(bundle, "the notebook could not be read")
                return result
            nb, events, index = reconcile(nb, bundle)
            result.events += events
            fresh = {index[c["grade_id"]] for c in bundle["cells"] if c.get("fresh_kernel") and c["grade_id"] in index}
            names = {i: f"{'test ' if bundle_kind(bundle, g) == 'test' else ''}cell {g}" for g, i in index.items()}
            # A private IPython folder: no profile startup files of the grader's account, no shared state.
            env = kernel_environment(settings.fast, {"IPYTHONDIR": str(Path(tmp) / "ipython"), **settings.env})
            report = await run_notebook(nb, work, settings.cell_timeout, settings.total_timeout, env,
                                        settings.output_limit, fresh, names)
            result.events += report.events
            tests = {i for g, i in index.items() if bundle_kind(bundle, g) == "test"}
            result.events += [f"{names.get(i, f'cell {i + 1}')} raised {run.error}" for i, run in sorted(report.cells.items())
                              if run.status == "error" and i not in tests]
            result.questions = score(nb, bundle, index, report)
            executed = out / "executed" / f"{student}.ipynb"
            write_notebook_atomic(nb, executed)
            result.executed = str(executed)
    except Exception as exc:  # noqa: BLE001 - one broken submission must not stop the class
        result.events.append(f"the grader could not finish this submission: {type(exc).__name__}: {exc}")
        done = {q.question for q in result.questions}
        result.questions += [q for q in _unreadable(bundle, "grading stopped early") if q.question not in done]
    finally:
        result.seconds = time.monotonic() - started
    return result


def bundle_kind(bundle: dict, grade_id: str) -> str:
    return next((c["kind"] for c in bundle["cells"] if c["grade_id"] == grade_id), "")


# ------------------------------------------------------------------------------ the class
def collect_submissions(paths: list[str | os.PathLike], notebook_name: str) -> list[tuple[Path, str]]:
    """(path, student) for each submission; a clear error for missing paths and clashing student names."""
    found: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise markup.AssignmentError(f"submission {p} does not exist")
        name = student_name(p, notebook_name)
        if name in found:
            raise markup.AssignmentError(f"two submissions are both named {name!r} ({found[name]} and {p}); "
                                         "give each student's file or folder a distinct name")
        found[name] = p
    return [(p, s) for s, p in found.items()]


GRACE = 180  # seconds past the total time limit before the grader gives up on a submission outright


async def _guarded(path: Path, student: str, bundle: dict, settings: GradeSettings, out: Path) -> SubmissionResult:
    try:
        return await asyncio.wait_for(grade_submission(path, student, bundle, settings, out),
                                      settings.total_timeout + GRACE)
    except asyncio.TimeoutError:
        res = SubmissionResult(student, str(path))
        res.events.append(f"the grader gave up after {settings.total_timeout + GRACE} s (the kernel stopped answering)")
        res.questions = _unreadable(bundle, "grading stopped early")
        return res


def _grade_in_process(path: Path, student: str, bundle: dict, settings: GradeSettings, out: Path) -> SubmissionResult:
    """One submission, in a worker process of its own: nothing one submission does can block another."""
    return asyncio.run(_guarded(path, student, bundle, settings, out))


def _grade_all(subs, bundle, settings, out, workers, progress) -> list[SubmissionResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    results = []
    context = multiprocessing.get_context("spawn")  # no forked copies of the grader's threads and sockets
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, \
            tqdm(total=len(subs), desc=f"grading {bundle['name']}", unit="submission", disable=not progress) as bar:
        futures = {pool.submit(_grade_in_process, p, s, bundle, settings, out): (p, s) for p, s in subs}
        for future in as_completed(futures):
            path, student = futures[future]
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - a crashed worker costs one submission, not the class
                crash = f"the grader crashed on this submission: {type(exc).__name__}: {exc}"
                res = SubmissionResult(student, str(path), events=[crash])
                res.questions = _unreadable(bundle, "grading stopped early")
                results.append(res)
            bar.update()
    return results


def grade(submissions: list[str | os.PathLike], assignment: str, out: str | os.PathLike, workers: int | None = None,
          cell_timeout: int | None = None, total_timeout: int | None = None, output_limit: int = 100_000,
          fast: bool | None = None, env: dict | None = None, progress: bool = True) -> list[SubmissionResult]:
    """Grade `submissions` against the bundle of `assignment` (see `assign.find_bundle`) into `out`."""
    from .report import write_reports

    bundle = load_bundle(find_bundle(assignment))
    subs = collect_submissions(submissions, bundle["notebook"])
    if not subs:
        raise markup.AssignmentError("no submissions given")
    for name, value in (("cell timeout", cell_timeout), ("total timeout", total_timeout), ("workers", workers)):
        if value is not None and value < 1:
            raise markup.AssignmentError(f"the {name} must be at least 1, got {value}")
    settings = GradeSettings(cell_timeout or bundle["cell_timeout"], total_timeout or bundle["total_timeout"],
                             output_limit, fast, dict(env or {}))
    workers = workers or max(1, min(len(subs), os.cpu_count() or 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = _grade_all(subs, bundle, settings, out, workers, progress)
    results.sort(key=lambda r: r.student)
    write_reports(results, bundle, out)
    return results
