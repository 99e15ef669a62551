"""The course's shipped files (configs, notebooks of both editions, diagrams, measured reports), read as package data.

A wheel of course_lib carries them in ``course_lib/_course/`` (copied there at build time by ``setup.py``, from
the folders of the same names in the source tree: ``configs/``, ``notebooks/``, ``solutions/``, ``docs/figures/``,
``docs/results/``), so an installed course_lib has its configs and reports wherever it is installed, and
``course-lib notebooks`` can lay out a course folder from them. Library code asks for these files here, by their
course-relative name (``course_file("configs/celeba64_cpu.yaml")``), never by a path into a checkout.

An editable install (``pip install -e .``) or ``PYTHONPATH`` pointing at a source tree has no ``_course`` folder:
the same files are then the source tree's own, beside the package. That is the one place course_lib looks beside
itself, and only for these shipped folders.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from course_lib.core.errors import ConfigError

# The folder inside the installed package that holds the course's files (see setup.py).
SHIPPED_DIR = "_course"
# The course-relative folders a wheel ships; `course-lib notebooks` writes the same layout into a course folder.
COURSE_FOLDERS = ("configs", "docs/figures", "docs/results", "notebooks", "solutions")


def _package_dir() -> Path:
    # A regular (non-zipped) install: importlib.resources gives a real folder.
    return Path(os.fspath(importlib.resources.files("course_lib")))


def course_root() -> Path:
    """The folder holding the course's shipped files, laid out as in the source tree (configs/, notebooks/...)."""
    package = _package_dir()
    shipped = package / SHIPPED_DIR
    if shipped.is_dir():
        return shipped
    beside = package.parent  # editable install / PYTHONPATH: the source tree the package was imported from
    if (beside / "configs").is_dir() and (beside / "notebooks").is_dir():
        return beside
    raise ConfigError(
        f"this course_lib ({package}) has none of the course's files (configs, notebooks, reports): "
        "reinstall it from a wheel built with `python -m build`, or from the course's repository"
    )


def course_file(relative: str | os.PathLike) -> Path:
    """A shipped file by its course-relative name, e.g. "configs/mnist_improvements.yaml" or
    "docs/results/celeba_dcgan/report.json"; a one-line error naming it when this install lacks it."""
    relative = Path(relative)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts or relative.parts[0] == SHIPPED_DIR:
        raise ConfigError(f"{relative}: expected a course-relative name such as configs/mnist_improvements.yaml")
    path = course_root() / relative
    if not path.exists():
        raise ConfigError(f"{relative} is not among the course's files shipped with this course_lib ({course_root()})")
    return path


def config_file(name: str) -> Path:
    """One of the course's configs by file name (`configs/NAME`)."""
    return course_file(Path("configs") / name)


def shipped_files() -> list[str]:
    """Every shipped file, course-relative (posix), sorted: what `course-lib notebooks` can copy."""
    root = course_root()
    found = []
    for folder in COURSE_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and _shippable(path.relative_to(root)):
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def _shippable(relative: Path) -> bool:
    """What the wheel carries from the course folders (setup.py uses the same rule)."""
    parts = relative.parts
    if any(part in {"__pycache__", ".ipynb_checkpoints"} for part in parts):
        return False
    if parts[0] in {"notebooks", "solutions"}:
        # the notebooks themselves; not students' runs/ or the solutions' pytest conftest
        return len(parts) == 2 and relative.suffix == ".ipynb"
    return True
