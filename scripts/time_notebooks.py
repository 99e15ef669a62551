"""Time lecture notebooks in normal mode, top to bottom, and keep the figures in docs/results/notebook_times/.

    python scripts/time_notebooks.py 03 01 02 --timeout-min 25

Each notebook (given by number, `03`, or path) runs headless with nbclient in NORMAL mode (`COURSE_LIB_FAST`
unset), one kernel at a time, in a fresh temporary copy of the repository layout: every top-level entry of the
repository is a symlink, except the notebook's own folder, which is a real folder holding a copy of the notebook and
nothing else, so `runs/` starts empty and no earlier run folder or checkpoint can make the notebook resume.
`COURSE_LIB_CACHE` (FID statistics, image arrays) and `COURSE_LIB_CELEBA_RUN` also point into the temporary
folder unless `--keep-cache` is given: the times are those of a first run on a fresh machine.
By number, the instructor edition `solutions/NN_*.ipynb` is timed where it exists, else `notebooks/NN_*.ipynb`.

Recorded per notebook: wall seconds, CPU seconds of the kernel and everything it started, torch's thread count
inside the kernel, the 1-minute load average before and after, the date, the machine (cores, torch version),
success or the error, and the three slowest cells. A notebook running past `--timeout-min` is stopped and recorded
as such. Results are merged into report.json (keyed by notebook file name, written atomically) and report.md is
regenerated from it.

The machine the course was built on is shared: when the load average is above its core count, wall time is an
over-estimate of what a free laptop takes, and the CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "docs" / "results" / "notebook_times"
REPORT_JSON = RESULTS_DIR / "report.json"
REPORT_MD = RESULTS_DIR / "report.md"
PROBE_TAG = "COURSE_LIB_TIMING_PROBE"
# Appended to the temporary copy only: what the kernel itself ran with.
PROBE_CELL = (
    "import json as _j, os as _o, torch as _t\n"
    f"print('{PROBE_TAG}' + _j.dumps({{'torch_threads': _t.get_num_threads(), 'kernel_pid': _o.getpid()}}))"
)


# ----------------------------------------------------------------------------------------------- process tree CPU
def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """pid's descendants now, found through /proc (parent ids)."""
    children, found, todo = _proc_children(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def load_1min() -> float:
    return round(os.getloadavg()[0], 2)


# ----------------------------------------------------------------------------------------------------- the layout
def resolve(name: str) -> Path:
    """A notebook number ('03') or path -> the notebook file (instructor edition first)."""
    path = Path(name)
    if path.suffix == ".ipynb":
        path = path if path.is_absolute() else (Path.cwd() / path)
        if not path.is_file():
            raise SystemExit(f"error: no notebook {name}")
        return path.resolve()
    for folder in ("solutions", "notebooks"):
        found = sorted((REPO / folder).glob(f"{int(name):02d}_*.ipynb"))
        if found:
            return found[0]
    raise SystemExit(f"error: no notebook numbered {name} in solutions/ or notebooks/")


def fresh_layout(notebook: Path, tmp: Path) -> Path:
    """tmp/repo: symlinks to the repository's top-level entries, a real folder for the notebook; returns the copy."""
    root = tmp / "repo"
    root.mkdir()
    folder = notebook.parent.relative_to(REPO)
    own = folder.parts[0]
    for entry in REPO.iterdir():
        if entry.name in (own, "runs") or entry.name.startswith("."):
            continue
        (root / entry.name).symlink_to(entry)
    (root / folder).mkdir(parents=True)
    copy = root / folder / notebook.name
    shutil.copyfile(notebook, copy)
    return copy


# --------------------------------------------------------------------------------------------------------- worker
def worker(notebook_copy: Path, result_path: Path) -> int:
    """Runs in its own process: execute the copy with nbclient, write what the kernel did to result_path."""
    import resource

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook_copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE_CELL))
    client = NotebookClient(
        nb,
        timeout=None,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(notebook_copy.parent)}},
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    error = None
    try:
        client.execute()
    except Exception as exc:  # a failing cell: record which, keep going with the next notebook
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        error = error[:500]
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel is a reaped child by now
    probe, cell_times = {}, []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            if PROBE_TAG in text:
                probe = json.loads(text.split(PROBE_TAG, 1)[1].strip().splitlines()[0])
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            seconds = dt.datetime.fromisoformat(
                timing["shell.execute_reply"].replace("Z", "+00:00")
            ) - dt.datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            cell_times.append((round(seconds.total_seconds(), 1), index))
    cell_times.sort(reverse=True)
    result = {
        "wall_s_worker": round(wall, 1),
        "cpu_s_kernel": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 1),
        "torch_threads": probe.get("torch_threads"),
        "error": error,
        "slowest_cells": [{"cell": i, "wall_s": s} for s, i in cell_times[:3]],
    }
    result_path.write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------------------- parent
def machine() -> dict:
    import torch

    return {
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def time_one(notebook: Path, timeout_s: float, threads: int, keep_cache: bool) -> dict:
    record = {
        "notebook": str(notebook.relative_to(REPO)),
        "mode": "normal",
        "nice": os.nice(0),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "threads_requested": threads,
        "runs": 1,  # one run per notebook: the report says n = 1 (a rerun replaces the record, it is no repeat)
        "cold_cache": not keep_cache,
    }
    with tempfile.TemporaryDirectory(prefix="nbtime_") as tmp_name:
        tmp = Path(tmp_name)
        copy = fresh_layout(notebook, tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("COURSE_LIB_FAST", "COURSE_LIB_STRICT_CHECKS")}
        env.update(
            OMP_NUM_THREADS=str(threads),
            MKL_NUM_THREADS=str(threads),
            MPLBACKEND="Agg",
            COURSE_LIB_CELEBA_RUN=str(tmp / "repo" / "runs" / "celeba64"),
        )
        if not keep_cache:
            env["COURSE_LIB_CACHE"] = str(tmp / "cache")
        result_path = tmp / "result.json"
        record["load_1min_before"] = load_1min()
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(copy), str(result_path)],
            env=env,
            cwd=copy.parent,
            start_new_session=True,
        )
        cpu_seen: dict[int, float] = {}  # last CPU reading of every process of the tree, for a stopped run
        stopped = False
        while proc.poll() is None:
            for pid in descendants(proc.pid):
                seconds = _cpu_seconds(pid)
                if seconds is not None:
                    cpu_seen[pid] = seconds
            if time.monotonic() - started > timeout_s:
                stopped = True
                for pid in [proc.pid] + descendants(proc.pid):  # the kernel has its own session: by id
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.wait()
                break
            time.sleep(1.0)
        wall = time.monotonic() - started
        record["load_1min_after"] = load_1min()
        record["wall_s"] = round(wall, 1)
        if stopped:
            record.update(
                ok=False,
                cpu_s=round(sum(cpu_seen.values()), 1),
                torch_threads=None,
                error=f"over {timeout_s / 60:g} min (stopped)",
                stopped=True,
            )
        elif result_path.is_file():
            result = json.loads(result_path.read_text())
            record.update(
                ok=result["error"] is None,
                cpu_s=result["cpu_s_kernel"],
                torch_threads=result["torch_threads"],
                error=result["error"],
                slowest_cells=result["slowest_cells"],
                stopped=False,
            )
        else:
            record.update(
                ok=False,
                cpu_s=round(sum(cpu_seen.values()), 1),
                torch_threads=None,
                error=f"the timing worker exited with code {proc.returncode}",
                stopped=False,
            )
    return record


def load_report() -> dict:
    if REPORT_JSON.is_file():
        return json.loads(REPORT_JSON.read_text())
    return {"notebooks": {}}


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def render_markdown(report: dict) -> str:
    rows = sorted(report["notebooks"].values(), key=lambda r: Path(r["notebook"]).name)
    lines = [
        "# Computing time of the lecture notebooks in normal mode",
        "",
        "Measured by `scripts/time_notebooks.py`: each notebook ran top to bottom, headless (nbclient), with "
        "`COURSE_LIB_FAST` unset, in a fresh temporary copy of the repository (empty `runs/`, so nothing "
        "resumed; a cold `COURSE_LIB_CACHE` unless noted), one kernel at a time, torch limited to the thread "
        "count shown. The instructor edition (`solutions/`) was timed where it exists; the student edition runs "
        "the same cells with course_lib's reference code in place of the exercises.",
        "",
        "**n = 1: every figure below is a single run of its notebook** (one measurement, no repeats), so no spread "
        "or interval can be given; the load columns say how busy the machine's other jobs kept it during that run.",
        "",
        "| notebook | n (runs) | result | wall | CPU s (kernel) | torch threads | load 1 min before / after | cores "
        "| date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        result = "ran to the end" if r["ok"] else ("**" + (r.get("error") or "failed") + "**")
        lines.append(
            f"| {Path(r['notebook']).name} | {r.get('runs', 1)} | {result} | {minutes(r['wall_s'])} "
            f"({r['wall_s']:.0f} s) | "
            f"{r['cpu_s']:.0f} | {r.get('torch_threads') or '-'} | "
            f"{r['load_1min_before']:.1f} / {r['load_1min_after']:.1f} | {r['machine']['cpu_cores']} | "
            f"{r['date']} |"
        )
    machines = sorted(
        {
            f"{r['machine']['cpu_cores']} cores, torch {r['machine']['torch']}, Python {r['machine']['python']}"
            for r in rows
        }
    )
    loaded = [r for r in rows if max(r["load_1min_before"], r["load_1min_after"]) > r["machine"]["cpu_cores"]]
    lines += [
        "",
        "Machine: " + "; ".join(machines) + ".",
        "",
        "**Read the wall times with the load.** The build machine was shared with other jobs: the 1-minute "
        "load average is given before and after each run, and wherever it is above the number of cores "
        f"({len(loaded)} of {len(rows)} runs here) the notebook waited for a core part of the time, so its "
        "wall time is an over-estimate of what a free laptop of the same speed takes. The CPU seconds of "
        "the kernel (and every process it started) do not count that waiting and are the steadier figure; "
        "with one torch thread they are a lower bound on the wall time the same notebook takes on an idle "
        "machine of the same speed. Wall time counts from starting the kernel to shutting it down."
        + (
            " These runs had a lower priority than the other jobs (niceness "
            + "/".join(sorted({str(r["nice"]) for r in rows if "nice" in r}))
            + ")."
            if any("nice" in r for r in rows)
            else ""
        ),
        "",
    ]
    slow = [r for r in rows if r.get("slowest_cells")]
    if slow:
        lines += ["Slowest cells (index in the notebook, wall seconds of the same single run, n = 1):", ""]
        for r in slow:
            cells = ", ".join(f"cell {c['cell']}: {c['wall_s']:.0f} s" for c in r["slowest_cells"])
            lines.append(f"- {Path(r['notebook']).name}: {cells}")
        lines.append("")
    return "\n".join(lines)


def save(report: dict) -> None:
    from course_lib.core.reports import write_report

    write_report(RESULTS_DIR, report, render_markdown)


# ------------------------------------------------------------------------------------ the notebooks' "Time:" line
TIME_MARK = "**Time:**"
REPORT_LINK = "[docs/results/notebook_times/report.md](../docs/results/notebook_times/report.md)"


def duration(seconds: float) -> str:
    """How the notebooks write a duration: whole seconds under two minutes, else minutes to one decimal."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


def time_sentence(record: dict, reading: str | None) -> str:
    """The first cell's "**Time:**" paragraph for one report entry (tests/test_notebook_times.py parses it)."""
    start = f"{TIME_MARK} {reading}; " if reading else f"{TIME_MARK} "
    cores = record["machine"]["cpu_cores"]
    load = max(record["load_1min_before"], record["load_1min_after"])
    if record["ok"]:
        threads = record["torch_threads"]
        return (
            start + f"computing in normal mode took {duration(record['cpu_s'])} of CPU time "
            f"({duration(record['wall_s'])} wall clock on a shared {cores}-core machine at load {load:.1f}, "
            f"with {threads} torch thread{'' if threads == 1 else 's'}; a free laptop's wall time is closer to "
            f"the CPU time), measured top to bottom by `scripts/time_notebooks.py`: see {REPORT_LINK}."
        )
    if record.get("stopped"):
        why = (
            f"the timing run was stopped after {duration(record['wall_s'])} wall clock on a shared "
            f"{cores}-core machine at load {load:.1f}, having used {duration(record['cpu_s'])} of CPU time"
        )
    else:
        why = f"the timing run failed ({record['error']}) on a shared {cores}-core machine"
    return start + f"computing in normal mode was not measured to the end: {why}; see {REPORT_LINK}."


def rewrite_time_paragraph(text: str, sentence: str) -> str:
    """text with its "**Time:**" paragraph (up to the next blank line or the end) replaced by sentence."""
    if TIME_MARK not in text:
        raise SystemExit(f"error: no {TIME_MARK} paragraph in the first markdown cell")
    head, rest = text.split(TIME_MARK, 1)
    tail = rest.split("\n\n", 1)[1] if "\n\n" in rest else ""
    return head + sentence + ("\n\n" + tail if tail else "")


def reading_estimate(paragraph: str) -> str | None:
    import re

    found = re.search(r"about \d+ minutes of reading", paragraph)
    return found.group(0) if found else None


def write_time_sentences(names: list[str]) -> None:
    """Rewrite the "Time:" paragraph of the first markdown cell of each notebook from report.json.

    The instructor edition is edited and its student edition regenerated (only those files, with the same rule
    as `course-lib student-edition`); a notebook without an instructor edition is edited in notebooks/.
    """
    import nbformat

    from course_lib.cli.editions import SOURCE_DIR, STUDENT_DIR, _text, student_notebook
    from course_lib.core.io import write_text_atomic

    report = load_report()["notebooks"]
    for name in names:
        path = resolve(name)
        if path.name not in report:
            raise SystemExit(f"error: {path.name} is not in {REPORT_JSON}")
        nb = nbformat.read(str(path), as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "markdown")
        old = cell.source.split(TIME_MARK, 1)[1] if TIME_MARK in cell.source else ""
        cell.source = rewrite_time_paragraph(
            cell.source, time_sentence(report[path.name], reading_estimate(old.split("\n\n")[0]))
        )
        write_text_atomic(path, _text(nb))
        print(f"wrote {path.relative_to(REPO)}")
        # this repository's folders, not the installed package's (an editable install may point at another clone)
        if path.parent == REPO / SOURCE_DIR.name:
            student = student_notebook(nb, f"{SOURCE_DIR.name}/{path.name}")
            target = REPO / STUDENT_DIR.name / path.name
            write_text_atomic(target, _text(student))
            print(f"wrote {target.relative_to(REPO)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: nice -n 10 python scripts/time_notebooks.py 03 01 02 > time_notebooks.log 2>&1 &",
    )
    parser.add_argument(
        "notebooks",
        nargs="*",
        help="notebook numbers (03) or .ipynb paths; by number the "
        "instructor edition in solutions/ is used where it exists",
    )
    parser.add_argument(
        "--timeout-min",
        type=float,
        default=25.0,
        help="stop a notebook after this many minutes and record it as stopped (default 25)",
    )
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL (torch) threads in the kernel (default 1)")
    parser.add_argument(
        "--keep-cache",
        action="store_true",
        help="use the normal COURSE_LIB_CACHE instead of a fresh one (warm-cache times)",
    )
    parser.add_argument("--render-only", action="store_true", help="only regenerate report.md from report.json")
    parser.add_argument(
        "--write-time-sentences",
        action="store_true",
        help="do not run anything: rewrite the '**Time:**' paragraph of the first markdown cell of "
        "the given notebooks from report.json (instructor edition + its student edition)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("COPY", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(Path(args.worker[0]), Path(args.worker[1]))
    if args.render_only:
        save(load_report())
        return 0
    if not args.notebooks:
        parser.error("give at least one notebook")
    if args.write_time_sentences:
        write_time_sentences(args.notebooks)
        return 0
    paths = [resolve(name) for name in args.notebooks]
    failures = 0
    for position, path in enumerate(paths, 1):
        print(
            f"[{position}/{len(paths)}] {path.relative_to(REPO)}: running in normal mode "
            f"(load {load_1min()}, stop after {args.timeout_min:g} min) ...",
            flush=True,
        )
        try:
            record = time_one(path, args.timeout_min * 60, args.threads, args.keep_cache)
        except Exception:
            traceback.print_exc()
            failures += 1
            continue
        report = load_report()  # re-read: another invocation may have merged results meanwhile
        report["notebooks"][path.name] = record
        save(report)
        verdict = "ok" if record["ok"] else f"FAILED ({record['error']})"
        print(
            f"[{position}/{len(paths)}] {path.name}: {verdict}; wall {record['wall_s']:.0f} s, "
            f"CPU {record['cpu_s']:.0f} s, torch threads {record['torch_threads']}, "
            f"load {record['load_1min_before']} -> {record['load_1min_after']}",
            flush=True,
        )
        failures += not record["ok"]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
