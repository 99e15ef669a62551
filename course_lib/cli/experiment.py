"""`course-lib experiment CONFIG --out DIR`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from course_lib.core.errors import ConfigError
from course_lib.experiment import load_experiment, run_experiment
from course_lib.experiment.report import render_markdown


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="train and evaluate a list of variants over seeds; write report.md/report.json",
        description="Run every (variant, seed) of an experiment config that is not finished in --out (an "
        "interrupted run resumes from its checkpoint), evaluate them, and write DIR/report.md, "
        "DIR/report.json and figures. Until every run has finished (--only, Ctrl-C, a diverged run) the report "
        "is a partial one of the runs that did, marked partial and listing the missing ones. Try an experiment "
        "small without editing its file: --steps 50 --set seeds=0 --set eval.n_samples=500.",
    )
    parser.add_argument("config", help="experiment config, YAML or JSON (see course_lib.experiment)")
    parser.add_argument("--out", required=True, help="experiment folder (runs/, report.md, report.json)")
    parser.add_argument("--device", help="override the device of every run (auto, cpu, cuda, ...)")
    parser.add_argument(
        "--steps",
        type=int,
        help="train every run for this many generator steps instead of the config's (in base, and in any variant "
        "that sets its own)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one entry of the config by its dotted key, e.g. --set seeds=0, --set eval.every=100, "
        "--set eval.n_samples=500, or a field of one variant found by its name: variants.NAME.FIELD; the value is "
        "read as YAML; repeatable, applied in order, after --steps",
    )
    parser.add_argument(
        "--only",
        help="comma-separated variant names to run, in this order (split an experiment over processes sharing "
        "--out; the full report is written when all runs are finished, a partial one until then)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_cli)


def parse_assignment(text: str) -> tuple[str, object]:
    """`key=value` from --set: the dotted key, and the value read as YAML (numbers, lists, true/false, null; a
    number in exponent form such as 1e-4, which YAML 1.1 reads as a string, is read as a number)."""
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (a dotted key such as base.width=16), got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot read {raw!r} as a value ({' '.join(str(exc).split())})") from exc
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else int(value)
        except ValueError:
            pass
    return key, value


def run_cli(args) -> int:
    """Under torchrun every rank runs the experiment (course_lib.experiment.runner) and only rank 0 prints
    (errors still go to stderr on every rank)."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return _run_cli(args)
    return _run_cli(args)


def _run_cli(args) -> int:
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    overrides = [parse_assignment(text) for text in args.overrides]
    config = load_experiment(args.config, overrides=overrides, steps=args.steps)
    report = run_experiment(config, args.out, progress=not args.quiet, device=args.device, only=only)
    if report is None:
        return 0
    print(render_markdown(report).split("## Per seed")[0].rstrip())
    print(f"\nwrote {Path(args.out) / 'report.md'} and {Path(args.out) / 'report.json'}")
    return 0
