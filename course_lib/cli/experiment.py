"""`course-lib experiment CONFIG --out DIR`."""

from __future__ import annotations

from pathlib import Path

from course_lib.experiment import run_experiment
from course_lib.experiment.report import render_markdown


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="train and evaluate a list of variants over seeds; write report.md/report.json",
        description="Run every (variant, seed) of an experiment config that is not finished in --out (an "
        "interrupted run resumes from its checkpoint), evaluate them, and write DIR/report.md, "
        "DIR/report.json and figures.",
    )
    parser.add_argument("config", help="experiment config, YAML or JSON (see course_lib.experiment)")
    parser.add_argument("--out", required=True, help="experiment folder (runs/, report.md, report.json)")
    parser.add_argument("--device", help="override the device of every run (auto, cpu, cuda, ...)")
    parser.add_argument(
        "--only",
        help="comma-separated variant names to run, in this order (split an experiment "
        "over processes sharing --out; the report is written when all runs are finished)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_cli)


def run_cli(args) -> int:
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    report = run_experiment(args.config, args.out, progress=not args.quiet, device=args.device, only=only)
    if report is None:
        return 0
    print(render_markdown(report).split("## Per seed")[0].rstrip())
    print(f"\nwrote {Path(args.out) / 'report.md'} and {Path(args.out) / 'report.json'}")
    return 0
