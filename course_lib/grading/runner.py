"""The program that runs inside a submission's sandbox: execute the prepared notebook, write what happened.

    python -I -c BOOT LIB course_lib.grading.runner /grading      (sandbox.python_command)

It reads /grading/in/job.json and /grading/in/notebook.ipynb (the student's cells, the bundle's read-only
cells, and a `collect.run(...)` call where each test cell stood), runs the notebook in a kernel with
`execute.run_notebook` (per-cell limits, restarts, output caps) in the submission's folder, and writes
/grading/out/executed.ipynb and /grading/out/report.json. Everything here may be tampered with by the
student's code, so the grader treats these files as hostile: they only carry the student's own outputs and
the events for the feedback; points come from the checker's verdicts on the `collect` outputs.

It never has privileges: the grader starts it (isolated, `python -I`, in the working directory "/") only
after `setpriv` or bwrap's user namespace dropped them (see `sandbox`), and it refuses to go on if it finds
itself with uid 0 or any effective capability, before it imports anything but the standard library.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def privileges() -> tuple[int, int]:
    """(effective uid, effective capability mask) of this process, from /proc/self/status where there is one."""
    capabilities = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    capabilities = int(line.split()[1], 16)
    except OSError:
        pass
    return os.geteuid(), capabilities


def _private_dirs(env: dict) -> None:
    for key in ("HOME", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR", "TMPDIR"):
        if env.get(key):
            Path(env[key]).mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # wall clock: the worker outside compares it with its own (timings only)
    argv = list(sys.argv[1:] if argv is None else argv)
    from .sandbox import die_with_parent, skip_slow_optional_imports

    die_with_parent()  # without bubblewrap nothing else ties this process to its worker
    skip_slow_optional_imports()
    io_dir = Path(argv[0])
    uid, capabilities = privileges()
    if uid == 0 or capabilities:
        print(
            f"the notebook runner refuses to run with privileges (uid {uid}, CapEff {capabilities:x})", file=sys.stderr
        )
        return 3
    _private_dirs(dict(os.environ))

    import nbformat

    from .execute import kernel_environment, run_notebook_sync

    imported = time.time()
    job = json.loads((io_dir / "in" / "job.json").read_text())
    nb = nbformat.read(io_dir / "in" / "notebook.ipynb", as_version=4)
    names = {int(k): v for k, v in job["names"].items()}
    report = run_notebook_sync(
        nb,
        job["cwd"],
        job["cell_timeout"],
        job["total_timeout"],
        kernel_environment(),
        job["output_limit"],
        names,
        job.get("warmup", ""),
    )
    from ..core.io import write_text_atomic

    write_text_atomic(io_dir / "out" / "executed.ipynb", nbformat.writes(nb))
    cells = {
        str(i): {"status": c.status, "error": c.error, "seconds": round(c.seconds, 2), "dropped_chars": c.dropped_chars}
        for i, c in report.cells.items()
    }
    write_text_atomic(
        io_dir / "out" / "report.json",
        json.dumps(
            {
                "cells": cells,
                "events": report.events,
                "seconds": round(report.seconds, 2),
                "timings": {
                    "started_at": started,
                    "imports_s": imported - started,
                    "kernel_start_s": report.kernel_start_s,
                    "warmup_s": report.warmup_s,
                    "finished_at": time.time(),
                },
            }
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
