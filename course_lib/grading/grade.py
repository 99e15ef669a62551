"""`course-lib grade`: grade every submission in a sandbox, judge it outside, explain every lost point.

Each submission gets a worker process of its own (`worker`, `workers` at a time), which never runs student
code: it copies the submission, puts the bundle's read-only cells back (`reconcile`: whatever the student
did to test and locked cells, the bundle's versions count, deleted ones are re-inserted; the bundle's points
count, not the submission's metadata), plans the checks (`checker`), runs the notebook in a sandbox
(`sandbox`, `runner`) where each test cell only collects the answers' results on the checker's inputs
(`collect`), and judges those results. This process:

- refuses, per student and with the reason in the summary, a submission that is a symbolic link (or a
  NAME.ipynb in a linked folder): it would stand for another student's work, or for any file at all;
- reserves the sandbox uids of this run (`sandbox.reserve_uids`, when root) and starts every worker isolated
  (`python -I`, working directory /, course_lib from a folder of its own): nothing in the grader's working
  directory, which may well be the class folder, is ever imported;
- enforces each worker's wall-clock limit from outside, and kills a worker that was stopped (SIGSTOP) or
  ran too long: that submission scores 0 with the reason, the others are graded, once;
- alone writes OUT/grades.csv, OUT/feedback/STUDENT.md, OUT/executed/STUDENT.ipynb and OUT/summary.json,
  atomically, after every finished submission (an interrupted run keeps what was graded); STUDENT in a file
  name is `file_stem(student)` (no leading dash or dot, no control character or separator), the CSV and
  the summary keep the name as it was;
- gives every worker PR_SET_PDEATHSIG, and the sandboxes die with their worker, so killing the grader
  leaves no process of any submission behind; after each worker it also kills whatever is left in that
  submission's memory cgroup and removes it, and deletes its scratch folder (`trees.remove_tree`: any depth,
  never raising), as it deletes the scratch folders that graders killed earlier left behind.

Manually graded answers and tasks are listed as needing manual grading (an answer left as the stub scores
0, as in nbgrader).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroup, forkserver, markup, sandbox, trees
from .assign import find_bundle, load_bundle

# The results and safe file names live in `results` (report imports them too, without importing this module).
from .results import QuestionResult, SubmissionResult, file_stem  # noqa: F401 - re-exported
from .sandbox import with_group_killed

STARTUP_ALLOWANCE = 90  # seconds for a sandbox and its kernel to start, beyond the total time limit


# ------------------------------------------------------------------------------ submissions
def student_name(path: Path, notebook_name: str) -> str:
    """alice.ipynb -> alice; alice/ or alice/NAME.ipynb (nbgrader's layout) -> alice. Links are not followed: a
    link's name is its own (and the grader refuses it), never the name of what it points to."""
    path = Path(os.path.abspath(path))
    if path.is_dir() or path.name == notebook_name:
        return (path if path.is_dir() else path.parent).name
    return path.stem


def refusal(path: Path, notebook_name: str) -> str | None:
    """Why a submission is not graded at all (a symbolic link), or None."""
    path = Path(path)
    linked = path if path.is_symlink() else None
    if linked is None and path.name == notebook_name and path.parent.is_symlink():
        linked = path.parent
    if linked is not None:
        return (
            f"the submission {linked.name} is a symbolic link (to {os.readlink(linked)}); it was not graded: "
            "hand in the folder or file itself"
        )
    return None


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
    kind = markup.CellKind(
        solution=spec["kind"] in ("solution", "manual"),
        grade=spec["kind"] in ("test", "manual"),
        locked=spec["locked"],
        task=spec["kind"] == "task",
    )
    cell.metadata["nbgrader"] = {
        "grade": kind.grade,
        "solution": kind.solution,
        "locked": kind.locked,
        "task": kind.task,
        "grade_id": spec["grade_id"],
        "points": spec["points"],
        "schema_version": markup.SCHEMA_VERSION,
    }


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
            if (
                cell.get("cell_type") != spec["cell_type"]
                or markup.checksum(markup.source_of(cell)) != spec["student_checksum"]
            ):
                events.append(f"the read-only cell {gid} was changed; the original was used")
            cell = _new_cell(spec)
        elif cell.get("cell_type") != spec["cell_type"]:
            events.append(
                f"cell {gid} was changed from {spec['cell_type']} to {cell.get('cell_type')}; it was changed back"
            )
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


def unreadable(bundle: dict, why: str) -> list[QuestionResult]:
    return [
        QuestionResult(c["grade_id"], c["kind"], 0.0, c["points"], "not run", why)
        for c in bundle["cells"]
        if c["kind"] in ("test", "manual", "task")
    ]


def bundle_kind(bundle: dict, grade_id: str) -> str:
    return next((c["kind"] for c in bundle["cells"] if c["grade_id"] == grade_id), "")


# ------------------------------------------------------------------------------ the class
def collect_submissions(paths: list[str | os.PathLike], notebook_name: str) -> list[tuple[Path, str]]:
    """(path, student) for each submission; a clear error for missing paths and clashing student names."""
    found: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        if not p.exists() and not p.is_symlink():  # a dangling link is refused per student, not here
            raise markup.AssignmentError(f"submission {p} does not exist")
        name = student_name(p, notebook_name)
        if name in found:
            raise markup.AssignmentError(
                f"two submissions are both named {name!r} ({found[name]} and {p}); "
                "give each student's file or folder a distinct name"
            )
        found[name] = p
    return [(p, s) for s, p in found.items()]


CHECKER_ALLOWANCE = 300  # seconds for a worker's own work (copying, planning, judging) beyond the sandbox's limits


@dataclass
class GradeSettings:
    cell_timeout: int
    total_timeout: int
    output_limit: int = 100_000
    fast: bool | None = None  # COURSE_LIB_FAST for the kernels and the checker; None: inherit
    limits: dict = field(default_factory=dict)  # sandbox.Limits fields


@dataclass
class _Running:
    proc: subprocess.Popen
    path: Path
    student: str
    slot: int
    private: Path
    deadline: float
    started: float
    memory_cgroup: str | None = None  # the submission's memory cgroup (made by its worker), removed after it
    stopped_seen: float = 0.0
    uid: int | None = None  # the sandbox's uid (root only): whatever still runs as it is killed after the worker


def _token(private: Path) -> str:
    """A marker in the environment of every process of one submission (see sandbox.kill_tagged)."""
    return f"course-lib-grading-{private.name}"


def _start_worker(
    path: Path,
    student: str,
    slot: int,
    bundle_path: Path,
    settings: GradeSettings,
    mode: str,
    scratch: Path,
    uids: sandbox.UidBlock | None,
    server: forkserver.Server | None = None,
) -> _Running:
    private = Path(tempfile.mkdtemp(prefix="sub-", dir=scratch))
    hierarchy = cgroup.find()[0]
    memory = str(cgroup.path_for(hierarchy, f"{os.getpid()}-{private.name}")) if hierarchy else None
    uid = uids.uid(slot) if uids is not None else None
    lib = str(scratch / "lib")
    job = {
        "submission": str(path.absolute()),
        "student": student,
        "bundle": str(bundle_path),
        "slot": slot,
        "uid": uid,
        "lib": lib,
        "cgroup": memory,
        "cgroup_version": hierarchy.version if hierarchy else None,
        "private": str(private / "work"),
        "result": str(private / "result.json"),
        "mode": mode,
        "fast": settings.fast,
        "cell_timeout": settings.cell_timeout,
        "total_timeout": settings.total_timeout,
        "output_limit": settings.output_limit,
        "limits": settings.limits,
        "token": _token(private),
    }
    (private / "work").mkdir()
    (private / "job.json").write_text(json.dumps(job))
    proc = server.launch(str(private / "job.json"), str(private / "worker.log")) if server is not None else None
    if proc is None:  # no fork server, or it could not fork: a fresh worker
        with open(private / "worker.log", "wb") as log:  # the worker asks to die with this process itself
            proc = subprocess.Popen(
                sandbox.python_command(lib, "course_lib.grading.worker", str(private / "job.json")),
                cwd="/",
                env=worker_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
    now = time.monotonic()
    deadline = now + settings.total_timeout + STARTUP_ALLOWANCE + CHECKER_ALLOWANCE
    return _Running(proc, path, student, slot, private, deadline, now, memory, uid=uid)


def worker_env() -> dict:
    """A worker's environment: the grader's, with the math libraries at one thread (the checker's setting, and what
    lets the fork server fork: `forkserver`)."""
    return {**os.environ, **forkserver.THREAD_VARIABLES}


def fork_server(scratch: Path, bundle_path: Path, settings: GradeSettings) -> forkserver.Server | None:
    """The run's fork server (`forkserver`), or None where it cannot start (then every worker is spawned)."""
    fast = {True: "1", False: "0", None: ""}[settings.fast]
    command = sandbox.python_command(scratch / "lib", "course_lib.grading.worker", "--serve", str(bundle_path), fast)
    try:
        return forkserver.Server(command, worker_env(), str(scratch / "forkserver.log"))
    except OSError:
        return None


def _failed(run: _Running, bundle: dict, why: str) -> SubmissionResult:
    res = SubmissionResult(run.student, str(run.path), events=[why])
    res.questions = unreadable(bundle, "grading stopped early")
    res.status = "grader failure"
    return res


def _finish(run: _Running, bundle: dict, why: str | None) -> SubmissionResult:
    """The worker's result, or a result saying why there is none; its process group and files are gone after."""
    from .sandbox import kill_tagged

    with_group_killed(run.proc)
    res = None
    if why is None:
        try:
            data = json.loads((run.private / "result.json").read_text(encoding="utf-8"))
            data["questions"] = [QuestionResult(**q) for q in data["questions"]]
            res = SubmissionResult(**data)
        except (OSError, ValueError, TypeError):
            code = run.proc.returncode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            why = f"the grading process of this submission {how} before it finished"
    if res is None:
        res = _failed(run, bundle, why)
    elapsed = time.monotonic() - run.started
    if res.timings:  # beyond the worker's own work: its start (imports), its exit and the grader noticing it
        res.timings["worker_process_s"] = round(max(0.0, elapsed - res.seconds), 3)
    res.seconds = res.seconds or elapsed
    kill_tagged(_token(run.private))  # nothing of a run without a sandbox survives either
    if run.memory_cgroup:
        cgroup.remove(Path(run.memory_cgroup))  # nor any process in its cgroup, whatever happened to its worker
    if run.uid is not None:
        sandbox.kill_uid(run.uid)  # nor any process of its uid (the next submission of this slot gets it)
    if not trees.remove_tree(run.private):
        res.events.append("the grader could not delete this submission's scratch folder; it is deleted at the next run")
    return res


def _process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _remove_stale_scratch() -> None:
    """Delete the scratch folders (copies of submissions) of graders that were killed: their pid is gone. Whatever
    such a folder holds (any depth, anything unreadable), this never raises: at worst a folder stays."""
    try:
        folders = list(Path(tempfile.gettempdir()).glob("course-lib-grade-*-*"))
    except OSError:
        return
    for folder in folders:
        pid = folder.name.split("-")[3]
        try:
            if not pid.isdigit() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            trees.remove_tree(folder)
        except (OSError, OverflowError, ValueError):  # alive (EPERM: another user's), or gone meanwhile
            continue


def _refused(path: Path, student: str, bundle: dict, why: str) -> SubmissionResult:
    res = SubmissionResult(student, str(path), events=[why])
    res.questions = unreadable(bundle, "the submission was refused")
    res.status = "refused"
    return res


def _grade_all(
    subs, bundle, bundle_path, settings, out, workers, progress, mode, on_result, fork_workers=True
) -> list[SubmissionResult]:
    from tqdm.auto import tqdm

    results: list[SubmissionResult] = []
    queue = list(subs)
    running: dict[int, _Running] = {}
    _remove_stale_scratch()
    # Sandbox uids of this run only (root): concurrent runs never share one, so never each other's process limit.
    try:
        uids = sandbox.reserve_uids(workers) if os.geteuid() == 0 else None
    except OSError as exc:
        raise markup.AssignmentError(f"cannot reserve this run's sandbox uids: {exc}") from None
    scratch = Path(tempfile.mkdtemp(prefix=f"course-lib-grade-{os.getpid()}-"))
    os.chmod(scratch, 0o711 if mode == "none" and uids is not None else 0o700)
    server = None
    try:
        sandbox.library_dir(scratch)
        server = fork_server(scratch, bundle_path, settings) if fork_workers else None
        with tqdm(total=len(subs), desc=f"grading {bundle['name']}", unit="submission", disable=not progress) as bar:
            while queue or running:
                for slot in range(workers):
                    while slot not in running and queue:
                        path, student = queue.pop(0)
                        why = refusal(path, bundle["notebook"])
                        if why is not None:
                            res = _refused(path, student, bundle, why)
                            results.append(res)
                            on_result(res, results)
                            bar.update()
                            continue
                        running[slot] = _start_worker(
                            path, student, slot, bundle_path, settings, mode, scratch, uids, server
                        )
                for slot, run in list(running.items()):
                    why, done = None, run.proc.poll() is not None
                    now = time.monotonic()
                    if not done and now > run.deadline:
                        why, done = (
                            (
                                f"the grader gave up on this submission after {now - run.started:.0f} s "
                                "(its time limits plus the checker's allowance)"
                            ),
                            True,
                        )
                    elif not done and _process_state(run.proc.pid) == "T":  # stopped (SIGSTOP) from outside
                        run.stopped_seen = run.stopped_seen or now
                        if now - run.stopped_seen > 10:
                            why, done = (
                                "the grading process of this submission was stopped (SIGSTOP); it was killed",
                                True,
                            )
                    if done:
                        res = _finish(run, bundle, why)
                        del running[slot]
                        results.append(res)
                        on_result(res, results)
                        bar.update()
                time.sleep(0.1)
    finally:
        for run in running.values():
            with_group_killed(run.proc)
            if run.memory_cgroup:
                cgroup.remove(Path(run.memory_cgroup))
            if run.uid is not None:
                sandbox.kill_uid(run.uid)
        if server is not None:
            server.close()
        trees.remove_tree(scratch)
        if uids is not None:
            uids.release()
    return results


def grade(
    submissions: list[str | os.PathLike],
    assignment: str,
    out: str | os.PathLike,
    workers: int | None = None,
    cell_timeout: int | None = None,
    total_timeout: int | None = None,
    output_limit: int = 100_000,
    fast: bool | None = None,
    limits: dict | None = None,
    sandbox_mode: str | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    resume: bool = False,
    times: str | os.PathLike | None = None,
    fork_workers: bool | None = None,
) -> list[SubmissionResult]:
    """Grade `submissions` against the bundle of `assignment` (see `assign.find_bundle`) into `out`.

    grades.csv, feedback/ and summary.json are rewritten (atomically) after every finished submission, so an
    interrupted run keeps everything graded so far. `sandbox_mode` (tests only) forces "none". Issue 32
    (`classwork`): `shard=(i, n)` grades the i-th of n slices of the class and writes OUT/shards/I-of-N.json instead
    of the class files; `resume` keeps the results in `out` of unchanged submissions graded with this version of
    the assignment; `times` is a CSV of submission times (`late.read_times`). Manual marks in OUT/manual.json are
    applied to everything written. `fork_workers` (default: on unless COURSE_LIB_GRADING_FORK=0) forks the workers
    from one process that imported their libraries once (`forkserver`) instead of starting each afresh.
    """
    from . import classwork, late, manual, report

    bundle_path = find_bundle(assignment).resolve()
    bundle = load_bundle(bundle_path)
    subs = collect_submissions(submissions, bundle["notebook"])
    if not subs:
        raise markup.AssignmentError("no submissions given")
    version = classwork.bundle_version(bundle)
    given_times = late.read_times(times) if times else {}
    manifest = None
    if shard is not None:
        everyone = sorted(s for _, s in subs)
        classwork.check_shards(Path(out), bundle, version, shard[1], everyone)
        subs = classwork.shard_slice(subs, *shard)
        manifest = classwork.shard_manifest(bundle, version, *shard, everyone, [s for _, s in subs])
    marks = manual.load_marks(Path(out))
    kept = classwork.previous(Path(out), bundle, version, shard) if resume else {}
    stamps = classwork.stamps(subs, bundle["notebook"], given_times)
    kept = {
        s: kept[s]
        for _, s in subs
        if s in kept and kept[s].status == "graded" and kept[s].digest and kept[s].digest == stamps[s][0]
    }
    subs = [(p, s) for p, s in subs if s not in kept]
    for name, value in (("cell timeout", cell_timeout), ("total timeout", total_timeout), ("workers", workers)):
        if value is not None and value < 1:
            raise markup.AssignmentError(f"the {name} must be at least 1, got {value}")
    settings = GradeSettings(
        cell_timeout or bundle["cell_timeout"],
        total_timeout or bundle["total_timeout"],
        output_limit,
        fast,
        dict(limits or {}),
    )
    workers = workers or max(1, min(len(subs), os.cpu_count() or 1))
    if workers > sandbox.UIDS_PER_RUN:
        raise markup.AssignmentError(f"at most {sandbox.UIDS_PER_RUN} workers, got {workers}")
    mode, why = (sandbox_mode, "turned off by the caller") if sandbox_mode == "none" else sandbox.detect()
    if os.geteuid() == 0:
        try:
            sandbox.tool("setpriv")
        except FileNotFoundError:
            raise markup.AssignmentError(
                "grading as root needs setpriv (util-linux) to drop the submissions' privileges"
            ) from None
        blocked = sandbox.unreachable_for_others() if mode == "none" else []
        if blocked:  # no student code runs as root: without bwrap it runs as a slot uid, which needs this Python
            raise markup.AssignmentError(
                f"without a sandbox ({why}) a submission runs as an unprivileged uid, which cannot reach this Python "
                f"or course_lib ({', '.join(blocked)} may not be entered by other users); install bubblewrap, or "
                "grade with a Python other users can run"
            )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header = report.sandbox_header(mode, why, sandbox.Limits(**settings.limits), cgroup.find())

    def on_result(res, so_far):
        begun = time.monotonic()
        res.digest, res.submitted_at, res.time_source = stamps[res.student]
        everyone = sorted([*kept.values(), *so_far], key=lambda r: r.student)
        report.write_reports(everyone, bundle, out, header, res, marks, version, manifest)
        if res.timings:  # this student's feedback files and the class files (in summary.json from the next write)
            res.timings["grader_files_s"] = round(time.monotonic() - begun, 3)

    if fork_workers is None:
        fork_workers = os.environ.get("COURSE_LIB_GRADING_FORK", "1") != "0"
    results = (
        _grade_all(subs, bundle, bundle_path, settings, out, workers, progress, mode, on_result, fork_workers)
        if subs
        else []
    )
    results = sorted([*kept.values(), *results], key=lambda r: r.student)
    finished = None if manifest is None else {**manifest, "finished": True}
    # The students graded now got their files as they finished; those kept get theirs again (a new late policy or
    # marks change them), then the class files.
    kept_now = sorted(kept.values(), key=lambda r: r.student)
    report.write_reports(results, bundle, out, header, changed=kept_now, marks=marks, version=version, shard=finished)
    return results
