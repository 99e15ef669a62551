"""`course-lib assign` and `course-lib grade`."""

from __future__ import annotations

import argparse
import os
import sys

DOUBLE_DASH_HINT = "course-lib grade --assignment A --out OUT -- *"
FORMATS = ("canvas", "gradescope", "moodle", "csv")  # export.FORMATS, without importing it for --help


def register(subparsers) -> None:
    assign = subparsers.add_parser(
        "assign",
        help="make student versions and a grading bundle from source notebooks",
        description="Read source notebooks in nbgrader's markup (### BEGIN SOLUTION / ### END SOLUTION, "
        "### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS, nbgrader cell metadata) and write "
        "OUT/student/NAME.ipynb (solutions replaced by stubs, hidden tests removed, outputs cleared) "
        "and OUT/grading/NAME.json (the grading bundle, with the hidden tests: keep it private).",
    )
    assign.add_argument("sources", nargs="+", metavar="SOURCE", help="source notebook(s)")
    assign.add_argument("--out", required=True, help="folder to write student/ and grading/ into")
    assign.set_defaults(func=run_assign)

    grade = subparsers.add_parser(
        "grade",
        help="grade submissions, each in its own sandbox, checked outside it",
        description="Run each submission (a notebook, or a folder with the notebook and its files) on a copy in "
        "a bubblewrap sandbox (read-only system, no network, only its own folder writable, resource "
        "limits), where test cells only collect the answers' results; the checks run in a separate "
        "process that never runs student code. Writes OUT/grades.csv, OUT/feedback/STUDENT.md, "
        "OUT/executed/STUDENT.ipynb and OUT/summary.json after every submission. Without bubblewrap "
        "(apt-get install bubblewrap) student code runs with your permissions, and the summary says so.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    grade.add_argument(
        "submissions",
        nargs="*",
        metavar="SUBMISSION",
        help="submitted notebook(s) or folder(s); put them after `--` when a name may start with '-' "
        f"(a shell's * does that): {DOUBLE_DASH_HINT}",
    )
    grade.add_argument(
        "--assignment",
        required=True,
        help="assignment name (found as assignments/*/grading/NAME.json), a bundle file, or a folder "
        "written by `course-lib assign`",
    )
    grade.add_argument("--out", required=True, help="folder for grades.csv, feedback/ and executed/")
    grade.add_argument("--workers", type=int, help="submissions graded at once [default: CPU count]")
    grade.add_argument("--cell-timeout", type=int, help="seconds one cell may run [default: the assignment's]")
    grade.add_argument("--total-timeout", type=int, help="seconds one submission may run [default: the assignment's]")
    grade.add_argument("--output-limit", type=int, default=100_000, help="characters of output kept per cell")
    grade.add_argument("--memory-gb", type=float, default=6.0, help="address space per process of a submission")
    grade.add_argument(
        "--ram-gb",
        type=float,
        default=4.0,
        help="memory of all of a submission's processes together, its /tmp included (a memory cgroup "
        "per submission, where the grader may create one: root, or a delegated cgroup)",
    )
    grade.add_argument("--file-gb", type=float, default=1.0, help="largest file a submission may write")
    grade.add_argument("--folder-gb", type=float, default=4.0, help="all files of a submission together")
    grade.add_argument("--processes", type=int, default=256, help="processes per submission (when run as root)")
    grade.add_argument("--fast", action="store_true", help="run the kernels with COURSE_LIB_FAST=1 (tiny budgets)")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    klass = grade.add_argument_group("a class (issue 32; see assignments/README.md)")
    klass.add_argument(
        "--resume",
        action="store_true",
        help="keep the results in OUT of submissions that did not change since they were graded with this version "
        "of the assignment (finishes a run that was killed)",
    )
    klass.add_argument(
        "--shard",
        metavar="I/N",
        help="grade only the I-th of N slices of the class (I from 0; SLURM: "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT) into OUT/shards/; give every shard the same submissions",
    )
    klass.add_argument(
        "--merge", action="store_true", help="write grades.csv and summary.json from the finished shards in OUT"
    )
    klass.add_argument(
        "--manual",
        metavar="FILE",
        help="marks by hand (CSV or YAML: student, cell, points, comment): merged into OUT/manual.json; a FILE that "
        "does not exist yet is written with a row per cell to mark",
    )
    klass.add_argument("--times", metavar="CSV", help="submission times (student, submitted_at) for the late policy")
    klass.add_argument(
        "--export",
        action="append",
        choices=FORMATS,
        help="write OUT/export/FORMAT.csv for the LMS (may be given more than once)",
    )
    klass.add_argument(
        "--roster",
        metavar="CSV",
        help="student (the submission's name), name, email, lms_id, sis_id, login, section: the LMS's identifiers",
    )
    klass.add_argument(
        "--missing",
        choices=("zero", "blank"),
        default="zero",
        help="in exports, what a student of the roster without a submission gets",
    )
    grade.set_defaults(func=run_grade)
    _guard_option_like_names(grade)


def _guard_option_like_names(parser: argparse.ArgumentParser) -> None:
    """Before `--`, a word that starts with '-' and names a file or folder here is refused (exit 2): `course-lib
    grade *` in a class folder holding a folder named `--total-timeout=3` must not change an option. Words after
    `--` are submissions whatever they look like; which ones were is remembered for run_grade's own check."""
    parse = parser.parse_known_args

    def checked(args=None, namespace=None):
        words = list(sys.argv[1:] if args is None else args)
        before = words[: words.index("--")] if "--" in words else words
        for word in before:
            if word.startswith("-") and word != "-" and os.path.lexists(word):
                parser.error(
                    f"{word!r} is a file or folder here but reads as an option; name the submissions after `--`, "
                    f"e.g. {DOUBLE_DASH_HINT}"
                )
        parsed, rest = parse(args, namespace)
        parsed.after_double_dash = words[words.index("--") + 1 :] if "--" in words else []
        return parsed, rest

    parser.parse_known_args = checked


def run_assign(args) -> int:
    from .assign import assign

    for nb_path, bundle_path in assign(args.sources, args.out):
        print(f"wrote {nb_path} and {bundle_path}")
    return 0


def run_grade(args) -> int:
    import json
    from pathlib import Path

    from . import classwork
    from .grade import grade
    from .markup import AssignmentError

    after = getattr(args, "after_double_dash", None)  # None: the guard did not run (an argparse that bypassed it)
    for name in args.submissions:
        if name.startswith("-") and (after is None or name not in after):
            raise AssignmentError(
                f"the submission {name!r} starts with '-': name such submissions after `--`, e.g. {DOUBLE_DASH_HINT}"
            )
    shard = classwork.parse_shard(args.shard) if args.shard else None
    if args.merge and (args.submissions or shard):
        raise AssignmentError("--merge combines the shards already in OUT: give it no submissions and no --shard")
    if not args.submissions and not (args.merge or args.manual or args.export):
        raise AssignmentError("no submissions given (or --merge, --manual FILE, --export FORMAT on a graded OUT)")
    if args.roster and not args.export:
        raise AssignmentError("--roster is for --export")
    if shard and (args.manual or args.export):
        raise AssignmentError("--manual and --export work on the whole class: run them after --merge")
    out = Path(args.out)
    if args.submissions:
        results = grade(
            args.submissions,
            args.assignment,
            args.out,
            workers=args.workers,
            cell_timeout=args.cell_timeout,
            total_timeout=args.total_timeout,
            output_limit=args.output_limit,
            fast=True if args.fast else None,
            limits={
                "memory_gb": args.memory_gb,
                "ram_gb": args.ram_gb,
                "file_gb": args.file_gb,
                "folder_gb": args.folder_gb,
                "processes": args.processes,
            },
            progress=not args.quiet,
            shard=shard,
            resume=args.resume,
            times=args.times,
        )
        for res in results:
            note = f" ({len(res.events)} problem(s), see feedback)" if res.events else ""
            note = " (refused, see the summary)" if res.status == "refused" else note
            name = res.student if res.student.isprintable() else ascii(res.student)  # no terminal control sequences
            print(f"{name}: {res.points:g} / {res.max_points:g}{note}")
        written = out / ("summary.json" if shard is None else f"shards/{shard[0]}-of-{shard[1]}.json")
        warning = json.loads(written.read_text()).get("warning")
        if warning:
            print(warning, file=sys.stderr)
        if shard is None:
            print(f"wrote {out / 'grades.csv'}, {out / 'feedback'}/, {out / 'executed'}/")
        else:
            print(f"wrote {written}, and {out / 'feedback'}/ and {out / 'executed'}/ of this shard's students")
    if args.merge:
        merged = classwork.merge(args.assignment, out)
        print(f"merged {len(merged)} students from {out / 'shards'}/ into {out / 'grades.csv'} and summary.json")
    if args.manual:
        existed = Path(args.manual).exists()
        count, left = classwork.merge_manual(args.assignment, out, args.manual)
        if not existed:
            print(f"wrote {args.manual}: fill in the points (and comments), then run this command again")
        else:
            print(f"merged {count} mark(s) into {out / 'manual.json'}; feedback and summary rewritten")
        print(f"{len(left)} manually graded cell(s) still unmarked" + (f", e.g. {left[0]}" if left else ""))
    for fmt in args.export or []:
        path = classwork.export(args.assignment, out, fmt, args.roster, args.missing)
        print(f"wrote {path}")
    return 0
