"""The course as a student meets it in a real browser: JupyterLab on 127.0.0.1, driven by headless Chromium (Selenium).

One JupyterLab server for the module serves a course folder laid out by `course-lib notebooks` (student edition,
fast mode) from its root, as README says to start it, and the notebooks are opened from its `notebooks/`:
- the walkthrough (00, 01, 03, 07, 09): "Run all" reaches the end with no error output, every image in the
  notebook loads (none broken, no 404 in the server's log), and, after a kernel restart, a check cell run alone
  prints NOT DONE YET (or RIGHT) and no traceback;
- notebook 10's sliders: a keypress on a slider's handle reaches the kernel, the status line says "computing ..."
  while the new image is drawn, and the image the browser shows changes; after a kernel restart the note that the
  kernel is gone (`latent.widgets.KERNEL_GONE_NOTE`) becomes visible in the control, hidden before.
The unit tests (tests/test_widgets.py) call the widgets' Python callbacks directly. It needs Debian's `chromium` and
`chromium-driver` (apt) and `selenium` (the dev extras); without them it skips, saying which is missing. Nothing is
downloaded: Selenium is given the driver's path, so Selenium Manager never runs.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from course_lib.cli.course_folder import write_course_folder
from course_lib.course.exercises import RESTART_ADVICE
from course_lib.latent.widgets import IDLE_STATUS, KERNEL_GONE_CLASS, KERNEL_GONE_NOTE

SLIDERS = "notebooks/10_truncation_and_interpolation.ipynb"
# The walkthrough's notebooks, as paths inside the course folder.
WALKTHROUGH = [
    "notebooks/00_welcome.ipynb",
    "notebooks/01_toy_gan_1d.ipynb",
    "notebooks/03_wasserstein_distance.ipynb",
    "notebooks/07_evaluation.ipynb",
    "notebooks/09_dcgan_celeba.ipynb",
]
# Bounded waits, generous because CI machines are shared: each fails the test with what it was waiting for.
SERVER_START_S = 300  # JupyterLab answering /api/status
APP_READY_S = 300  # the JupyterLab page loaded, the notebook open and its kernel idle
CELL_STALL_S = 600  # running all cells: the longest wait for the next cell to finish (fast mode: seconds each)
RUN_ALL_S = 1800  # ... and for all of them
REDRAW_S = 120  # one slider move drawn (0.1-0.3 s of compute on an idle laptop)
RESTART_S = 120  # a kernel restarted and idle again, or one cell run after it


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or skip saying what is missing and how to install it."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or next(
        (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.access(p, os.X_OK)), None
    )
    if chromium is None:
        missing.append("chromium (apt-get install chromium)")
    if driver is None:
        missing.append("chromedriver (apt-get install chromium-driver)")
    if missing:
        pytest.skip("browser test needs " + ", ".join(missing))
    return chromium, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Server extensions a student's JupyterLab does not need: nbgrader's (the instructor's tools, absent from the student
# install) take half a minute to import on a busy 2-core machine; language servers and terminals are unused here.
UNUSED_SERVER_EXTENSIONS = [
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "notebook",
]
UNUSED_LAB_EXTENSIONS = ["@jupyter/nbgrader", "@jupyter-notebook/lab-extension"]


def write_lab_config(config_dir: Path, settings_dir: Path) -> None:
    """A private configuration: the student's set of extensions; no news prompt; every cell in the page."""
    config_dir.mkdir(parents=True)
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {name: False for name in UNUSED_SERVER_EXTENSIONS}}})
    )
    (config_dir / "labconfig").mkdir()
    (config_dir / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in UNUSED_LAB_EXTENSIONS}})
    )
    for plugin, values in {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


class Lab:
    """A running JupyterLab: its base URL, token and log file."""

    def __init__(self, url: str, token: str, log_path: Path):
        self.url, self.token, self.log_path = url, token, log_path

    def lab_url(self) -> str:
        return f"{self.url}/lab?token={self.token}"

    def not_found(self) -> list[str]:
        """The files the server answered 404 (its log lines): an image or link the notebook's page asked for that is
        not in the course folder, e.g. one that points above it. (Other 404s, such as the disabled language server's
        /lsp/status, are not the course's.)"""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if " 404 GET /files/" in line]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    """One JupyterLab server for the module, on a free 127.0.0.1 port, its root a course folder as a student gets it
    (`course-lib notebooks DEST`, then `jupyter lab DEST`: README's way); killed at the end."""
    find_browser()  # skip before starting a server when there is no browser to drive it
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "gan-course"
    write_course_folder(root)  # copies: the browser may autosave, never into the committed files
    write_lab_config(tmp_path / "config", tmp_path / "settings")
    port, token = free_port(), uuid.uuid4().hex
    as_root = getattr(os, "geteuid", lambda: 1)() == 0  # JupyterLab refuses to run as root without --allow-root
    env = dict(
        os.environ,
        COURSE_LIB_FAST="1",  # the kernel inherits the server's environment
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),  # e.g. the notebook-signing key; system kernels still found
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        COURSE_LIB_RUNS=str(tmp_path / "runs"),  # notebook 09 hands its run to 10 there: not the user's folder
    )
    log_path = tmp_path / "jupyterlab.log"
    log = open(log_path, "wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            *(["--allow-root"] if as_root else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def stop():
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # its own process group: the kernels go too
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=15)
        log.close()

    request.addfinalizer(stop)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as answer:
                if answer.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.25)  # polling interval of a bounded wait
    return Lab(url, token, log_path)


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory, request):
    """One headless Chromium for the module, on the JupyterLab page (opened once: each notebook opens in it)."""
    chromium, driver_path = find_browser()
    tmp_path = tmp_path_factory.mktemp("chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1400,1000",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # An explicit driver path: Selenium skips Selenium Manager, which would otherwise look for or fetch a driver.
    driver = webdriver.Chrome(
        service=Service(executable_path=driver_path, log_output=str(tmp_path / "driver.log")), options=options
    )
    request.addfinalizer(driver.quit)
    driver.get(lab.lab_url())
    # Commands such as docmanager:open work only once the application has started and restored its layout.
    wait(driver, APP_READY_S, lambda d: d.execute_script("return !!window.jupyterapp"), "JupyterLab's page to load")
    driver.set_script_timeout(APP_READY_S)
    driver.execute_async_script("window.jupyterapp.restored.then(() => arguments[arguments.length - 1](true))")
    return driver


# JavaScript run in the page: JupyterLab's application object (exposed by --LabApp.expose_app_in_browser). Each
# snippet finds its notebook panel by its path (arguments[0]), so a check never reads another open notebook.
FIND_PANEL_JS = """
const app = window.jupyterapp;
let panel = null;
if (app) { for (const w of app.shell.widgets('main')) { if (w.context && w.context.path === arguments[0]) panel = w; } }
"""
OPEN_JS = "window.jupyterapp.commands.execute('docmanager:open', {path: arguments[0], factory: 'Notebook'});"
NOTEBOOK_READY_JS = (
    FIND_PANEL_JS
    + """
if (!panel || !panel.sessionContext || !panel.context || !panel.context.isReady) return false;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return !!kernel && kernel.status === 'idle';
"""
)
CELLS_JS = (
    FIND_PANEL_JS
    + """
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = [];
for (const cell of panel.content.model.cells) {
  const json = cell.toJSON();
  const text = o => o.output_type === 'stream' ? [].concat(o.text).join('')
                  : (o.data && o.data['text/plain'] ? [].concat(o.data['text/plain']).join('') : '');
  cells.push({type: json.cell_type, source: Array.isArray(json.source) ? json.source.join('') : json.source,
              count: json.execution_count === undefined ? null : json.execution_count,
              errors: (json.outputs || []).filter(o => o.output_type === 'error')
                                          .map(o => o.ename + ': ' + o.evalue),
              text: (json.outputs || []).map(text).join('')});
}
return {kernel: kernel ? kernel.status : 'none', cells: cells};
"""
)
RUN_ALL_JS = (
    FIND_PANEL_JS
    + """
window.jupyterapp.shell.activateById(panel.id);
window.jupyterapp.commands.execute('notebook:run-all-cells');
"""
)
RUN_CELL_JS = (
    FIND_PANEL_JS
    + """
window.jupyterapp.shell.activateById(panel.id);
panel.content.activeCellIndex = arguments[1];
window.jupyterapp.commands.execute('notebook:run-cell');
"""
)
# A restart as the Kernel menu does it, without its confirmation dialog.
RESTART_JS = FIND_PANEL_JS + "panel.sessionContext.restartKernel();"
# Done with a notebook: its kernel shut down (it would hold memory and CPU) and its tab closed without a save prompt.
CLOSE_JS = (
    FIND_PANEL_JS
    + """
const done = arguments[arguments.length - 1];
panel.sessionContext.shutdown().then(() => { panel.context.model.dirty = false; panel.dispose(); done(true); },
                                     e => done(String(e)));
"""
)
PANEL_NODE_JS = FIND_PANEL_JS + "return panel.node;"
# Images in the notebook's page that have not loaded (broken, or not loaded yet), by their src.
UNLOADED_IMAGES_JS = """
return Array.from(arguments[0].querySelectorAll('img'))
            .filter(im => !(im.complete && im.naturalWidth > 0)).map(im => im.getAttribute('src') || '');
"""
# Records every text the element shows, including ones replaced within the same task (MutationObserver).
WATCH_TEXT_JS = """
const el = arguments[0];
el.__seen = [];
new MutationObserver(records => {
  for (const r of records) {
    for (const n of r.addedNodes) el.__seen.push(n.textContent);
    if (r.type === 'characterData') el.__seen.push(r.target.textContent);
  }
}).observe(el, {childList: true, characterData: true, subtree: true});
"""


def wait(driver, seconds, condition, what):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25).until(condition)
    except TimeoutException:
        pytest.fail(f"timed out after {seconds} s waiting for {what}")


def open_notebook(driver, path: str) -> None:
    """Open a notebook of the course folder in the page's JupyterLab and wait until its kernel is idle."""
    driver.execute_script(OPEN_JS, path)
    wait(driver, APP_READY_S, lambda d: d.execute_script(NOTEBOOK_READY_JS, path), f"JupyterLab to open {path}")


def close_notebook(driver, path: str) -> None:
    closed = driver.execute_async_script(CLOSE_JS, path)
    assert closed is True, f"closing {path} failed: {closed}"


def code_cells(cells: list[dict]) -> list[dict]:
    return [c for c in cells if c["type"] == "code" and c["source"].strip()]


def run_all_cells(driver, path: str) -> list[dict]:
    """Run every cell through JupyterLab's own command; wait until each code cell has run; fail on an error output.

    The wait is bounded twice: no cell may take longer than CELL_STALL_S, and all of them not longer than RUN_ALL_S.
    """
    driver.execute_script(RUN_ALL_JS, path)
    progress = {"done": -1, "since": time.monotonic()}

    def finished(d):
        state = d.execute_script(CELLS_JS, path)
        code = code_cells(state["cells"])
        errors = [e for c in code for e in c["errors"]]
        if errors:
            pytest.fail(f"{path} raised in JupyterLab: " + "; ".join(errors))
        done = sum(c["count"] is not None for c in code)
        if done != progress["done"]:
            progress.update(done=done, since=time.monotonic())
        elif time.monotonic() - progress["since"] > CELL_STALL_S:
            pytest.fail(
                f"{path} stalled in JupyterLab: {done} of {len(code)} code cells ran, "
                f"then nothing for {CELL_STALL_S} s (kernel {state['kernel']})"
            )
        return state["cells"] if state["kernel"] == "idle" and done == len(code) else False

    return wait(driver, RUN_ALL_S, finished, f"{path} to run all its cells")


def restart_kernel(driver, path: str) -> None:
    driver.execute_script(RESTART_JS, path)
    time.sleep(1)  # the restart's 'restarting' status first; then wait for idle on the new kernel
    wait(driver, RESTART_S, lambda d: d.execute_script(NOTEBOOK_READY_JS, path), f"{path}'s kernel to restart")


def run_one_cell(driver, path: str, index: int) -> dict:
    """Run cell `index` alone (on a kernel just restarted: its execution count becomes 1) and return it when done."""
    driver.execute_script(RUN_CELL_JS, path, index)

    def done(d):
        state = d.execute_script(CELLS_JS, path)
        cell = state["cells"][index]
        return cell if state["kernel"] == "idle" and cell["count"] == 1 else False

    return wait(driver, RESTART_S, done, f"cell {index} of {path} to run after the restart")


def assert_images_load(driver, lab, path: str) -> None:
    """Every image in the notebook's page loads (scrolled into view first: a lazy image loads only when seen)."""
    node = driver.execute_script(PANEL_NODE_JS, path)
    for image in node.find_elements("css selector", "img"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    deadline = time.monotonic() + REDRAW_S
    while (unloaded := driver.execute_script(UNLOADED_IMAGES_JS, node)) and time.monotonic() < deadline:
        time.sleep(0.25)  # polling interval of a bounded wait: images still loading
    assert not unloaded, f"{path}: images that do not load in JupyterLab: {unloaded}"
    missing = lab.not_found()
    assert not missing, f"{path}: the server answered 404 (a link outside the course folder?): {missing}"


@pytest.mark.parametrize("path", WALKTHROUGH)
def test_a_student_runs_the_notebook_in_jupyterlab(lab, browser, path):
    """Run all from the course folder; no error, every image loads; after a restart, a check cell alone answers."""
    open_notebook(browser, path)
    try:
        cells = run_all_cells(browser, path)
        assert_images_load(browser, lab, path)
        checks = [i for i, c in enumerate(cells) if c["type"] == "code" and 'check("' in c["source"]]
        if checks:
            restart_kernel(browser, path)
            cell = run_one_cell(browser, path, checks[0])
            assert not cell["errors"], f"{path}: the check cell alone after a restart raised: {cell['errors']}"
            assert "NOT DONE YET" in cell["text"] and RESTART_ADVICE in cell["text"], (
                f"{path}: the check cell alone after a restart should say NOT DONE YET and what to run; "
                f"it printed {cell['text']!r}"
            )
    finally:
        close_notebook(browser, path)


def cell_node(driver, path: str, cells: list[dict], needle: str):
    """The DOM node of the one cell whose source contains `needle`."""
    index = [i for i, c in enumerate(cells) if needle in c["source"]]
    assert len(index) == 1, f"expected one cell with {needle!r} in {path}, found {len(index)}"
    return driver.execute_script(FIND_PANEL_JS + "return panel.content.widgets[arguments[1]].node;", path, index[0])


def control_parts(driver, cell):
    """The slider handle, its readout, the image and the status line inside one widget cell's output."""
    from selenium.webdriver.common.by import By

    def found(_):
        handles = cell.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
        images = [
            im
            for im in cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea img")
            if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", im)
        ]
        status = [el for el in cell.find_elements(By.CSS_SELECTOR, ".widget-label") if el.text == IDLE_STATUS]
        return (handles, images, status) if handles and images and status else False

    handles, images, status = wait(driver, APP_READY_S, found, "a slider, its image and status line to render")
    readout = cell.find_element(By.CSS_SELECTOR, ".widget-slider .widget-readout")
    return handles[0], readout, images[0], status[0]


def pixels(driver, image) -> bytes:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    return image.screenshot_as_png


def press_and_wait_for_redraw(driver, cell, key, expected_readout: str, computing: str) -> None:
    """Focus the slider's handle, press `key`, wait until the shown image changes; check what the status line said."""
    from selenium.webdriver.common.action_chains import ActionChains

    handle, readout, image, status = control_parts(driver, cell)
    before_src, before = image.get_attribute("src"), pixels(driver, image)
    driver.execute_script(WATCH_TEXT_JS, status)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus()", handle)
    ActionChains(driver).send_keys(key).perform()
    wait(
        driver,
        REDRAW_S,
        lambda _: readout.text == expected_readout,
        f"the slider's readout to show {expected_readout} (it shows {readout.text!r})",
    )
    wait(
        driver,
        REDRAW_S,
        lambda _: image.get_attribute("src") != before_src and pixels(driver, image) != before,
        f"the image to change after moving the slider to {expected_readout}",
    )
    seen = wait(
        driver,
        REDRAW_S,
        lambda d: (lambda s: s if s and s[-1] == IDLE_STATUS else False)(
            d.execute_script("return arguments[0].__seen", status)
        ),
        "the status line to return to idle",
    )
    assert computing in seen, f"the status line never said {computing!r} during the redraw; it showed {seen}"


def test_notebook_10_sliders_redraw_in_jupyterlab_and_say_when_their_kernel_is_gone(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_notebook(browser, SLIDERS)
    try:
        cells = run_all_cells(browser, SLIDERS)

        truncation = cell_node(browser, SLIDERS, cells, 'mode="tau"')
        press_and_wait_for_redraw(browser, truncation, Keys.HOME, "0.05", "computing tau = 0.05 ...")

        interpolation = cell_node(browser, SLIDERS, cells, "interpolation_widget(slider_gen")
        press_and_wait_for_redraw(browser, interpolation, Keys.END, "1.00", "computing t = 1.00 (slerp) ...")

        # The button's label is whole: its text fits the button (the default width cut it off with an ellipsis).
        button = [
            b
            for b in interpolation.find_elements(By.CSS_SELECTOR, "button.widget-button")
            if b.text == "new random endpoints"
        ]
        assert len(button) == 1, "the interpolation control has no 'new random endpoints' button"
        width, needed = browser.execute_script("return [arguments[0].clientWidth, arguments[0].scrollWidth]", button[0])
        assert needed <= width, f"the button's label is cut off: it needs {needed} px and has {width} px"

        # While the kernel runs, each control's note is there but hidden; after a restart it shows, in words.
        controls = [i for i, c in enumerate(cells) if c["type"] == "code" and "_widget(" in c["source"]]
        panel = browser.execute_script(PANEL_NODE_JS, SLIDERS)
        notes = panel.find_elements(By.CSS_SELECTOR, f".{KERNEL_GONE_CLASS}")
        assert len(notes) >= 4 and len(notes) <= len(controls), (
            f"each control should carry one note: {len(notes)} notes for {len(controls)} cells that build controls"
        )
        assert not any(note.is_displayed() for note in notes), "the kernel-gone note shows while the kernel runs"
        restart_kernel(browser, SLIDERS)
        for note in notes:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", note)
            wait(browser, RESTART_S, lambda _, note=note: note.is_displayed(), "the kernel-gone note to show")
            assert note.text == KERNEL_GONE_NOTE
    finally:
        close_notebook(browser, SLIDERS)
