"""One submission, graded in a process of its own that never runs student code.

    python -I -c BOOT LIB course_lib.grading.worker JOB.json      (sandbox.python_command, working directory /)

The grader (`grade.grade`) starts one worker per submission, isolated (no file of the grader's working
directory, which may be the class folder, can shadow a module it imports), and enforces its wall-clock limit
from outside. The worker

1. copies the submission into its private folder (`trees.copy_tree`: folders and regular files only, counted
   by apparent size against the folder limit, made the sandbox uid's as they are written; a notebook that is
   a link is refused: it could point at the source notebook), reads it within limits (`wire.load_notebook`)
   and puts the bundle's read-only cells back (`grade.reconcile`);
2. plans the checks (`checker.plan`) and writes the kernel's inputs: names and cases, no references;
3. replaces each test cell by `collect.run("ID")` and runs the notebook in a sandbox (`sandbox`), inside
   a memory cgroup of its own where the machine allows one (`cgroup`), with the total time limit and the
   folder's size watched from here;
4. kills whatever is left of the sandbox, reads the results as hostile data (`wire.read`, `wire.load_json`,
   `wire.load_notebook`: bounded by what they unpack to) and judges them (`checker.judge`);
5. writes RESULT.json (for the grader, which alone writes grades.csv and feedback), including the executed
   notebook to return to the student: the student's cells with their outputs, each test cell as the
   student version with its verdict, no hidden test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..core.registry import no_path_imports
from . import cgroup, checker, markup, partial, returned, sandbox, trees, wire
from .grade import (
    QuestionResult,
    SubmissionResult,
    bundle_kind,
    notebook_in,
    reconcile,
    unreadable,
)
from .sandbox import with_group_killed

COLLECT = 'import course_lib.grading.collect as _course_lib_collect; _course_lib_collect.run("{}")'
STARTUP_ALLOWANCE = 90  # seconds for the sandbox and the kernel to start, on top of the total limit
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


WATCH_DEPTH = 256  # folder levels the size watch looks into; a kernel that makes more is stopped


def copy_submission(
    path: Path, work: Path, notebook_name: str, max_bytes: int, owner: tuple[int, int] | None = None
) -> tuple[Path, list[str]]:
    """Copy a submission into work/ (owned by owner) and return (its notebook there, notes on what was not copied);
    AssignmentError with the reason when it is unusable."""
    if path.is_symlink():
        raise markup.AssignmentError(f"the submission {path.name} is a symbolic link; submit the file itself")
    if path.is_dir():
        try:
            copied = trees.copy_tree(path, work, max_bytes, owner)
        except trees.TooBig as exc:
            raise markup.AssignmentError(str(exc)) from None
        notebook = notebook_in(work, notebook_name)
        if notebook is None:
            linked = [
                p for p in copied.skipped if p.endswith("(a symbolic link)") and p.split(" (")[0].endswith(".ipynb")
            ]
            if linked:
                raise markup.AssignmentError(
                    f"{linked[0].split(' (')[0]} is a symbolic link, not a notebook; submit the file itself"
                )
            raise markup.AssignmentError(f"no notebook found in the submission (expected {notebook_name})")
        return notebook, copied.notes()
    work.mkdir(mode=0o700)
    notebook = work / notebook_name
    notebook.write_bytes(wire.read_regular_file(path, MAX_NOTEBOOK_BYTES))
    if owner is not None:
        os.chown(work, *owner)
        os.chown(notebook, *owner)
    return notebook, []


def _test_note(verdict, points: float, question: QuestionResult | None = None) -> str:
    """The grader's note in a test cell: the verdict, and the per-case lines the student may see."""
    if verdict is None:
        return ""
    if question is not None and question.status != "passed":
        lines = [
            f"{returned.MARKER} {question.status}: {question.points or 0:g} / {points:g} points: {question.message}"
        ] + [f"  - {d}" for d in question.details.splitlines()]
        return "\n".join(lines) + "\n"
    if verdict.passed:
        return f"{returned.MARKER} passed: {points:g} / {points:g} points\n"
    return f"{returned.MARKER} failed: 0 / {points:g} points: {verdict.message}\n"


def grade_one(job: dict) -> SubmissionResult:
    import nbformat
    from nbformat.v4 import new_code_cell

    begun = time.time()
    bundle = json.loads(Path(job["bundle"]).read_text(encoding="utf-8"))
    path, student = Path(job["submission"]), job["student"]
    result = SubmissionResult(student, str(path))
    private = Path(job["private"])
    io_dir, work = private / "io", private / "submission"
    (io_dir / "in").mkdir(parents=True)
    (io_dir / "out").mkdir()
    limits = sandbox.Limits(**job["limits"])
    owner = (job["uid"], job["uid"]) if job.get("uid") is not None else None
    try:
        notebook, notes = copy_submission(path, work, bundle["notebook"], int(limits.folder_gb * 1e9), owner)
    except (markup.AssignmentError, wire.WireError, OSError) as exc:
        result.events.append(f"{exc}; nothing could be run, so every check scores 0")
        result.questions = unreadable(bundle, "nothing could be run")
        return result
    result.events += notes
    try:
        nb = wire.load_notebook(wire.read_regular_file(notebook, MAX_NOTEBOOK_BYTES), "the submitted notebook")
    except wire.WireError as exc:
        why = f"the submission is not a valid notebook ({exc})"
        result.events.append(why + "; nothing could be run, so every check scores 0")
        result.questions = unreadable(bundle, "the notebook could not be read")
        return result
    notebook.unlink()  # the kernel gets the prepared notebook, not this one
    nb, events, index = reconcile(nb, bundle)
    result.events += events

    checker.checker_env(job["fast"])
    planned = checker.plan(bundle)
    # With hidden checks, nothing the kernel wrote goes back to the student (it may hold their inputs, issue 32):
    # kernel text in the student's feedback is cut to exception classes (returned.kernel_text_for_student).
    hidden = any(e.hidden for p in planned.cells.values() if p.plan is not None for e in p.plan.expectations)
    result.student_events = list(result.events)
    specs = {c["grade_id"]: c for c in bundle["cells"]}
    names = {i: f"{'test ' if bundle_kind(bundle, g) == 'test' else ''}cell {g}" for g, i in index.items()}
    for gid, cell_plan in planned.cells.items():
        if gid in index and cell_plan.plan is not None:
            wire.write(io_dir / "in" / gid, checker.inputs(cell_plan))
            nb.cells[index[gid]] = new_code_cell(COLLECT.format(gid), metadata=nb.cells[index[gid]].metadata)
        elif gid in index:
            nb.cells[index[gid]] = new_code_cell("", metadata=nb.cells[index[gid]].metadata)
    prepared = nbformat.from_dict(json.loads(json.dumps(nb)))
    (io_dir / "in" / "notebook.ipynb").write_text(nbformat.writes(prepared))
    (io_dir / "in" / "job.json").write_text(
        json.dumps(
            {
                "cwd": sandbox.WORK_MOUNT if job["mode"] != "none" else str(work),
                "cell_timeout": job["cell_timeout"],
                "total_timeout": job["total_timeout"],
                "output_limit": job["output_limit"],
                "names": {str(k): v for k, v in names.items()},
                "warmup": warmup_imports(bundle),
            }
        )
    )

    sandbox_started = time.time()
    report = run_sandboxed(job, io_dir, work, limits, result)
    sandbox_ended = time.time()

    # ---- verdicts (nothing below trusts a file the kernel could write)
    results_dir = io_dir / "out"
    cells_report = report.get("cells", {}) if isinstance(report.get("cells"), dict) else {}
    verdicts = {}
    for spec in bundle["cells"]:
        kind, gid, pts = spec["kind"], spec["grade_id"], spec["points"]
        if kind not in ("test", "manual", "task"):
            continue
        if gid not in index:
            status = "not run" if kind == "test" else "no answer"
            result.questions.append(
                QuestionResult(
                    gid,
                    kind,
                    0.0,
                    pts,
                    status,
                    "the cell is missing" if kind == "test" else "the answer cell was deleted",
                )
            )
            continue
        if kind == "task":
            result.questions.append(QuestionResult(gid, kind, None, pts, "manual", "graded by hand"))
            continue
        if kind == "manual":
            unchanged = markup.checksum(markup.source_of(nb.cells[index[gid]])) == spec["student_checksum"]
            result.questions.append(
                QuestionResult(gid, kind, 0.0, pts, "no answer", "the answer was left as given")
                if unchanged
                else QuestionResult(gid, kind, None, pts, "manual", "graded by hand")
            )
            continue
        cell_plan = planned.cells[gid]
        if cell_plan.plan is None:
            result.questions.append(
                QuestionResult(
                    gid, kind, 0.0, pts, "not run", f"the grader could not prepare this check: {cell_plan.error}"
                )
            )
            continue
        try:
            outputs = wire.read(results_dir / gid)
        except wire.WireError as exc:
            ran = cells_report.get(str(index[gid]), {}) if isinstance(cells_report.get(str(index[gid])), dict) else {}
            status = {"timeout": "timeout"}.get(
                ran.get("status"), "not run" if ran.get("status") in (None, "not run") else "failed"
            )
            kernel_error = str(ran.get("error") or "")
            why = kernel_error or (
                "the notebook stopped before this check"
                if "No such file" in str(exc) or "cannot open" in str(exc)
                else str(exc)
            )
            shown = returned.cell_error_for_student(names[index[gid]], kernel_error) if hidden and kernel_error else why
            result.questions.append(QuestionResult(gid, kind, 0.0, pts, status, shown, "", why))
            continue
        verdict = checker.judge(cell_plan, outputs)
        verdicts[gid] = verdict
        if partial.is_partial(spec):  # issue 32: points per case, where the test cell opts in
            result.questions.append(partial.question(gid, pts, cell_plan, outputs, verdict, hidden))
            continue
        if verdict.passed:
            result.questions.append(QuestionResult(gid, kind, pts, pts, "passed"))
        else:
            details = [returned.detail_for_student(d) for d in verdict.details] if hidden else verdict.details
            result.questions.append(
                QuestionResult(gid, kind, 0.0, pts, "failed", verdict.message, "\n".join(details), verdict.instructor)
            )
    # Events from here on are the kernel's (the runner's report sits where the kernel can write).
    kernel_events = []
    events = report.get("events", [])
    if isinstance(events, list):
        kernel_events += [str(e) for e in events[:50]]
    tests = {index[g] for g in index if bundle_kind(bundle, g) == "test"}
    for key, ran in list(cells_report.items())[:200]:
        if isinstance(ran, dict) and ran.get("status") == "error" and key.isdigit() and int(key) not in tests:
            kernel_events.append(f"{names.get(int(key), f'cell {int(key) + 1}')} raised {ran.get('error')}")
    labels = set(names.values()) | {f"cell {i + 1}" for i in range(len(nb.cells))}
    grader_events = result.events[len(result.student_events) :]  # the sandbox's own (limits, memory)
    result.student_events += grader_events + (
        [returned.kernel_text_for_student(e, labels) for e in kernel_events] if hidden else kernel_events
    )
    result.events += kernel_events

    # ---- the executed notebook returned to the student: our cells, the kernel's outputs, verdicts on test cells
    # The grader's notes are outputs it writes itself, listed in their cell's metadata, in test cells (whose code never
    # ran in the kernel) or after a cell the report says was stopped or lost output (once each: the runner writes no
    # notes into the cells); the kernel's outputs are rebuilt as plain text and images with anything that reads like
    # a grader's note prefixed (returned.py). No metadata of the submission's survives.
    executed = _executed_outputs(io_dir / "out" / "executed.ipynb", len(prepared.cells))
    questions = {q.question: q for q in result.questions}
    for i, cell in enumerate(prepared.cells):
        gid = markup.grade_id_of(cell)
        graded = gid in specs
        cell.metadata = {"nbgrader": cell.metadata["nbgrader"]} if graded and "nbgrader" in cell.metadata else {}
        cell.pop("attachments", None)
        if graded and gid in questions:
            cell.metadata["course_lib"] = {"grade": _grade_meta(questions[gid])}
        if graded and specs[gid]["kind"] == "test":
            cell.source = specs[gid]["student_source"]
            note = _test_note(verdicts.get(gid), specs[gid]["points"], questions.get(gid))
            cell.outputs = []
            returned.add_grader_output(cell, note or f"{returned.MARKER} not checked (see the feedback)\n")
        elif cell.cell_type == "code":
            cell.outputs = returned.clean_outputs(executed[i]) if executed is not None else []
            ran = cells_report.get(str(i))
            status = ran.get("status") if isinstance(ran, dict) else None
            if status in STOPPED:
                returned.add_grader_output(cell, f"{returned.MARKER} {STOPPED[status]}\n", "stderr")
            dropped = ran.get("dropped_chars") if isinstance(ran, dict) else None
            if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped > 0:  # no count: kernel-made
                note = (
                    f"{returned.MARKER} more output was dropped (at most {job['output_limit']:,} characters per cell)\n"
                )
                returned.add_grader_output(cell, note, "stderr")
        elif not (graded and specs[gid]["locked"]):  # the student's markdown: nothing in it may pass for a note
            cell.source = returned.defuse(cell.source)
    result.executed = nbformat.writes(prepared)
    result.timings = _timings(begun, sandbox_started, sandbox_ended, time.time(), report.get("timings"))
    return result


def _timings(begun: float, sandbox_started: float, sandbox_ended: float, done: float, kernel) -> dict[str, float]:
    """Where this submission's time went, in seconds (benchmarks/grade_class.py): this process's own phases, and the
    sandbox's as its runner reported them. The runner's report sits where the kernel can write, so its numbers are
    kept only where they are plausible (finite, within the sandbox's time); they never decide a grade."""
    found = {"prepare_s": sandbox_started - begun, "judge_and_return_s": done - sandbox_ended}
    kernel = kernel if isinstance(kernel, dict) else {}
    inside = sandbox_ended - sandbox_started

    def plausible(key, low=0.0, high=inside):
        value = kernel.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
        return float(value) if ok else None

    started = plausible("started_at", sandbox_started, sandbox_ended)
    finished = plausible("finished_at", sandbox_started, sandbox_ended)
    parts = {k: plausible(k) for k in ("imports_s", "kernel_start_s", "warmup_s")}
    if started is None or finished is None or finished < started or None in parts.values():
        return {k: round(v, 3) for k, v in {**found, "sandbox_s": inside}.items()}
    kernel_s = finished - started - sum(parts.values())
    found |= {
        "sandbox_start_s": started - sandbox_started,
        "runner_imports_s": parts["imports_s"],
        "kernel_start_s": parts["kernel_start_s"],
        "kernel_imports_s": parts["warmup_s"],
        "cells_s": max(0.0, kernel_s),
        "sandbox_stop_s": sandbox_ended - finished,
    }
    return {k: round(v, 3) for k, v in found.items()}


STOPPED = {
    "timeout": "this cell was stopped at a time limit",
    "died": "the kernel died while running this cell (exit(), a crash or out of memory)",
}


def _grade_meta(q: QuestionResult) -> dict:
    """A graded cell's result in its metadata (what the student copy and the HTML page show beside it)."""
    return {"points": q.points, "max_points": q.max_points, "status": q.status, "message": q.message}


def warmup_imports(bundle: dict) -> str:
    """The import statements of the assignment's checker cells (trusted code): what the kernel loads before the
    first cell, so that a slow `import torch` on a busy machine does not eat the first cell's time limit."""
    import ast

    lines = []
    for cell in bundle["cells"]:
        if cell.get("checker") and cell["cell_type"] == "code":
            try:
                body = ast.parse(cell["source"]).body
            except SyntaxError:
                continue
            lines += [ast.unparse(node) for node in body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def _executed_outputs(path: Path, n_cells: int):
    """Outputs per cell from the kernel's executed notebook (hostile: only outputs are taken, only if it fits)."""
    try:
        nb = wire.load_notebook(wire.read_regular_file(path, MAX_NOTEBOOK_BYTES), "the executed notebook")
        if len(nb.cells) != n_cells:
            return None
        outs = []
        for c in nb.cells:
            kept = [
                o
                for o in c.get("outputs", [])
                if isinstance(o, dict) and o.get("output_type") in ("stream", "error", "display_data", "execute_result")
            ]
            outs.append(kept)
        return outs
    except Exception:  # noqa: BLE001 - missing or mangled: the notebook goes back without outputs
        return None


def _readable_by_all(folder: Path) -> None:
    """The checker's inputs (made by this root process, whatever its umask) readable by the sandbox's uid."""
    os.chmod(folder, 0o755)
    for entry in folder.iterdir():
        os.chmod(entry, 0o644)


def run_sandboxed(job: dict, io_dir: Path, work: Path, limits: sandbox.Limits, result: SubmissionResult) -> dict:
    """Run the prepared notebook in the sandbox with the wall-clock and folder-size limits; return its report.

    Every process here starts in the working directory "/" with tools found in sandbox.SYSTEM_PATH: nothing of
    the submission's folder is ever a command or on a search path of a process with privileges."""
    mode = job["mode"]
    token = job["token"]
    uid = job.get("uid")
    drop = sandbox.drop_command(uid, uid) if uid is not None else []
    os.chmod(io_dir, 0o755)
    _readable_by_all(io_dir / "in")
    if uid is not None:
        os.chown(io_dir / "out", uid, uid)
    if mode == "none":
        home = Path(job["private"]) / "home"
        home.mkdir(mode=0o700, exist_ok=True)
        if uid is not None:
            os.chown(home, uid, uid)
            for folder in (Path(job["private"]), Path(job["private"]).parent, Path(job["private"]).parents[1]):
                os.chmod(folder, 0o711)  # traversable (not listable) for the slot's uid, down to its own folders
        env = sandbox.sandbox_env(job["fast"], str(io_dir), str(home), {"COURSE_LIB_GRADING_TOKEN": token}, job["lib"])
        cmd = drop + sandbox.python_command(job["lib"], "course_lib.grading.runner", str(io_dir))
    else:
        env = sandbox.sandbox_env(job["fast"], sandbox.IO_MOUNT, "/tmp/private", {"COURSE_LIB_GRADING_TOKEN": token})
        cmd = (
            sandbox.bwrap_args(io_dir, work, env, limits, as_root=mode == "bwrap-root")
            + drop
            + sandbox.python_command(sandbox.LIB_MOUNT, "course_lib.grading.runner", sandbox.IO_MOUNT)
        )
    cmd = sandbox.limit_command(limits, processes=uid is not None) + cmd
    memory = Path(job["cgroup"]) if job.get("cgroup") else None
    if memory is not None:
        try:
            cgroup.create(cgroup.Hierarchy(job["cgroup_version"], memory.parent), memory, int(limits.ram_gb * 1024**3))
            cmd = cgroup.command(memory, cmd)
        except OSError as exc:  # the grader's machine, not the submission: say so, and go on with RLIMIT_AS only
            result.events.append(
                f"the grader could not create this submission's memory cgroup ({exc.strerror}); "
                f"only the per-process memory limit applied"
            )
            cgroup.remove(memory)
            memory = None
    started = time.monotonic()
    deadline = started + job["total_timeout"] + STARTUP_ALLOWANCE
    with open(Path(job["private"]) / "sandbox.log", "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd="/",
            env=env if mode == "none" else {"PATH": sandbox.SYSTEM_PATH},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    folder_limit = int(limits.folder_gb * 1e9)
    next_size_check = started
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now > deadline:
                result.events.append(
                    f"the submission ran past its total time limit ({job['total_timeout']} s) and was stopped"
                )
                break
            if now >= next_size_check:
                next_size_check = now + 2
                sizes = [trees.tree_size(p, folder_limit, WATCH_DEPTH) for p in (work, io_dir / "out")]
                if sum(max(s.allocated, s.apparent) for s in sizes) > folder_limit:
                    result.events.append(
                        f"the submission wrote more than {limits.folder_gb:g} GB of files and was stopped"
                    )
                    break
                if any(s.too_deep for s in sizes):
                    result.events.append(
                        f"the submission made folders more than {WATCH_DEPTH} levels deep and was stopped"
                    )
                    break
            time.sleep(0.2)
    finally:
        with_group_killed(proc)
        if mode == "none":
            sandbox.kill_tagged(token)
        if memory is not None:
            stopped = cgroup.oom_kills(memory)
            if stopped:
                result.events.append(
                    f"the submission's processes together went over its memory limit "
                    f"({limits.ram_gb:g} GB): the out-of-memory killer stopped {stopped} of them"
                )
            cgroup.remove(memory)  # and every process still in it
    try:
        report = wire.load_json(
            wire.read_regular_file(io_dir / "out" / "report.json", 5_000_000),
            "the runner's report",
            max_bytes=5_000_000,
            max_items=200_000,
        )
        return report if isinstance(report, dict) else {}
    except wire.WireError:
        if proc.returncode not in (0, None) and not result.events:
            result.events.append("the notebook runner stopped without a report (killed, or out of memory)")
        return {}


def main(argv: list[str] | None = None) -> int:
    sandbox.die_with_parent()
    sandbox.skip_slow_optional_imports()
    argv = list(argv or sys.argv[1:])
    if argv[0] == "--serve":  # the run's fork server (forkserver.py): it forks this main for every submission
        from . import forkserver

        return forkserver.serve(argv[1:], main, warmup_imports)
    job = json.loads(Path(argv[0]).read_text())
    started = time.monotonic()
    try:
        # Settings a submission produced (assignment 3's run records) may name loss terms, callbacks or metrics:
        # in this process a `module:Class` name must never import code a student chose.
        with no_path_imports("a submission's settings may not name a module to import (registered names only)"):
            res = grade_one(job)
    except Exception as exc:  # noqa: BLE001 - report instead of dying: the grader writes the reason
        bundle = json.loads(Path(job["bundle"]).read_text(encoding="utf-8"))
        res = SubmissionResult(
            job["student"],
            job["submission"],
            events=[f"the grader could not finish this submission: {type(exc).__name__}: {exc}"],
        )
        res.questions = unreadable(bundle, "grading stopped early")
    res.seconds = time.monotonic() - started
    from ..core.io import write_json_atomic

    write_json_atomic(job["result"], asdict(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
