"""The course site (`course-lib site`), built and opened in headless Chromium as a reader meets it.

The student build is the full site (chapters, reports, API reference) with one chapter executed in fast mode
(03: its figures and printed results must be on the page; executing all fifteen is `course-lib site`'s default,
minutes in CI); the instructor build leaves out the API reference and execution (what differs between the
editions is the chapters). Pages are served over HTTP on 127.0.0.1; Chromium is Debian's, driven by Selenium
with an explicit driver path (nothing is downloaded), as in tests/test_browser.py; without them the browser test
skips and says what is missing.
"""

from __future__ import annotations

import functools
import html
import http.server
import re
import shutil
import threading
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("myst_nb", reason="the site needs the `site` extra: pip install -e '.[dev]'")

from course_lib.cli.site import build_site  # noqa: E402
from course_lib.grading import markup  # noqa: E402

CHECKOUT = Path(__file__).resolve().parent.parent
EXECUTED = "03_wasserstein_distance"


def solution_lines() -> dict[str, set[str]]:
    """{notebook: the lines of its solution bodies that appear nowhere in its student edition}."""
    found = {}
    for path in sorted((CHECKOUT / "solutions").glob("*.ipynb")):
        student_text = (CHECKOUT / "notebooks" / path.name).read_text()
        lines = set()
        for cell in nbformat.read(str(path), as_version=4).cells:
            body = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", markup.source_of(cell), flags=re.S)
            for line in "".join(body).splitlines():
                line = line.strip()
                if len(line) >= 12 and not line.startswith("#") and nbformat_escape(line) not in student_text:
                    lines.add(line)
        found[path.stem] = lines
    return found


def nbformat_escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace('"', '\\"')


def page_text(path: Path) -> str:
    """A page's text as a reader (or the site's search) sees it: tags stripped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8", errors="replace")))


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_LIB_CACHE", str(root / "cache"))  # the build's sources and its notebook cache
        started = time.perf_counter()
        student = build_site(root / "student", "student", execute="fast", only=f"*{EXECUTED}*")
        print(f"student site: {student['pages']} pages in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        instructor = build_site(root / "instructor", "instructor", execute="off", api=False)
        print(
            f"instructor site (no API pages, not executed): {instructor['pages']} pages in {time.perf_counter() - started:.1f} s"
        )
    return student, instructor


def test_the_student_site_has_every_chapter_report_and_api_page_and_no_solution(sites):
    student, _ = sites
    out = student["out"]
    notebooks = sorted(p.stem for p in (CHECKOUT / "notebooks").glob("*.ipynb"))
    assert sorted(p.stem for p in (out / "notebooks").glob("*.html")) == notebooks
    reports = sorted(p.parent.name for p in (CHECKOUT / "docs" / "results").glob("*/report.md"))
    assert sorted(p.parent.name for p in (out / "docs" / "results").glob("*/report.html")) == reports
    assert student["api_pages"] == 10 and (out / "api" / "core.html").is_file()
    assert "course_lib.core.runtime.fast_mode" in (out / "api" / "core.html").read_text()  # from its docstring

    # the chapters come in notebook order on the index
    index = (out / "index.html").read_text()
    linked = re.findall(r'href="notebooks/([0-9]{2}_[\w]+)\.html"', index)
    assert list(dict.fromkeys(linked)) == notebooks

    # the executed chapter carries its figures and printed results
    chapter = (out / "notebooks" / f"{EXECUTED}.html").read_text()
    assert chapter.count("<img") >= 3 and "cell_output" in chapter

    # no solution body anywhere in the student build: pages, search index, copied sources
    everything = "\n".join(
        page_text(p) if p.suffix == ".html" else p.read_text(errors="replace")
        for p in out.rglob("*")
        if p.is_file() and p.suffix in {".html", ".js", ".ipynb", ".txt", ".md"} and "_static" not in p.parts
    )
    leaked = [(name, line) for name, lines in solution_lines().items() for line in lines if line in everything]
    assert not leaked, f"solution text in the student site: {leaked[:5]}"


def test_the_instructor_site_shows_each_solution_collapsed(sites):
    _, instructor = sites
    out = instructor["out"]
    lines = solution_lines()
    assert sum(len(v) for v in lines.values()) > 20  # the check above is not vacuous
    for path in sorted((CHECKOUT / "solutions").glob("*.ipynb")):
        solutions = [c for c in nbformat.read(str(path), as_version=4).cells if markup.kind_of(c).solution]
        page = (out / "notebooks" / f"{path.stem}.html").read_text()
        collapsed = re.findall(
            r'<div class="cell tag_hide-input[^"]*"[^>]*>\s*<details class="[^"]*\bhide above-input">', page
        )
        assert len(collapsed) == len(solutions), (path.name, len(collapsed), len(solutions))
        text = page_text(out / "notebooks" / f"{path.stem}.html")
        missing = [line for line in lines[path.stem] if line not in text]
        assert not missing, (path.name, missing[:3])


# --------------------------------------------------------------------------- in a browser
@pytest.fixture(scope="module")
def served(sites):
    """The student site over HTTP on 127.0.0.1 (a file:// page would not behave as a hosted one)."""
    handler = functools.partial(QuietHandler, directory=str(sites[0]["out"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    selenium = pytest.importorskip("selenium", reason="the browser check needs selenium (the dev extra)")
    if chromium is None or driver_path is None:
        pytest.skip("the browser check needs Debian's chromium and chromium-driver (apt-get install)")
    del selenium
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                 "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


BROKEN_IMAGES_JS = """
return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);
"""


def test_in_chromium_every_chapter_opens_from_the_index_with_its_images_and_no_console_errors(served, browser):
    browser.get(f"{served}/index.html")
    assert "GANs, step by step" in browser.title
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('.toctree-wrapper a.reference.internal')).map(a => a.href);"
    )
    chapters = [link for link in dict.fromkeys(links) if "/notebooks/" in link]
    assert len(chapters) == len(list((CHECKOUT / "notebooks").glob("*.ipynb")))
    problems = []
    for url in [f"{served}/index.html", *chapters, *[link for link in links if "/docs/results/" in link]]:
        browser.get(url)
        if browser.execute_script("return document.querySelector('main, article') === null"):
            problems.append(f"{url}: no page content (title {browser.title!r})")
        broken = browser.execute_script(BROKEN_IMAGES_JS)
        problems += [f"{url}: image does not load: {src}" for src in broken]
        problems += [
            f"{url}: console: {entry['message']}" for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
        ]
    assert not problems, "\n".join(problems)

    # the chapters' mathematics is typeset (MathJax, shipped with the site)
    browser.get(f"{served}/notebooks/02_gan_loss_and_divergences.html")
    for _ in range(100):
        typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
        if typeset:
            break
        time.sleep(0.1)
    assert typeset >= browser.execute_script("return document.querySelectorAll('span.math, div.math').length") > 0

    # the site's own search works and finds the chapters' words (the leak check above covers solutions)
    browser.get(f"{served}/search.html?q=Wasserstein")
    for _ in range(100):  # the search runs in the page after it loads
        hits = browser.execute_script("return document.querySelectorAll('#search-results li').length")
        if hits:
            break
        time.sleep(0.1)
    assert hits > 0
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
