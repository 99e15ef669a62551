"""Notebook 10's sliders in a real browser: JupyterLab on 127.0.0.1, driven by headless Chromium through Selenium.

The unit tests (tests/test_widgets.py) call the widgets' Python callbacks directly; this one checks the whole path a
student uses: the notebook runs top to bottom in JupyterLab (student edition, fast mode), a keypress on a slider's
handle reaches the kernel, the status line says "computing ..." while the new image is drawn, and the image the
browser shows changes. It needs Debian's `chromium` and `chromium-driver` (apt) and `selenium` (the dev extras);
without them it skips, saying which is missing. Nothing is downloaded: Selenium is given the driver's path, so
Selenium Manager never runs.
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

from course_lib.latent.widgets import IDLE_STATUS

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "10_truncation_and_interpolation.ipynb"
# Bounded waits, generous because CI machines are shared: each fails the test with what it was waiting for.
SERVER_START_S = 300  # JupyterLab answering /api/status
APP_READY_S = 300  # the JupyterLab page loaded, the notebook open and its kernel idle
CELL_STALL_S = 600  # running all cells: the longest wait for the next cell to finish (fast mode: seconds each)
RUN_ALL_S = 1800  # ... and for all of them
REDRAW_S = 120  # one slider move drawn (0.1-0.3 s of compute on an idle laptop)


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


@pytest.fixture
def lab(tmp_path, request):
    """A JupyterLab server on a free 127.0.0.1 port serving a copy of notebook 10 from tmp_path; killed at the end."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)  # the browser may autosave: never the committed file
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
    )
    log = open(tmp_path / "jupyterlab.log", "wb")
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
            os.killpg(server.pid, signal.SIGTERM)  # its own process group: the kernel goes too
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
            pytest.fail(
                f"JupyterLab exited with {server.returncode}:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as answer:
                if answer.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"JupyterLab did not answer within {SERVER_START_S} s:\n"
                f"{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}"
            )
        time.sleep(0.25)  # polling interval of a bounded wait
    return f"{url}/lab/tree/{NOTEBOOK.name}?token={token}"


@pytest.fixture
def browser(tmp_path, request):
    chromium, driver_path = find_browser()
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
    return driver


# JavaScript run in the page: JupyterLab's application object (exposed by --LabApp.expose_app_in_browser).
NOTEBOOK_READY_JS = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
if (!panel || !panel.sessionContext || !panel.context || !panel.context.isReady) return false;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return !!kernel && kernel.status === 'idle';
"""
CELLS_JS = """
const panel = window.jupyterapp.shell.currentWidget;
const kernel = panel.sessionContext.session.kernel;
const cells = [];
for (const cell of panel.content.model.cells) {
  const json = cell.toJSON();
  cells.push({type: json.cell_type, source: Array.isArray(json.source) ? json.source.join('') : json.source,
              count: json.execution_count === undefined ? null : json.execution_count,
              errors: (json.outputs || []).filter(o => o.output_type === 'error')
                                          .map(o => o.ename + ': ' + o.evalue)});
}
return {kernel: kernel ? kernel.status : 'none', cells: cells};
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


def run_all_cells(driver) -> list[dict]:
    """Run every cell through JupyterLab's own command; wait until each code cell has run; fail on an error output.

    The wait is bounded twice: no cell may take longer than CELL_STALL_S, and all of them not longer than RUN_ALL_S.
    """
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    progress = {"done": -1, "since": time.monotonic()}

    def finished(d):
        state = d.execute_script(CELLS_JS)
        code = [c for c in state["cells"] if c["type"] == "code" and c["source"].strip()]
        errors = [e for c in code for e in c["errors"]]
        if errors:
            pytest.fail("notebook 10 raised in JupyterLab: " + "; ".join(errors))
        done = sum(c["count"] is not None for c in code)
        if done != progress["done"]:
            progress.update(done=done, since=time.monotonic())
        elif time.monotonic() - progress["since"] > CELL_STALL_S:
            pytest.fail(
                f"notebook 10 stalled in JupyterLab: {done} of {len(code)} code cells ran, "
                f"then nothing for {CELL_STALL_S} s (kernel {state['kernel']})"
            )
        return state["cells"] if state["kernel"] == "idle" and done == len(code) else False

    return wait(driver, RUN_ALL_S, finished, "notebook 10 to run all its cells")


def cell_node(driver, cells: list[dict], needle: str):
    """The DOM node of the one cell whose source contains `needle`."""
    index = [i for i, c in enumerate(cells) if needle in c["source"]]
    assert len(index) == 1, f"expected one cell with {needle!r} in notebook 10, found {len(index)}"
    return driver.execute_script(
        "return window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]].node", index[0]
    )


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


def test_notebook_10_sliders_redraw_in_jupyterlab(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(lab)
    wait(browser, APP_READY_S, lambda d: d.execute_script(NOTEBOOK_READY_JS), "JupyterLab to open notebook 10")
    cells = run_all_cells(browser)

    truncation = cell_node(browser, cells, 'mode="tau"')
    press_and_wait_for_redraw(browser, truncation, Keys.HOME, "0.05", "computing tau = 0.05 ...")

    interpolation = cell_node(browser, cells, "interpolation_widget(slider_gen")
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
