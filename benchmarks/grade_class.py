"""Grading a class: the wall time per submission, and what each attack of issue 17 scores.

    python benchmarks/grade_class.py [--students 30] [--workers N] [--fast]
    python benchmarks/grade_class.py --attacks [--workers N]
    python benchmarks/grade_class.py --class 200 [--workers N] [--report docs/results/grade_class]

The first form grades N copies of assignment 2's reference submission in parallel and prints JSON: students,
workers, wall seconds, seconds per submission (mean) and whether every copy got full marks. The second grades
the hostile submissions of tests/grading_attacks.py (with two honest students) and prints one JSON line per
submission: its score, the score it deserves, and a final line with the processes left behind and the files
outside the submissions that changed. The attacks run with a private HOME and temporary folder, so that without
a sandbox (an older course-lib, for the "before" column) they still cannot reach this machine's real ones; the
processes they leave behind are killed at the end. Everything goes to a temporary folder.

The third (issue 32) grades a generated class of assignment 2 in fast mode: honest (the reference), blank (the
student version), wrong (partly wrong), slow (a cell that loops until the cell limit), crashing (answers that
raise) and hostile submissions (forged feedback, rebound checks, answers that read stack frames, forged result
files), in the proportions of CLASS_MIX; once as one `course-lib grade` process with N workers, then as two shards
(`--shard 0/2`, `--shard 1/2` at once, N/2 workers each) and `--merge`, on the same machine. It reports
submissions per second and per core (per worker slot: min(N, CPU count)), the peak memory of all grading processes
together (the sum of their resident sets, sampled every 0.5 s: shared pages count once per process, so this is an
upper bound), that every submission got the points it deserves, and that the merged grades equal the single run's,
and where a submission's time goes (the mean of each phase the grader records per submission, by kind); with
--report it writes report.json and report.md there, after the one-process run and again after the shards (a run
stopped in between ships the one-process numbers, saying the shards were not measured).

    python benchmarks/grade_class.py --class 12 --baseline OLD_CHECKOUT --compare-out FILE.json

grades one generated class twice, one process each, back to back on the same machine: with the course_lib of
OLD_CHECKOUT (e.g. `git archive COMMIT | tar -x -C OLD_CHECKOUT`) and with this one, and writes the two walls, their
ratio and the load averages to FILE.json; `--class ... --speedup FILE.json` puts that comparison into the report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "fixtures" / "grading" / "02_is_fid" / "reference.ipynb"


def timing(args) -> None:
    from course_lib.grading import grade

    with tempfile.TemporaryDirectory() as tmp:
        subs = []
        for i in range(args.students):
            path = Path(tmp) / "submissions" / f"student{i + 1:02d}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REFERENCE, path)
            subs.append(path)
        started = time.perf_counter()
        results = grade(
            subs, "02_is_fid", Path(tmp) / "graded", workers=args.workers, fast=args.fast or None, progress=False
        )
        wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "students": args.students,
                "workers": args.workers,
                "cpu_count": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "wall_seconds": round(wall, 1),
                "mean_seconds_per_submission": round(sum(r.seconds for r in results) / len(results), 2),
                "all_full_marks": all(r.points == r.max_points for r in results),
            }
        )
    )


def _digests(folder: Path) -> dict:
    return {
        str(p): (os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def _tagged(marker: bytes) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                blob = Path(f"/proc/{entry}/cmdline").read_bytes() + Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if marker in blob:
                pids.append(int(entry))
    return pids


def attacks(args) -> None:
    import nbformat

    sys.path.insert(0, str(ROOT / "tests"))
    import grading_attacks

    base = Path(tempfile.mkdtemp(prefix="attacks-"))
    home, tmp = base / "home", base / "tmp"
    for folder in (home, tmp):
        folder.mkdir()
    os.environ["HOME"], os.environ["TMPDIR"] = str(home), str(tmp)
    tempfile.tempdir = str(tmp)
    from course_lib.grading import grade

    assignment = ROOT / "assignments" / "02_is_fid"
    subs, out, canary = base / "submissions", base / "graded", base / "canary"
    for folder in (subs, out, canary):
        folder.mkdir()
    (canary / "secret.txt").write_text("nobody may change this")
    targets = {
        "source": str(assignment / "source" / "02_is_fid.ipynb"),
        "bundle": str(assignment / "grading" / "02_is_fid.json"),
        "out": str(out),
        "submissions": str(subs),
        "canary": str(canary),
        "home": str(home),
        "tmp": str(tmp),
    }
    student = nbformat.read(assignment / "student" / "02_is_fid.ipynb", as_version=4)
    reference = nbformat.read(REFERENCE, as_version=4)
    deserved = {"honest_reference": 11, "honest_partly_wrong": 4}
    shutil.copyfile(REFERENCE, subs / "honest_reference.ipynb")
    shutil.copyfile(REFERENCE.with_name("partly_wrong.ipynb"), subs / "honest_partly_wrong.ipynb")
    for name, (nb, points) in grading_attacks.attacks(student, reference, targets).items():
        deserved[name] = points
        if "link" in nb:
            (subs / name).mkdir()
            (subs / name / "02_is_fid.ipynb").symlink_to(nb["link"])
        else:
            nbformat.write(nb, subs / f"{name}.ipynb")
    watched = {"instructor": [Path(targets["source"]), Path(targets["bundle"])], "canary": [canary]}
    before = {
        k: {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in v if p.is_file()}
        | (_digests(canary) if k == "canary" else {})
        for k, v in watched.items()
    }
    subs_before = _digests(subs)
    started = time.perf_counter()
    results = grade(
        sorted(subs.iterdir()),
        "02_is_fid",
        out,
        workers=args.workers,
        cell_timeout=60,
        total_timeout=300,
        fast=True,
        progress=False,
    )
    wall = time.perf_counter() - started
    for res in sorted(results, key=lambda r: r.student):
        print(
            json.dumps(
                {
                    "submission": res.student,
                    "points": res.points,
                    "max_points": res.max_points,
                    "deserved": deserved[res.student],
                    "seconds": round(res.seconds, 1),
                }
            )
        )
    time.sleep(25)  # the delayed writer of "touches_others"
    survivors = _tagged(grading_attacks.SURVIVOR.encode())
    after = {
        k: {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in v if p.is_file()}
        | (_digests(canary) if k == "canary" else {})
        for k, v in watched.items()
    }
    grades = (out / "grades.csv").read_text() if (out / "grades.csv").exists() else ""
    print(
        json.dumps(
            {
                "wall_seconds": round(wall, 1),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "processes_left_behind": len(survivors),
                "instructor_files_changed": before["instructor"] != after["instructor"],
                "canary_changed": before["canary"] != after["canary"],
                "submissions_changed": subs_before != _digests(subs),
                "grades_csv_tampered": "tampered" in grades,
            }
        )
    )
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(base, ignore_errors=True)


CLASS_MIX = [  # (kind, share of the class)
    ("honest", 0.40),
    ("blank", 0.15),
    ("wrong", 0.15),
    ("slow", 0.10),
    ("crashing", 0.10),
    ("hostile", 0.10),
]
HOSTILE = ("forges_feedback", "rebinds_checks", "stack_frame", "forges_results")
CLASS_CELL_TIMEOUT, CLASS_TOTAL_TIMEOUT = 20, 300


def _class_submissions(n: int, folder: Path) -> dict[str, float]:
    """Write a class of n submissions of assignment 2 into folder; return student -> the points each deserves."""
    import nbformat

    sys.path.insert(0, str(ROOT / "tests"))
    import grading_attacks

    fixtures = REFERENCE.parent
    assignment = ROOT / "assignments" / "02_is_fid"
    student = nbformat.read(assignment / "student" / "02_is_fid.ipynb", as_version=4)
    reference = nbformat.read(REFERENCE, as_version=4)
    targets = {"bundle": str(assignment / "grading" / "02_is_fid.json"), "out": str(folder.parent / "elsewhere")}
    targets |= {k: str(folder.parent / k) for k in ("source", "submissions", "canary", "home", "tmp")}
    hostile = {k: v for k, v in grading_attacks.attacks(student, reference, targets).items() if k in HOSTILE}
    plain = {
        "honest": ("reference.ipynb", 11.0),
        "blank": ("untouched.ipynb", 0.0),
        "wrong": ("partly_wrong.ipynb", 4.0),
        "slow": ("loops.ipynb", 9.0),
        "crashing": ("raises.ipynb", 7.0),
    }
    counts = {kind: int(round(share * n)) for kind, share in CLASS_MIX}
    counts["honest"] += n - sum(counts.values())
    deserved, i = {}, 0
    folder.mkdir(parents=True)
    for kind, count in counts.items():
        for k in range(count):
            i += 1
            name = f"s{i:04d}-{kind}"
            if kind == "hostile":
                attack = HOSTILE[k % len(HOSTILE)]
                nb, points = hostile[attack]
                name += f"-{attack}"
                nbformat.write(nb, folder / f"{name}.ipynb")
            else:
                fixture, points = plain[kind]
                shutil.copyfile(fixtures / fixture, folder / f"{name}.ipynb")
            deserved[name] = float(points)
    return deserved


def _tree_rss(root_pid: int) -> int:
    """Resident bytes of root_pid and all its descendants (processes of the sandboxes included)."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    inside, changed = {root_pid}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in inside and pid not in inside:
                inside.add(pid)
                changed = True
    return sum(rss.get(pid, 0) for pid in inside)


def _timed(commands: list[list[str]], env: dict, cwd: Path | None = None) -> tuple[float, int]:
    """Run commands at once (in cwd: the checkout whose assignments/ they grade); (wall seconds, peak resident bytes
    of all of them together)."""
    import subprocess

    started = time.perf_counter()
    procs = [
        subprocess.Popen(c, env=env, cwd=cwd or ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for c in commands
    ]
    peak = 0
    while any(p.poll() is None for p in procs):
        peak = max(peak, sum(_tree_rss(p.pid) for p in procs if p.poll() is None))
        time.sleep(0.5)
    wall = time.perf_counter() - started
    for p, c in zip(procs, commands):
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(c[:6])} ... failed: {p.stderr.read().decode()[-2000:]}")
    return wall, peak


GRADE = [sys.executable, "-m", "course_lib.cli", "grade", "--assignment", "02_is_fid", "--fast", "--quiet"]
LIMITS = ["--cell-timeout", str(CLASS_CELL_TIMEOUT), "--total-timeout", str(CLASS_TOTAL_TIMEOUT)]
KINDS = [kind for kind, _ in CLASS_MIX]


def _kind(student: str) -> str:
    return student.split("-")[1]


def _phases(summary: dict) -> dict:
    """kind -> phase -> mean seconds over the submissions of that kind (the grader's per-submission `timings`)."""
    by_kind: dict[str, list[dict]] = {}
    for student, entry in summary.items():
        if entry.get("timings"):
            by_kind.setdefault(_kind(student), []).append(entry["timings"])
    means = {}
    for kind in KINDS:
        rows = by_kind.get(kind, [])
        phases = sorted({p for row in rows for p in row}, key=PHASES.index if rows else None)
        means[kind] = {"n": len(rows), **{p: round(sum(r.get(p, 0.0) for r in rows) / len(rows), 2) for p in phases}}
        # the spread over the submissions of this kind (sample standard deviation; none for a single submission)
        means[kind].update(
            {f"{p}_sd": round(statistics.stdev(r.get(p, 0.0) for r in rows), 2) for p in phases if len(rows) > 1}
        )
    return means


PHASES = [  # in the order they happen (worker._timings, grade._finish and on_result)
    "prepare_s",
    "sandbox_start_s",
    "runner_imports_s",
    "kernel_start_s",
    "kernel_imports_s",
    "cells_s",
    "sandbox_stop_s",
    "sandbox_s",
    "judge_and_return_s",
    "worker_process_s",
    "grader_files_s",
]


def _scores(out: Path, deserved: dict) -> tuple[dict, dict]:
    summary = json.loads((out / "summary.json").read_text())["students"]
    got = {s: r["points"] for s, r in summary.items()}
    return summary, {s: (got.get(s), d) for s, d in deserved.items() if got.get(s) != d}


def compare_run(args) -> None:
    """The same class graded with an older course_lib and with this one, back to back (see the module docstring)."""
    base = Path(tempfile.mkdtemp(prefix="class-compare-"))
    runs = {}
    try:
        deserved = _class_submissions(args.class_size, base / "submissions")
        subs = sorted(str(p) for p in (base / "submissions").iterdir())
        for label, lib in (("before", Path(args.baseline).resolve()), ("after", ROOT)):
            load_start = os.getloadavg()
            wall, peak = _timed(
                [GRADE + LIMITS + ["--out", str(base / label), "--workers", str(args.workers), "--", *subs]],
                dict(os.environ, PYTHONPATH=str(lib)),
                cwd=lib,
            )
            summary, wrong = _scores(base / label, deserved)
            runs[label] = {
                "course_lib": str(lib) if label == "before" else "this checkout",
                "wall_s": round(wall, 1),
                "submissions_per_s": round(len(subs) / wall, 4),
                "mean_grading_s_per_submission": round(sum(r["seconds"] for r in summary.values()) / len(subs), 2),
                "peak_resident_gb": round(peak / 1e9, 2),
                "every_submission_got_what_it_deserves": not wrong,
                "load_average_1_5_15_at_start": [round(x, 1) for x in load_start],
                "load_average_1_5_15_at_end": [round(x, 1) for x in os.getloadavg()],
            }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result = {
        "submissions": len(subs),
        "mix": {kind: sum(1 for s in deserved if f"-{kind}" in s) for kind in KINDS},
        "workers": args.workers,
        "baseline": args.baseline_label or str(args.baseline),
        **runs,
        "wall_ratio_before_over_after": round(runs["before"]["wall_s"] / runs["after"]["wall_s"], 2),
    }
    print(json.dumps(result, indent=1))
    if args.compare_out:
        from course_lib.core.io import write_json_atomic

        write_json_atomic(args.compare_out, result)


def class_run(args) -> None:
    import csv

    base = Path(tempfile.mkdtemp(prefix="class-"))
    try:
        deserved = _class_submissions(args.class_size, base / "submissions")
        subs = sorted(str(p) for p in (base / "submissions").iterdir())
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        grade, limits = GRADE, LIMITS
        load_start = os.getloadavg()
        one_wall, one_peak = _timed(
            [grade + limits + ["--out", str(base / "one"), "--workers", str(args.workers), "--", *subs]], env
        )
        summary, wrong = _scores(base / "one", deserved)
        slots = min(args.workers, os.cpu_count() or 1)
        n = len(subs)
        result = {
            "submissions": n,
            "mix": {kind: sum(1 for s in deserved if f"-{kind}" in s) for kind, _ in CLASS_MIX},
            "assignment": "02_is_fid (fast mode)",
            "cell_timeout_s": CLASS_CELL_TIMEOUT,
            "workers": args.workers,
            "cpu_count": os.cpu_count(),
            "machine": args.machine,
            "load_average_1_5_15_at_start": [round(x, 1) for x in load_start],
            "load_average_1_5_15_after_one_process": [round(x, 1) for x in os.getloadavg()],
            "load_average_1_5_15_at_end": None,
            "one_process": {
                "wall_s": round(one_wall, 1),
                "submissions_per_s": round(n / one_wall, 4),
                "submissions_per_s_per_core": round(n / one_wall / slots, 4),
                "peak_resident_gb": round(one_peak / 1e9, 2),
            },
            "two_shards": None,
            "mean_grading_s_per_submission": round(sum(r["seconds"] for r in summary.values()) / n, 2),
            "grading_s_per_submission_min_max": [
                round(min(r["seconds"] for r in summary.values()), 2),
                round(max(r["seconds"] for r in summary.values()), 2),
            ],
            "phases_s": _phases(summary),
            "every_submission_got_what_it_deserves": not wrong,
            "wrong_scores": wrong,
            "merged_grades_equal_the_single_run": None,
            "speedup": json.loads(Path(args.speedup).read_text()) if args.speedup else None,
        }
        if args.report:  # the one-process run is finished: ship it now, in case the shards are stopped
            from course_lib.core.reports import write_report

            write_report(Path(args.report), result, render_markdown)
        half = max(1, args.workers // 2)
        shards = [
            grade + limits + ["--out", str(base / "two"), "--workers", str(half), "--shard", f"{i}/2", "--", *subs]
            for i in range(2)
        ]
        two_wall, two_peak = _timed(shards, env)
        merge_started = time.perf_counter()
        _timed([grade[:-2] + ["--out", str(base / "two"), "--merge"]], env)
        merge_wall = time.perf_counter() - merge_started
        same = list(csv.reader((base / "one" / "grades.csv").open())) == list(
            csv.reader((base / "two" / "grades.csv").open())
        )
        result["load_average_1_5_15_at_end"] = [round(x, 1) for x in os.getloadavg()]
        result["two_shards"] = {
            "wall_s": round(two_wall, 1),
            "merge_s": round(merge_wall, 1),
            "workers_each": half,
            "submissions_per_s": round(n / (two_wall + merge_wall), 4),
            "peak_resident_gb": round(two_peak / 1e9, 2),
        }
        result["merged_grades_equal_the_single_run"] = same
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.report:
        from course_lib.core.reports import write_report

        write_report(Path(args.report), result, render_markdown)


PHASE_WORDS = {
    "prepare_s": "worker: copy the submission, read it, plan the checks (the checker's imports)",
    "sandbox_start_s": "sandbox start (bubblewrap, limits, cgroup) until the runner runs",
    "runner_imports_s": "runner's imports (nbformat, nbclient, jupyter_client)",
    "kernel_start_s": "kernel start (ipykernel)",
    "kernel_imports_s": "the assignment's imports in the kernel (numpy, torch, course_lib.metrics)",
    "cells_s": "the notebook's cells (the student's own work, checks' calls included)",
    "sandbox_stop_s": "kernel shutdown and sandbox exit",
    "sandbox_s": "the sandbox, not broken down (its runner's report was not usable)",
    "judge_and_return_s": "worker: judge the results, build the returned notebook",
    "worker_process_s": "worker process start and exit, and the grader noticing it",
    "grader_files_s": "grader: feedback (Markdown, notebooks, HTML page) and class files",
}


def _mean_sd(phases: dict, phase: str) -> str:
    if phase not in phases:
        return ""
    sd = phases.get(f"{phase}_sd")
    return str(phases[phase]) if sd is None else f"{phases[phase]} ± {sd}"


def render_markdown(r: dict) -> str:
    """report.md, from report.json alone (course_lib.core.reports)."""
    one, two = r["one_process"], r["two_shards"]
    if "load_average_1_5_15_after_one_process" not in r:  # the reports of before the phases were recorded
        loads = f"{r['load_average_1_5_15_at_start']} at the start and {r['load_average_1_5_15_at_end']} at the end"
    elif r["load_average_1_5_15_at_end"] is None:
        loads = (
            f"{r['load_average_1_5_15_at_start']} at the start and {r['load_average_1_5_15_after_one_process']} "
            "after the one-process run"
        )
    else:
        loads = (
            f"{r['load_average_1_5_15_at_start']} at the start, {r['load_average_1_5_15_after_one_process']} after "
            f"the one-process run and {r['load_average_1_5_15_at_end']} at the end"
        )
    lines = [
        "# Grading a class (issue 32)",
        "",
        f"`python benchmarks/grade_class.py --class {r['submissions']} --workers {r['workers']}`: assignment "
        f"{r['assignment']}, {r['submissions']} generated submissions "
        f"({', '.join(f'{v} {k}' for k, v in r['mix'].items())}), "
        f"cell limit {r['cell_timeout_s']} s (the slow ones use all of it). Machine: {r['machine']}, "
        f"{r['cpu_count']} CPU cores; load average (1, 5, 15 min) {loads}.",
        "",
        "**n = 1: each run below was measured once** (one measurement of the whole class, no repeats, so no spread "
        "or interval can be given for its wall time, rate or memory).",
        "",
        "| run | n (runs) | wall (s) | submissions / s | submissions / s / core | peak memory, all processes (GB) |",
        "|---|---|---|---|---|---|",
        f"| one process, {r['workers']} workers | 1 | {one['wall_s']} | {one['submissions_per_s']} | "
        f"{one['submissions_per_s_per_core']} | {one['peak_resident_gb']} |",
    ]
    if two is not None:
        lines.append(
            f"| two shards at once, {two['workers_each']} worker(s) each, + merge ({two['merge_s']} s) | 1 | "
            f"{two['wall_s']} + {two['merge_s']} | {two['submissions_per_s']} | | {two['peak_resident_gb']} |"
        )
    else:
        lines.append(
            "| two shards at once + merge | 0 | not measured: the run was stopped before the shards finished | | | |"
        )
    low_high = r.get("grading_s_per_submission_min_max")
    spread = f", from {low_high[0]} to {low_high[1]} s" if low_high else " (its spread was not recorded)"
    merged = (
        f"; the merged grades.csv equals the single run's: {r['merged_grades_equal_the_single_run']}"
        if r["merged_grades_equal_the_single_run"] is not None
        else ""
    )
    lines += [
        "",
        f"Mean grading time of one submission (its worker, start to end), over the n = {r['submissions']} "
        f"submissions of the one-process run: {r['mean_grading_s_per_submission']} s{spread}. "
        f"Every submission got the points it deserves: {r['every_submission_got_what_it_deserves']}{merged}.",
        "",
        "Peak memory is the sum of the resident sets of every grading process (sandboxes and kernels included), "
        "sampled every 0.5 s: shared pages count once per process, so it is an upper bound. One sample (n = 1), no "
        "repeats: the numbers carry the noise of the machine's other jobs (see the load averages).",
    ]
    if r.get("phases_s"):
        kinds = [k for k, v in r["phases_s"].items() if v["n"]]
        phases = [p for p in PHASES if any(p in r["phases_s"][k] for k in kinds)]
        lines += [
            "",
            "## Where a submission's time goes",
            "",
            "Mean seconds per phase in the one-process run, by kind of submission (the grader records each "
            "submission's phases: `timings` in summary.json). Wall-clock seconds on the loaded machine, so "
            "they include waiting for a core; the kernel-side ones come from the runner's report. "
            + (
                "Each cell: mean ± standard deviation over the n submissions of that kind (one run)."
                if any(key.endswith("_sd") for kind in kinds for key in r["phases_s"][kind])
                else "Each cell: the mean over the n submissions of that kind in one run; this report was written "
                "before the spread over submissions was recorded (the benchmark records it now: mean ± standard "
                "deviation)."
            ),
            "",
            "| phase | " + " | ".join(f"{k} (n={r['phases_s'][k]['n']})" for k in kinds) + " |",
            "|---|" + "---|" * len(kinds),
        ]
        for p in phases:
            cells = " | ".join(_mean_sd(r["phases_s"][k], p) for k in kinds)
            lines.append(f"| {PHASE_WORDS[p]} | {cells} |")
    if r.get("speedup"):
        c = r["speedup"]
        before, after = c["before"], c["after"]
        lines += [
            "",
            "## Before and after this round's speed-ups",
            "",
            f"`python benchmarks/grade_class.py --class {c['submissions']} --workers {c['workers']} --baseline ...`: "
            f"one generated class of {c['submissions']} "
            f"({', '.join(f'{v} {k}' for k, v in c['mix'].items())}) graded by one process with "
            f"{c['workers']} workers, first with the course_lib of {c['baseline']}, then with this one, back to "
            f"back on the same machine (load average {before['load_average_1_5_15_at_start']} before the first, "
            f"{after['load_average_1_5_15_at_end']} after the second). **n = 1: one run each** (no repeats, so "
            "no spread or interval; the mean grading time is over that run's submissions).",
            "",
            "| course_lib | n (runs) | wall (s) | submissions / s | mean grading s / submission | peak memory (GB) "
            "| all scores right |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, run in (("before: " + c["baseline"], before), ("after: this one", after)):
            lines.append(
                f"| {label} | 1 | {run['wall_s']} | {run['submissions_per_s']} | "
                f"{run['mean_grading_s_per_submission']} | {run['peak_resident_gb']} | "
                f"{run['every_submission_got_what_it_deserves']} |"
            )
        lines += ["", f"Wall time before / after: {c['wall_ratio_before_over_after']}."]
    if r["submissions"] < 200:
        hours = 200 / one["submissions_per_s"] / 3600
        lines += [
            "",
            f"Issue 32 asks for a class of at least 200. At the rate measured here, 200 submissions would take about "
            f"{hours:.1f} h for each of the two runs on this shared machine, so only {r['submissions']} were graded; "
            "`python benchmarks/grade_class.py --class 200 --workers N --report docs/results/grade_class` on a quiet "
            "machine measures it.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--fast", action="store_true", help="COURSE_LIB_FAST=1 in the kernels")
    parser.add_argument("--attacks", action="store_true", help="grade the hostile class instead (see above)")
    parser.add_argument("--class", dest="class_size", type=int, help="grade a generated class of this size (see above)")
    parser.add_argument("--report", help="with --class: write report.json and report.md into this folder")
    parser.add_argument("--machine", default="unnamed", help="with --class: the machine, in words, for the report")
    parser.add_argument("--baseline", help="with --class: grade the class with this older checkout, then this one")
    parser.add_argument("--baseline-label", help="with --baseline: what the older checkout is (e.g. its commit)")
    parser.add_argument("--compare-out", help="with --baseline: write the comparison (JSON) here")
    parser.add_argument("--speedup", help="with --class: a comparison --compare-out wrote, put into the report")
    args = parser.parse_args()
    if args.class_size and args.baseline:
        compare_run(args)
    elif args.class_size:
        class_run(args)
    else:
        attacks(args) if args.attacks else timing(args)


if __name__ == "__main__":
    main()
