"""Build hook: the wheel carries the course's files as package data in course_lib/_course/.

Everything else about the package is in pyproject.toml. The course's configs, notebooks (both editions),
diagrams and measured reports live at the top of the source tree (configs/, notebooks/, solutions/, docs/figures/,
docs/results/), where the notebooks' relative paths expect them; setuptools cannot map folders outside the package
into it, so this copies them into the built package, where `course_lib.core.resources` reads them with
importlib.resources and `course-lib notebooks` writes them out. MANIFEST.in puts the same folders in the sdist, so
a wheel built from the sdist has them too. The selection rule must match `course_lib.core.resources._shippable`
(tests/test_packaging.py compares a built wheel with it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
COURSE_FOLDERS = ("configs", "docs/figures", "docs/results", "notebooks", "solutions")
SHIPPED_DIR = Path("course_lib") / "_course"


def _shippable(relative: Path) -> bool:
    parts = relative.parts
    if any(part in {"__pycache__", ".ipynb_checkpoints"} for part in parts):
        return False
    if parts[0] in {"notebooks", "solutions"}:
        return len(parts) == 2 and relative.suffix == ".ipynb"
    return True


def course_files(root: Path) -> list[Path]:
    found = []
    for folder in COURSE_FOLDERS:
        base = root / folder
        if base.is_dir():
            found += [p.relative_to(root) for p in sorted(base.rglob("*")) if p.is_file()]
    return [p for p in found if _shippable(p)]


class BuildWithCourseFiles(build_py):
    """build_py, then copy the course's files into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the source tree's own folders (course_lib.core.resources)
        target = Path(self.build_lib) / SHIPPED_DIR
        if target.exists():
            shutil.rmtree(target)
        for relative in course_files(HERE):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / relative, destination)


setup(cmdclass={"build_py": BuildWithCourseFiles})
