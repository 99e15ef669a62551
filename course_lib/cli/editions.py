"""`course-lib student-edition`: the students' notebooks, generated from the instructors' ones.

The lecture notebooks are written once, in ``solutions/`` (the instructor edition): each exercise is an
nbgrader solution cell whose answer sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``. The
student edition in ``notebooks/`` (where students open the course) is generated from it with
`course_lib.grading.markup.student_cell`, the same rule `course-lib assign` applies to the graded
assignments: each answer becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError()``, outputs are
cleared, everything else is copied. The exercise's check cell then says "not done yet" and the rest of the
notebook goes on with course_lib's reference implementation (see `course_lib.course.exercises`).

The student edition must not give the answers away (`answer_leaks`, part of `problems`): no non-trivial line of
a solution body may appear anywhere in it (code or markdown, spaces ignored), and a check cell is only
``from course_lib.course.exercises import check`` and ``check("name")``: the cases, the reference and the
mistake models a check uses are registered in `course_lib.course.exercise_bank`, not written in the notebook.

A notebook without exercises (00, 09) has no instructor edition: it lives in ``notebooks/`` only, and must
not contain solution markup. This module lives in the CLI layer because it uses the grading layer's
markup rules (one place for them).

The command also keeps the *head* of every notebook (both editions, 00 and 09 included) current, from the
project's ``pyproject.toml``: an "Open in Colab" badge (a markdown cell, only when ``[project.urls]`` names a
GitHub repository) and the setup cell, the first code cell, which on a bare kernel (Colab, Kaggle, a JupyterHub)
installs course_lib from that repository (``$COURSE_LIB_INSTALL`` overrides the source, e.g. a local wheel) and
then prints the device and folders the notebook will use. Both cells are generated: edit them here, not in
the notebooks.

`course-lib student-edition` is a developer command: it rewrites ``solutions/`` and ``notebooks/`` of the source
checkout it is run in, and fails with a clear message outside one. Installed users get the notebooks with
`course-lib notebooks` (`course_lib.cli.course_folder`).
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
from pathlib import Path

import nbformat

from course_lib.cli import course_folder, site
from course_lib.core.errors import CourseLibError
from course_lib.core.io import write_text_atomic
from course_lib.grading import markup

EDITION_KEY = "course_lib"  # notebook metadata: {"course_lib": {"edition": "student", "source": ...}}
PROJECT_NAME = "course-lib"
BADGE_ID, SETUP_ID = "course-lib-badge", "course-lib-setup"  # the generated head cells' ids
INSTALL_ENV = "COURSE_LIB_INSTALL"  # overrides where the setup cell installs course_lib from
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


# --------------------------------------------------------------------------- the source checkout
def find_checkout(start: str | Path | None = None) -> Path:
    """The course_lib source checkout (pyproject.toml naming course-lib, with solutions/ and notebooks/) that
    holds `start` (default: the working directory); a one-line error outside one."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if _project(folder).get("name") == PROJECT_NAME and (folder / "solutions").is_dir():
            return folder
    raise CourseLibError(
        f"{here} is not inside a course_lib source checkout: `course-lib student-edition` is a developer command "
        "that rewrites its solutions/ and notebooks/; run it in a clone of the course's repository (to get the "
        "notebooks of an installed course_lib, run `course-lib notebooks DEST`)"
    )


def _project(folder: Path) -> dict:
    """The [project] table of folder/pyproject.toml ({} when there is none or it is unreadable)."""
    try:
        import tomllib  # Python 3.11+; course_lib supports 3.10, where only this developer command needs it
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as exc:
            raise CourseLibError("reading pyproject.toml needs Python 3.11+ (or `pip install tomli`)") from exc
    try:
        return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def __getattr__(name: str) -> Path:
    # SOURCE_DIR / STUDENT_DIR: the editions of the checkout this is run in, found when asked for (not at import,
    # so an installed course_lib imports this module anywhere).
    if name == "SOURCE_DIR":
        return find_checkout() / "solutions"
    if name == "STUDENT_DIR":
        return find_checkout() / "notebooks"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- head cells: badge + setup
def github_repository(project: dict) -> tuple[str, str] | None:
    """("owner/name", branch) of the GitHub repository [project.urls] names (Repository, Source, Homepage, in
    that order; `https://github.com/OWNER/NAME` or `.../tree/BRANCH`, branch "main" by default), else None."""
    urls = {key.lower(): value for key, value in (project.get("urls") or {}).items()}
    for key in ("repository", "source", "homepage"):
        found = re.fullmatch(
            r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?(?:/tree/([\w./-]+))?/?", urls.get(key, "").strip()
        )
        if found:
            return f"{found[1]}/{found[2]}", found[3] or "main"
    return None


def badge_markdown(repository: tuple[str, str], notebook: str) -> str:
    """The "Open in Colab" badge of `notebook` (its path in the repository, e.g. notebooks/01_toy_gan_1d.ipynb)."""
    name, branch = repository
    return (
        f"[![Open In Colab]({COLAB_BADGE})](https://colab.research.google.com/github/{name}/blob/{branch}/{notebook})"
    )


def install_source(repository: tuple[str, str] | None) -> str:
    """What the setup cell gives `pip install` by default: the repository at its branch ("" when none is set)."""
    if repository is None:
        return ""
    name, branch = repository
    return f"{PROJECT_NAME} @ git+https://github.com/{name}@{branch}"


def setup_source(repository: tuple[str, str] | None) -> str:
    """The setup cell: the first code cell of every notebook (ruff-formatted as generated)."""
    default = install_source(repository)
    source = f'os.environ.get("{INSTALL_ENV}", "{default}")' if default else f'os.environ.get("{INSTALL_ENV}", "")'
    return f"""# Setup (the same in every notebook; generated by `course-lib student-edition`). On a bare kernel (Colab, Kaggle,
# a JupyterHub) it installs course_lib first: from {default or "the source $" + INSTALL_ENV + " names"}
# ($COURSE_LIB_INSTALL: a wheel file, a folder or a pip requirement, pip options allowed). Then it says what the
# notebook will use: the device, fast mode, and where data, caches and runs go.
import importlib
import importlib.util
import os

if importlib.util.find_spec("course_lib") is None:
    COURSE_LIB_SOURCE = {source}
    if not COURSE_LIB_SOURCE:
        raise ModuleNotFoundError("course_lib is not installed: pip install it (see the course's README)")
    %pip install --quiet {{COURSE_LIB_SOURCE}}
    importlib.invalidate_caches()
from course_lib.course.environment import print_setup

print_setup()"""


def with_head(nb, repository: tuple[str, str] | None, notebook: str):
    """A copy of `nb` with the current head: the badge as its first cell (when a repository is set) and the
    setup cell just before its first other code cell; older head cells are replaced. `notebook` is the
    notebook's path in the repository, which the badge opens."""
    nb = nbformat.from_dict(copy.deepcopy(dict(nb)))
    body = [cell for cell in nb.cells if cell.get("id") not in (BADGE_ID, SETUP_ID)]
    first_code = next((i for i, cell in enumerate(body) if cell.get("cell_type") == "code"), len(body))
    setup = nbformat.v4.new_code_cell(setup_source(repository), id=SETUP_ID)
    cells = body[:first_code] + [setup] + body[first_code:]
    if repository is not None:
        cells.insert(0, nbformat.v4.new_markdown_cell(badge_markdown(repository, notebook), id=BADGE_ID))
    nb.cells = cells
    return nb


def _repository_for(folder: Path) -> tuple[str, str] | None:
    """The GitHub repository named by the pyproject.toml of the checkout holding `folder` (None outside one)."""
    here = Path(folder).resolve()
    for candidate in [here, *here.parents]:
        project = _project(candidate)
        if project.get("name") == PROJECT_NAME:
            return github_repository(project)
    return None


def _read(path: Path):
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook is the same problem for the user
        raise CourseLibError(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})") from exc


def _text(nb) -> str:
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def student_notebook(source_nb, source_name: str):
    """The student edition of one instructor notebook (a new notebook object)."""
    try:
        markup.validate_notebook(source_nb)
        cells = [markup.student_cell(cell, i) for i, cell in enumerate(source_nb.cells)]
    except markup.AssignmentError as exc:
        raise CourseLibError(f"{source_name}: {exc}") from exc
    student = nbformat.v4.new_notebook(metadata=dict(source_nb.metadata))
    student.metadata[EDITION_KEY] = {
        **dict(source_nb.metadata.get(EDITION_KEY, {})),
        "edition": "student",
        "source": source_name,
    }
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.setdefault("id", f"cell-{i}")  # the source's id when it has one: generating twice gives the same file
    student.cells = cells
    return nbformat.from_dict(student)


TRIVIAL_ANSWER_CHARS = 12  # answer lines shorter than this without spaces ("return r", "r = 1") say nothing


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_lines(source_nb) -> list[str]:
    """The non-trivial lines of the notebook's solution bodies, comments and spaces removed."""
    lines = []
    for cell in source_nb.cells:
        inside = False
        for line in markup.source_of(cell).split("\n"):
            if markup.BEGIN_SOLUTION in line or markup.END_SOLUTION in line:
                inside = markup.BEGIN_SOLUTION in line
                continue
            code = _squeezed(line.split(" #")[0] if not line.lstrip().startswith("#") else "")
            if inside and len(code) >= TRIVIAL_ANSWER_CHARS:
                lines.append(code)
    return lines


def is_check_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and re.search(r"(^|\W)check\(", markup.source_of(cell)) is not None


def check_cell_problem(source: str) -> str | None:
    """Why a check cell shows more than it should (None if it is only the import and check("name") calls)."""
    try:
        body = ast.parse(source).body
    except SyntaxError as exc:
        return f"does not parse ({exc.msg})"
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return "defines a function, lambda or class (the cases and mistakes belong in the exercise bank)"
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        if not (
            isinstance(call, ast.Call)
            and getattr(call.func, "id", None) == "check"
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
            and not call.keywords
        ):
            return f'line {node.lineno} is not an import or check("exercise name")'
    return None


def answer_leaks(source_nb, student_nb) -> list[str]:
    """Where the student edition shows an answer: solution lines found in it, check cells that show more than
    the check. One line each; empty when the student edition gives nothing away."""
    found = []
    answers = solution_lines(source_nb)
    for i, cell in enumerate(student_nb.cells):
        text = _squeezed(markup.source_of(cell))
        for line in answers:
            if line in text:
                found.append(f"cell {i + 1} ({cell.get('cell_type')}) contains the answer line {line!r}")
        if is_check_cell(cell):
            why = check_cell_problem(markup.source_of(cell))
            if why:
                found.append(f"check cell {i + 1} {why}")
    return found


def _sources(source_dir: Path) -> list[Path]:
    found = sorted(source_dir.glob("*.ipynb"))
    if not found:
        raise CourseLibError(f"no instructor notebooks (*.ipynb) in {source_dir}")
    return found


def _folders(source_dir: Path | None, student_dir: Path | None) -> tuple[Path, Path]:
    """The two editions' folders: as given, else those of the checkout this is run in (an error outside one)."""
    if source_dir is None or student_dir is None:
        checkout = find_checkout()
        source_dir = source_dir if source_dir is not None else checkout / "solutions"
        student_dir = student_dir if student_dir is not None else checkout / "notebooks"
    return Path(source_dir), Path(student_dir)


def expected_texts(source_dir: Path | None = None, student_dir: Path | None = None) -> dict[Path, str]:
    """{file: the text it must have}: every instructor notebook with its current head, its student edition, and
    the student-only notebooks (00, 09) with their current head."""
    source_dir, student_dir = _folders(source_dir, student_dir)
    repository = _repository_for(source_dir)
    texts = {}
    for path in _sources(source_dir):
        source = with_head(_read(path), repository, f"{source_dir.name}/{path.name}")
        texts[path] = _text(source)
        student = student_notebook(source, f"{source_dir.name}/{path.name}")
        texts[student_dir / path.name] = _text(with_head(student, repository, f"{student_dir.name}/{path.name}"))
    for path in sorted(student_dir.glob("*.ipynb")):
        if path not in texts and not _has_solutions(_read(path)):
            texts[path] = _text(with_head(_read(path), repository, f"{student_dir.name}/{path.name}"))
    return texts


def _has_solutions(nb) -> bool:
    return any(markup.kind_of(c).solution or markup.BEGIN_SOLUTION in markup.source_of(c) for c in nb.cells)


def problems(source_dir: Path | None = None, student_dir: Path | None = None) -> list[str]:
    """What is out of date or misplaced: one line each; empty when the student edition is current."""
    source_dir, student_dir = _folders(source_dir, student_dir)
    found = []
    for target, text in expected_texts(source_dir, student_dir).items():
        if not target.is_file():
            found.append(f"{target} is missing")
        elif target.read_text(encoding="utf-8") != text:
            if target.parent == student_dir and (source_dir / target.name).is_file():
                found.append(f"{target} differs from what {source_dir.name}/{target.name} generates")
            else:
                found.append(f"{target}: its head (Colab badge, setup cell) is not the generated one")
        if target.parent == student_dir and (source_dir / target.name).is_file():
            student_nb = nbformat.reads(text, as_version=4)
            found += [f"{target}: {leak}" for leak in answer_leaks(_read(source_dir / target.name), student_nb)]
    for path in sorted(student_dir.glob("*.ipynb")):
        if not (source_dir / path.name).is_file() and _has_solutions(_read(path)):
            found.append(
                f"{path} has solution cells but no instructor edition {source_dir.name}/{path.name}: "
                f"move it there and generate the student edition"
            )
    return found


def write_student_edition(source_dir: Path | None = None, student_dir: Path | None = None) -> list[Path]:
    """Write the student edition of every instructor notebook and every notebook's current head; returns the
    files that changed."""
    changed = []
    for target, text in expected_texts(source_dir, student_dir).items():
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            write_text_atomic(target, text)
            changed.append(target)
    return changed


def register(subparsers) -> None:
    """The notebook commands: student-edition (here), notebooks (`course_folder`) and site (`site`)."""
    _register_student_edition(subparsers)
    course_folder.register(subparsers)
    site.register(subparsers)


def _register_student_edition(subparsers) -> None:
    parser = subparsers.add_parser(
        "student-edition",
        help="write the students' notebooks (exercises blank) from the instructors' ones",
        description="Read the instructor edition (solutions/*.ipynb, exercises in nbgrader's markup: "
        "### BEGIN SOLUTION / ### END SOLUTION) and write the student edition to notebooks/: "
        "each answer replaced by `raise NotImplementedError()`, outputs cleared. With --check, "
        "write nothing and exit 1 when the student edition is out of date or gives an answer away (a line of a "
        'solution in it, or a check cell that is more than check("name")).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder of the instructor notebooks (default: the checkout's solutions/)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder of the student notebooks (default: the checkout's notebooks/)"
    )
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    parser.set_defaults(func=run)


def run(args) -> int:
    args.source, args.out = _folders(args.source, args.out)
    if args.check:
        found = problems(args.source, args.out)
        for line in found:
            print(line)
        print(
            "student edition is up to date"
            if not found
            else f"{len(found)} problem(s): run `course-lib student-edition` (edit the notebooks in {args.source})"
        )
        return 1 if found else 0
    changed = write_student_edition(args.source, args.out)
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(changed)} student notebook(s) updated" if changed else "student edition already up to date")
    leftover = [p for p in problems(args.source, args.out) if "differs" not in p and "missing" not in p]
    for line in leftover:
        print(line)
    return 1 if leftover else 0
