"""The `course-lib` command.

Each module in COMMAND_MODULES has a
`register(subparsers)` function that adds its parsers and sets `func` on them. Problems a user can
fix (bad arguments, missing data, unusable checkpoints) end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from course_lib.cli import commands, editions, experiment, metrics
from course_lib.core.errors import CourseLibError
from course_lib.grading import cli as grading

# Modules that add subcommands, in the order `--help` lists them.
COMMAND_MODULES = [commands, metrics, grading, experiment, editions]


class DefaultsOnceHelpFormatter(argparse.HelpFormatter):
    """Every option's default shown once: argparse's ArgumentDefaultsHelpFormatter appends "(default: X)" even
    where the help already states the default in words ("[default: mnist] (default: None)"); this one appends it
    only where the help names no default and there is one worth showing (not None, not an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default == argparse.SUPPRESS or default in ([], (), "")
        if "default" in text.lower() or empty or not action.option_strings:
            return text
        return text + " (default: %(default)s)"

    # Never break a line at a hyphen: names such as wgan-gp or --data-root stay whole, to be copied from the help.
    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.fill(text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course-lib",
        description="Train, sample and evaluate the GANs of the course_lib notebook course.",
        formatter_class=DefaultsOnceHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    for subparser in subparsers.choices.values():  # one rule for every command, whatever its module asked for
        subparser.formatter_class = DefaultsOnceHelpFormatter
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
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line, always
        print(f"course-lib {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"course-lib {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
