"""The one way a measured report is written: its numbers as JSON, then its markdown rendered from that JSON.

Every report under `docs/results/` is a folder holding `report.json` (every number, its sample size, spread,
machine and load) and `report.md` (what a person reads). The scripts and benchmarks that measure something
hand their results to `write_report(folder, report, render)`: it writes `report.json` atomically, reads it
back, and writes `report.md` as `render(what was read back)`, so the prose can state nothing the JSON does not
hold (and a value that does not survive JSON fails here, not in a reader's hands). `render_again` re-renders
the markdown of a shipped report (each script's `--render-only`), and `tests/test_reports.py` checks that every
shipped report.md is exactly what its renderer makes of its JSON — tests read the JSON's fields, not the prose.

`machine()` is the description every report carries of where it was measured.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

from .io import write_json_atomic, write_text_atomic

JSON_NAME, MARKDOWN_NAME = "report.json", "report.md"


def write_report(
    folder: str | os.PathLike,
    report: dict,
    render: Callable[[dict], str],
    json_name: str = JSON_NAME,
) -> tuple[Path, Path]:
    """Write FOLDER/report.json (atomically), then FOLDER/report.md = render(report.json as read back)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / json_name
    write_json_atomic(json_path, report)
    return json_path, _write_markdown(folder, json_path, render)


def render_again(folder: str | os.PathLike, render: Callable[[dict], str], json_name: str = JSON_NAME) -> Path:
    """Re-render FOLDER/report.md from the report.json already there (a script's --render-only)."""
    folder = Path(folder)
    return _write_markdown(folder, folder / json_name, render)


def rendered(folder: str | os.PathLike, render: Callable[[dict], str], json_name: str = JSON_NAME) -> str:
    """What FOLDER/report.md should hold: the renderer applied to FOLDER's JSON."""
    return render(json.loads((Path(folder) / json_name).read_text(encoding="utf-8")))


def _write_markdown(folder: Path, json_path: Path, render: Callable[[dict], str]) -> Path:
    path = folder / MARKDOWN_NAME
    write_text_atomic(path, render(json.loads(json_path.read_text(encoding="utf-8"))))
    return path


def machine() -> dict:
    """Where a measurement ran: OS, processor, cores, Python, torch and its threads, the 1-minute load."""
    import torch

    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:  # not every platform has a load average
        load = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_1min": load,
    }
