"""`course-lib notebooks [DEST]`: a ready-to-open course folder, written from the files course_lib ships.

An installed course_lib carries both editions of the notebooks, the configs they read and the reports and
diagrams they link (`course_lib.core.resources`). This command lays them out as the source tree does::

    DEST/notebooks/NN_*.ipynb      the chosen edition (student: exercises blank; instructor: with solutions)
    DEST/configs/  DEST/docs/figures/  DEST/docs/results/

so every relative link in a notebook (``../docs/results/...``) resolves, and `course-lib experiment
configs/mnist_improvements.yaml` works from DEST. It never overwrites a file the student has changed: each
file's sha256 as written is kept in ``DEST/.course_lib.json``; a file that still has it is updated to this
course_lib's version, one that differs (an edited or executed notebook) is kept and listed, unless ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from course_lib.core.errors import ConfigError
from course_lib.core.io import write_bytes_atomic, write_json_atomic
from course_lib.core.resources import course_root, shipped_files

MANIFEST = ".course_lib.json"
EDITIONS = ("student", "instructor")
DEFAULT_DEST = "gan-course"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def course_contents(edition: str = "student") -> dict[str, Path]:
    """{path inside the course folder: the shipped file it is copied from} for one edition."""
    if edition not in EDITIONS:
        raise ConfigError(f"unknown edition {edition!r}: use one of {', '.join(EDITIONS)}")
    root = course_root()
    files = shipped_files()
    contents = {rel: root / rel for rel in files if rel.split("/")[0] not in ("notebooks", "solutions")}
    student = {Path(rel).name: root / rel for rel in files if rel.startswith("notebooks/")}
    instructor = {Path(rel).name: root / rel for rel in files if rel.startswith("solutions/")}
    # The instructor edition: every notebook with solutions, plus the notebooks that exist only for students (00, 09).
    notebooks = student if edition == "student" else {**student, **instructor}
    if not notebooks:
        raise ConfigError(f"this course_lib ships no notebooks ({root}): reinstall it from a wheel or the repository")
    contents.update({f"notebooks/{name}": path for name, path in sorted(notebooks.items())})
    return contents


def _read_manifest(dest: Path) -> dict:
    path = dest / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # unreadable: every existing file counts as the student's own, so nothing is overwritten
    return manifest if isinstance(manifest, dict) else {}


def write_course_folder(dest: str | Path, edition: str = "student", force: bool = False) -> dict[str, list[str]]:
    """Write (or update) the course folder; returns {"written": [...], "unchanged": [...], "kept": [...]}, each a
    list of paths inside `dest`. "kept": files that differ from what course_lib last wrote there (the student's
    changes), left as they are (overwritten when `force`)."""
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} is a file, not a folder: give a folder for the course")
    contents = course_contents(edition)
    manifest = _read_manifest(dest)
    recorded = manifest.get("files", {}) if isinstance(manifest.get("files"), dict) else {}
    result = {"written": [], "unchanged": [], "kept": []}
    files = dict(recorded)
    for rel, source in contents.items():
        data = source.read_bytes()
        target = dest / rel
        new_hash = _sha256(data)
        if target.is_file():
            old_hash = _sha256(target.read_bytes())
            if old_hash == new_hash:
                result["unchanged"].append(rel)
                files[rel] = new_hash
                continue
            if old_hash != recorded.get(rel) and not force:
                result["kept"].append(rel)
                continue
        elif target.exists():
            raise ConfigError(f"{target} is in the way (not a file): move it and run the command again")
        write_bytes_atomic(target, data)
        files[rel] = new_hash
        result["written"].append(rel)
    write_json_atomic(dest / MANIFEST, {"edition": edition, "course_lib": _version(), "files": files})
    return result


def _version() -> str:
    import course_lib

    return getattr(course_lib, "__version__", "unknown")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "notebooks",
        help="write a ready-to-open course folder: the notebooks, with the configs and reports they read",
        description="Write the course's notebooks (student edition by default) into DEST/notebooks/, with the "
        "configs/ and docs/ they read and link, from the files this course_lib ships. Run it again after upgrading "
        "course_lib: files you changed (edited or executed notebooks) are kept and listed, unless --force.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("dest", nargs="?", default=DEFAULT_DEST, type=Path, help="the course folder")
    parser.add_argument("--edition", choices=EDITIONS, default="student", help="which notebooks")
    parser.add_argument("--force", action="store_true", help="overwrite files you changed, too")
    parser.set_defaults(func=run)


def run(args) -> int:
    result = write_course_folder(args.dest, args.edition, args.force)
    kept_notebooks = [rel for rel in result["kept"] if rel.endswith(".ipynb")]
    print(
        f"{args.dest}: {len(result['written'])} file(s) written, {len(result['unchanged'])} already current "
        f"({args.edition} edition)"
    )
    if result["kept"]:
        print(
            f"kept {len(result['kept'])} file(s) you changed ({len(kept_notebooks)} notebook(s)); --force overwrites:"
        )
        for rel in result["kept"]:
            print(f"  {rel}")
    # The folder itself, not its notebooks/: JupyterLab serves only below its root, and the notebooks link ../docs/.
    print(f"open the course with: jupyter lab {args.dest}  (then the notebooks in {args.dest / 'notebooks'})")
    return 0
