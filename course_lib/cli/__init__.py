"""The `course-lib` command (the top layer: it may import everything)."""

from course_lib.cli.main import main

__all__ = ["main"]
