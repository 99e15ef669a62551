"""`python -m course_lib` is the `course-lib` command, so torchrun can start it: `torchrun --nproc-per-node N -m
course_lib train ...` (torchrun's -m takes a module; course-lib is a console script). The package's entry point,
above every layer: it imports only the cli layer."""

import sys

from course_lib.cli.main import main

sys.exit(main())
