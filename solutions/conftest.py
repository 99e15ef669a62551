"""When nbval runs the instructor edition, exercise checks run in strict mode "wrong".

A check that finds a WRONG answer then raises (`course_lib.course.exercises`), so a broken solution here fails
CI; the student edition in notebooks/ keeps the default (it prints "NOT DONE YET" and runs on). nbval starts a
notebook's kernel while setting up its first cell, and the kernel inherits this process's environment, so the
variable is set before that and removed after the last cell of this folder.
"""

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STRICT = "COURSE_LIB_STRICT_CHECKS"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    os.environ[STRICT] = "wrong"


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    if nextitem is None or HERE not in Path(str(nextitem.path)).resolve().parents:
        os.environ.pop(STRICT, None)
