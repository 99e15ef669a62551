"""The `course-lib` command.

Each module in COMMAND_MODULES has a
`register(subparsers)` function that adds its parsers and sets `func` on them. Problems a user can
fix (bad arguments, missing data, unusable checkpoints) end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from course_lib.cli import commands, editions, experiment, metrics
from course_lib.core.errors import CourseLibError
from course_lib.grading import cli as grading

# Modules that add subcommands, in the order `--help` lists them.
COMMAND_MODULES = [commands, metrics, grading, experiment, editions]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course-lib",
        description="Train, sample and evaluate the GANs of the course_lib notebook course.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except CourseLibError as exc:
        print(f"course-lib {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"course-lib {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
