"""`course-lib site OUT`: the course as a static web site (Sphinx + myst-nb + sphinx-book-theme).

Why Sphinx + myst-nb rather than Jupyter Book: Jupyter Book 1 is this same stack behind a YAML front end, and
Jupyter Book 2 is built on mystmd, which needs a Node.js runtime besides pip; calling Sphinx directly keeps the
build one Python command whose configuration (`conf.py`, written below) is plain to read, installable from the
`site` extra alone, and gives the API reference from the docstrings through Sphinx's autodoc.

The site has, in notebook order, one chapter per notebook of the chosen edition (the notebooks are executed in
fast mode, each once: myst-nb's jupyter-cache keeps the outputs in ``cache_dir()/site/`` until the notebook
changes; ``--execute off`` renders them without outputs), the measured reports of ``docs/results/`` (the chapters'
links to them lead to these pages) and the API reference of course_lib. The student edition is built from the
student notebooks, so no solution text reaches it; the instructor edition shows each solution cell collapsed
(myst-nb's ``hide-input`` tag). Sources come from the files course_lib ships (`course_lib.core.resources`), so an
installed course_lib builds the same site as a checkout. Sphinx, myst-nb and the theme are in the ``site`` extra.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from course_lib.cli.course_folder import EDITIONS, course_contents
from course_lib.core.errors import ConfigError
from course_lib.core.runtime import FAST_ENV, cache_dir

SOLUTION_TAG = "hide-input"  # myst-nb: the cell's code collapsed behind a "show" toggle
# Python packages of the API reference: every subpackage, in layer order (tests/test_layers.py).
API_PACKAGES = ["core", "data", "nn", "metrics", "training", "experiment", "latent", "course", "grading", "cli"]

CONF_PY = """# Written by `course-lib site` (course_lib/cli/site.py); rewritten on every build.
project = "course_lib: a notebook course on GANs"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
html_theme = "sphinx_book_theme"
html_title = "GANs, step by step ({edition} edition)"
html_theme_options = {{"show_toc_level": 2, "use_download_button": True}}
# An explicit light/dark default: with none, the theme logs an error on a reader's first visit.
html_context = {{"default_mode": "auto"}}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = {execution_mode!r}
nb_execution_cache_path = {cache_path!r}
nb_execution_excludepatterns = {exclude!r}
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
# Widgets render as their text form: the widget manager would be fetched from a CDN at page load.
nb_ipywidgets_js = {{}}
autodoc_default_options = {{"members": True, "undoc-members": False}}
autodoc_member_order = "bysource"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
suppress_warnings = ["myst.header", "myst.xref_missing", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
{mathjax}
"""


FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2a6f97"/>'
    '<text x="8" y="12" font-size="11" text-anchor="middle" fill="#fff" font-family="sans-serif">G</text></svg>'
)


def _offline_mathjax() -> bool:
    """True when the `sphinx-mathjax-offline` extension (MathJax 3, copied into the site) is installed, so pages
    render math without fetching MathJax from a CDN; without it they use the CDN."""
    import importlib.util

    return importlib.util.find_spec("sphinx-mathjax-offline") is not None  # its module name has dashes


def _chapter_title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _prepare_notebook(path: Path, edition: str):
    nb = nbformat.read(str(path), as_version=4)
    if edition == "instructor":
        for cell in nb.cells:
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                tags = cell.metadata.setdefault("tags", [])
                if SOLUTION_TAG not in tags:
                    tags.append(SOLUTION_TAG)
    return nb


def write_sources(source: Path, edition: str, execute: str, only: str | None, api: bool = True) -> dict:
    """Write the Sphinx project (conf.py, index, chapters, reports, API pages) into `source`; returns counts."""
    contents = course_contents(edition)
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    chapters, reports = [], []
    for rel, shipped in contents.items():
        target = source / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".ipynb"):
            nbformat.write(_prepare_notebook(shipped, edition), str(target))
            chapters.append(rel)
        else:
            shutil.copyfile(shipped, target)
            if rel.startswith("docs/results/") and rel.endswith(".md"):
                reports.append(rel)  # each report.md, and the few pages beside one (e.g. a sweep's own table)
    if not chapters:
        raise ConfigError("no notebooks to build a site from")
    api_pages = []
    for package in API_PACKAGES if api else []:
        modules = _modules_of(package)
        lines = [f"# `course_lib.{package}`", "", "```{eval-rst}"]
        for module in modules:
            lines += [f".. automodule:: {module}", ""]
        lines.append("```")
        (source / "api").mkdir(exist_ok=True)
        (source / "api" / f"{package}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        api_pages.append(f"api/{package}")

    def toctree(caption: str, entries: list[str]) -> list[str]:
        return ["```{toctree}", ":maxdepth: 1", f":caption: {caption}", "", *entries, "```", ""]

    index = [
        "# GANs, step by step",
        "",
        f"The {edition} edition of the course_lib notebook course: from a one-parameter toy GAN to a DCGAN that",
        "draws faces, with the measured reports the chapters cite and the API reference of `course_lib`.",
        "Run it yourself: `pip install` the course, then `course-lib notebooks` writes these notebooks into a folder.",
        "",
        *toctree("Chapters", [c.removesuffix(".ipynb") for c in chapters]),
        *toctree("Measured reports", [r.removesuffix(".md") for r in sorted(reports)]),
        *(toctree("API reference", api_pages) if api_pages else []),
    ]
    (source / "index.md").write_text("\n".join(index), encoding="utf-8")

    exclude = []
    if only:
        exclude = [c for c in chapters if not Path(c).match(only)]
    # A favicon of our own: without one the browser asks the server for /favicon.ico, a 404 on most hosts.
    (source / "_static").mkdir(exist_ok=True)
    (source / "_static" / "favicon.svg").write_text(FAVICON_SVG, encoding="utf-8")
    mathjax = 'extensions.append("sphinx-mathjax-offline")' if _offline_mathjax() else ""
    cache_path = str(cache_dir() / "site" / "jupyter_cache")
    (source / "conf.py").write_text(
        CONF_PY.format(
            edition=edition,
            execution_mode="off" if execute == "off" else "cache",
            cache_path=cache_path,
            exclude=exclude,
            mathjax=mathjax,
        ),
        encoding="utf-8",
    )
    return {
        "chapters": len(chapters),
        "reports": sum(r.endswith("/report.md") for r in reports),
        "api_pages": len(api_pages),
    }


def _modules_of(package: str) -> list[str]:
    import importlib

    root = Path(importlib.import_module(f"course_lib.{package}").__file__).resolve().parent
    modules = [f"course_lib.{package}"]
    for path in sorted(root.rglob("*.py")):
        if path.name == "__init__.py" or path.name.startswith("_"):
            continue
        modules.append("course_lib." + ".".join(path.relative_to(root.parent).with_suffix("").parts))
    return modules


def build_site(
    out: str | Path, edition: str = "student", execute: str = "fast", only: str | None = None, api: bool = True
) -> dict:
    """Build the site into `out` (out/index.html); returns counts, the page count and the build's seconds."""
    try:
        import myst_nb  # noqa: F401  (optional: the `site` extra)
        import sphinx_book_theme  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"building the site needs Sphinx, myst-nb and sphinx-book-theme ({exc.name} is missing): "
            'pip install "course-lib[site]"'
        ) from exc
    if edition not in EDITIONS:
        raise ConfigError(f"unknown edition {edition!r}: use one of {', '.join(EDITIONS)}")
    out = Path(out).expanduser().resolve()
    work = cache_dir() / "site" / edition
    source, doctrees = work / "source", work / "doctrees"
    start = time.perf_counter()
    counts = write_sources(source, edition, execute, only, api)
    env = {**os.environ, FAST_ENV: "1"}  # the notebooks' kernels inherit it: every chapter runs in seconds
    # -j auto: pages are read (and notebooks executed) in parallel, one process per core
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-q",
        "-j",
        "auto",
        "-d",
        str(doctrees),
        str(source),
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise ConfigError(f"the site build failed (sphinx exit {done.returncode}):\n{tail}")
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html") if not p.name.startswith("_"))
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    return {**counts, "pages": len(pages), "seconds": time.perf_counter() - start, "warnings": warnings, "out": out}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "site",
        help="build the course as a static web site (Sphinx + myst-nb)",
        description="Build the course as a static site in OUT: the notebooks as chapters (executed in fast mode, "
        "outputs cached until a notebook changes), the measured reports they cite and the API reference. "
        "Needs the site extra: pip install 'course-lib[site]'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("out", type=Path, help="folder for the site (OUT/index.html)")
    parser.add_argument("--edition", choices=EDITIONS, default="student", help="student: no solutions in it")
    parser.add_argument("--execute", choices=("fast", "off"), default="fast", help="run the notebooks or not")
    parser.add_argument("--only", default=None, metavar="GLOB", help="run only the notebooks matching GLOB")
    parser.add_argument("--no-api", action="store_true", help="leave out the API reference (a quicker preview)")
    parser.set_defaults(func=run)


def run(args) -> int:
    result = build_site(args.out, args.edition, args.execute, args.only, api=not args.no_api)
    print(
        f"{result['out']}/index.html: {result['pages']} pages ({result['chapters']} chapters, {result['reports']} "
        f"reports, {result['api_pages']} API pages), {args.edition} edition, built in {result['seconds']:.0f} s"
    )
    if result["warnings"]:
        print(f"{len(result['warnings'])} Sphinx warning(s); the first:")
        for line in result["warnings"][:5]:
            print(f"  {line}")
    return 0
