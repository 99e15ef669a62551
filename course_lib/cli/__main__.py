"""`python -m course_lib.cli` is the `course-lib` command."""

import sys

from course_lib.cli.main import main

sys.exit(main())
