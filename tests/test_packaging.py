"""The course as a user installs it: a built wheel in a fresh virtual environment outside the checkout.

`installed` builds the sdist and from it the wheel (`python -m build --no-isolation`: offline, with the setuptools
already here) and makes a fresh venv in a temporary folder. The venv sees this machine's site-packages
(`--system-site-packages`) only so that PyTorch and Jupyter need not be installed again (minutes, gigabytes); the
course_lib of this checkout, installed editable or put on PYTHONPATH there, is hidden from it (its
`sitecustomize`), so inside the venv course_lib exists only once something installs it into the venv. Then, from empty folders outside the checkout:

- a notebook opened on a bare kernel installs course_lib through its setup cell, from the local wheel that
  $COURSE_LIB_INSTALL names (what Colab, Kaggle or a JupyterHub do from the repository);
- `course-lib notebooks` lays out the course; a notebook runs top to bottom in fast mode from that folder, and
  README's main job (fewer steps) trains from it;
- the developer-only command refuses clearly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

import course_lib
from course_lib.core.resources import SHIPPED_DIR, shipped_files

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGE = Path(course_lib.__file__).resolve().parent
KERNEL = "course-lib-venv"
# Hides every course_lib outside the venv (an editable install's finder, a checkout on sys.path).
HIDE_OTHER_COURSE_LIBS = """import os, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p.startswith(sys.prefix) or not os.path.isdir(os.path.join(p or ".", "course_lib"))]
"""


def _run(command, cwd, env, timeout=300):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _execute(notebook: Path, env: dict, kernel: str = KERNEL) -> nbformat.NotebookNode:
    """Run `notebook` top to bottom in the venv's kernel, from its own folder; the executed notebook."""
    script = (
        "import sys, nbformat, nbclient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "nbclient.NotebookClient(nb, kernel_name=sys.argv[2], timeout=600,"
        " resources={'metadata': {'path': sys.argv[3]}}).execute()\n"
        "nbformat.write(nb, sys.argv[1])\n"
    )
    _run([sys.executable, "-c", script, str(notebook), kernel, str(notebook.parent)], notebook.parent, env, 600)
    return nbformat.read(str(notebook), as_version=4)


def _outputs(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv, env): a built wheel and a fresh venv that has no course_lib yet."""
    started = time.perf_counter()
    root = tmp_path_factory.mktemp("user")
    dist = root / "dist"
    build_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # sdist first, then the wheel from the unpacked sdist (build's default): what MANIFEST.in leaves out of the sdist
    # cannot reach the wheel, and no stale build/ folder of the checkout can either.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(CHECKOUT)], root, build_env)
    (wheel,) = dist.glob("course_lib-*.whl")
    assert len(list(dist.glob("course_lib-*.tar.gz"))) == 1
    venv = root / "venv"
    # --without-pip: the venv's python runs this machine's pip (seen through --system-site-packages), which installs
    # into the venv; no ensurepip step, which some distributions leave out of Python.
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], root, build_env)
    python = venv / "bin" / "python"
    site_packages = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, build_env
        ).stdout.strip()
    )
    (site_packages / "sitecustomize.py").write_text(HIDE_OTHER_COURSE_LIBS)
    env = {
        **build_env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "COURSE_LIB_FAST": "1",
        "JUPYTER_PATH": str(venv / "share" / "jupyter"),  # the venv's kernel below
        "COURSE_LIB_CACHE": str(root / "cache"),
        "COURSE_LIB_RUNS": str(root / "runs"),
        "COURSE_LIB_DATA": str(root / "data"),
        "MPLBACKEND": "Agg",
    }
    _run([str(python), "-m", "ipykernel", "install", "--prefix", str(venv), "--name", KERNEL], root, env)
    found = _run([str(python), "-c", "import importlib.util; print(importlib.util.find_spec('course_lib'))"], root, env)
    assert found.stdout.strip() == "None", f"the fresh venv still sees a course_lib: {found.stdout}"
    print(f"wheel built and venv made in {time.perf_counter() - started:.1f} s")
    return wheel, venv, env


def test_a_bare_kernel_installs_the_course_from_its_setup_cell_then_a_course_folder_runs(installed, tmp_path):
    wheel, venv, env = installed
    names = zipfile.ZipFile(wheel).namelist()
    prefix = f"course_lib/{SHIPPED_DIR}/"
    assert sorted(n[len(prefix) :] for n in names if n.startswith(prefix)) == shipped_files()
    assert {n.split("/")[0] for n in names} == {"course_lib", f"course_lib-{course_lib.__version__}.dist-info"}

    # (1) A notebook alone on a bare kernel (as Colab opens it): its setup cell installs the local wheel.
    bare = tmp_path / "bare"
    bare.mkdir()
    notebook = bare / "00_welcome.ipynb"
    notebook.write_bytes((CHECKOUT / "notebooks" / "00_welcome.ipynb").read_bytes())
    started = time.perf_counter()
    # --ignore-installed: pip would otherwise take this machine's own course-lib (hidden above) as already there.
    nb = _execute(notebook, {**env, "COURSE_LIB_INSTALL": f"--no-deps --ignore-installed {wheel}"})
    printed = _outputs(nb)
    assert f"from {venv}" in printed, printed[:2000]  # the setup cell's first line: which course_lib it uses
    assert "device: cpu" in printed and "fast mode (COURSE_LIB_FAST): on" in printed
    print(f"bare kernel: installed and ran 00_welcome in {time.perf_counter() - started:.1f} s")

    # (2) `course-lib notebooks` in an empty folder outside the checkout.
    home = tmp_path / "home"
    home.mkdir()
    listing = _run(["course-lib", "notebooks", "gan-course"], home, env).stdout
    course = home / "gan-course"
    assert "0 already current" in listing and (course / "notebooks" / "04_wgan_toy.ipynb").is_file()
    assert (course / "configs" / "mnist_improvements.yaml").is_file()
    assert (course / "docs" / "results" / "notebook_times" / "report.md").is_file()
    assert not list((course / "notebooks").glob("*.py"))  # no conftest or scripts of the checkout

    # every relative link of every notebook resolves inside the course folder
    for path in sorted((course / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            for target in re.findall(r"\]\((\.\./[^)#\s]+)", cell.source):
                assert (path.parent / target).exists(), f"{path.name} links {target}, missing in the course folder"

    # (3) one notebook top to bottom from the course folder (it reads a shipped report through course_lib)
    started = time.perf_counter()
    nb = _execute(course / "notebooks" / "04_wgan_toy.ipynb", env)
    shown = [out.get("data", {}).get("text/markdown", "") for cell in nb.cells for out in cell.get("outputs", [])]
    report = (CHECKOUT / "docs" / "results" / "wgan_toy_coverage" / "report.md").read_text()
    assert report in shown, "04 did not show the shipped coverage report"
    print(f"04_wgan_toy from the course folder: {time.perf_counter() - started:.1f} s")

    # (4) the student changed a notebook (it was executed): a second run keeps it and says so; --force overwrites
    again = _run(["course-lib", "notebooks", "gan-course"], home, env).stdout
    assert "kept 1 file(s) you changed (1 notebook(s))" in again and "notebooks/04_wgan_toy.ipynb" in again
    executed = (course / "notebooks" / "04_wgan_toy.ipynb").read_text()
    assert json.loads(executed)["cells"] and executed != (CHECKOUT / "notebooks" / "04_wgan_toy.ipynb").read_text()

    # (5) README's main job from the course folder (its first steps: the command, the embedded data, the files)
    started = time.perf_counter()
    _run(["course-lib", "train", "--dataset", "mnist", "--out", "runs/mnist", "--steps", "4"], course, env)
    assert (course / "runs" / "mnist" / "checkpoints" / "last.pt").is_file()
    print(f"main job, 4 steps: {time.perf_counter() - started:.1f} s")

    # (6) the developer-only command says what it is and fails with exit code 2
    refused = subprocess.run(["course-lib", "student-edition"], cwd=course, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "developer command" in refused.stderr


def _levels_climbed(line: str) -> int:
    """How many folders up from its own file a line of code goes (`Path(__file__).resolve().parents[2]`: 3)."""
    tail = line.split("__file__", 1)[1]
    levels = len(re.findall(r"\.parent\b(?!s)", tail))
    levels += sum(int(k) + 1 for k in re.findall(r"\.parents\[(\d+)\]", tail))
    return levels


def test_no_library_module_refers_to_the_checkout():
    """Nothing in course_lib climbs out of the package to the source tree (the only exception: the documented
    fallback of `course_lib.core.resources`, where an editable install's course files are the source tree's own),
    names the old REPO_ROOT or reads a `../` path. The developer-only `student-edition` finds its checkout from the
    working directory (`cli/editions.py`), not from the package."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        depth = len(path.relative_to(PACKAGE).parts)  # course_lib/x.py: 1; course_lib/core/x.py: 2
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            escapes = "__file__" in line and _levels_climbed(line) > depth
            if escapes or "REPO_ROOT" in line or re.search(r"[\"']\.\./", line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "library code reaching into the checkout:\n" + "\n".join(offenders)
    # ... and no notebook's code reads a path outside its folder: configs and reports come through course_lib
    for folder in ("notebooks", "solutions"):
        for path in sorted((CHECKOUT / folder).glob("*.ipynb")):
            for cell in nbformat.read(str(path), as_version=4).cells:
                if cell.cell_type == "code":
                    assert "../" not in cell.source and "course_lib.__file__" not in cell.source, (
                        path.name,
                        cell.source,
                    )


def test_course_folder_keeps_what_the_student_changed_updates_the_rest_and_force_overwrites(tmp_path, capsys):
    from course_lib.cli import main
    from course_lib.cli.course_folder import MANIFEST, write_course_folder

    dest = tmp_path / "gan-course"
    first = write_course_folder(dest)
    assert first["kept"] == [] and "notebooks/01_toy_gan_1d.ipynb" in first["written"]
    assert (dest / MANIFEST).is_file() and (dest / "configs" / "mnist_improvements.yaml").is_file()
    mine = dest / "notebooks" / "01_toy_gan_1d.ipynb"
    mine.write_text(mine.read_text().replace("A GAN in one dimension", "My own notes"))
    shipped_report = dest / "docs" / "results" / "notebook_times" / "report.md"
    shipped_report.write_text("an older version course_lib wrote\n")  # as if from an older course_lib ...
    manifest = json.loads((dest / MANIFEST).read_text())
    manifest["files"]["docs/results/notebook_times/report.md"] = hashlib.sha256(shipped_report.read_bytes()).hexdigest()
    (dest / MANIFEST).write_text(json.dumps(manifest))  # ... whose manifest recorded that text: not the student's

    assert main(["notebooks", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "kept 1 file(s) you changed (1 notebook(s))" in out and "notebooks/01_toy_gan_1d.ipynb" in out
    assert "My own notes" in mine.read_text()
    assert shipped_report.read_text() == (CHECKOUT / "docs" / "results" / "notebook_times" / "report.md").read_text()

    assert main(["notebooks", str(dest), "--force"]) == 0 and "My own notes" not in mine.read_text()
    instructor = write_course_folder(tmp_path / "teacher", edition="instructor")
    assert "### BEGIN SOLUTION" in (tmp_path / "teacher" / "notebooks" / "01_toy_gan_1d.ipynb").read_text()
    assert "notebooks/00_welcome.ipynb" in instructor["written"]  # the student-only notebooks come too

    (tmp_path / "a-file").write_text("")
    assert main(["notebooks", str(tmp_path / "a-file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_the_head_of_every_notebook_has_the_setup_cell_and_a_badge_once_a_repository_is_named(tmp_path):
    from course_lib.cli.editions import (
        BADGE_ID,
        SETUP_ID,
        _repository_for,
        github_repository,
        install_source,
        with_head,
    )

    # what the committed notebooks have now: pyproject.toml names no repository, so a setup cell and no badge
    for folder in ("notebooks", "solutions"):
        for path in sorted((CHECKOUT / folder).glob("*.ipynb")):
            cells = nbformat.read(str(path), as_version=4).cells
            first_code = next(c for c in cells if c.cell_type == "code")
            assert first_code.get("id") == SETUP_ID and "print_setup()" in first_code.source, path.name
            assert not any(c.get("id") == BADGE_ID for c in cells), path.name

    assert github_repository({"urls": {"Homepage": "https://example.org"}}) is None
    repository = github_repository({"urls": {"Repository": "https://github.com/gan-course/course_lib/tree/spring"}})
    assert repository == ("gan-course/course_lib", "spring")
    assert install_source(repository) == "course-lib @ git+https://github.com/gan-course/course_lib@spring"
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "course-lib"\n[project.urls]\nRepository = "https://github.com/gan-course/course_lib"\n'
    )
    (tmp_path / "notebooks").mkdir()
    assert _repository_for(tmp_path / "notebooks") == ("gan-course/course_lib", "main")

    lesson = nbformat.v4.new_notebook()
    lesson.cells = [nbformat.v4.new_markdown_cell("# A lesson"), nbformat.v4.new_code_cell("x = 1")]
    headed = with_head(lesson, ("gan-course/course_lib", "main"), "notebooks/01_lesson.ipynb")
    assert [c.get("id") for c in headed.cells[:3]] == [BADGE_ID, headed.cells[1].get("id"), SETUP_ID]
    assert (
        "https://colab.research.google.com/github/gan-course/course_lib/blob/main/notebooks/01_lesson.ipynb"
        in headed.cells[0].source
    )
    assert (
        '"COURSE_LIB_INSTALL", "course-lib @ git+https://github.com/gan-course/course_lib@main"'
        in headed.cells[2].source
    )
    assert with_head(headed, ("gan-course/course_lib", "main"), "notebooks/01_lesson.ipynb") == headed  # idempotent
    assert [c.get("id") for c in with_head(headed, None, "x").cells].count(BADGE_ID) == 0  # URL removed: no badge
