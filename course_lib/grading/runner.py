"""The program that runs inside a submission's sandbox: execute the prepared notebook, write what happened.

    python -m course_lib.grading.runner /grading [--uid U --gid G]

It reads /grading/in/job.json and /grading/in/notebook.ipynb (the student's cells, the bundle's read-only
cells, and a `collect.run(...)` call where each test cell stood), runs the notebook in a kernel with
`execute.run_notebook` (per-cell limits, restarts, output caps) in the submission's folder, and writes
/grading/out/executed.ipynb and /grading/out/report.json. Everything here may be tampered with by the
student's code, so the grader treats these files as hostile: they only carry the student's own outputs and
the events for the feedback; points come from the checker's verdicts on the `collect` outputs.

When started as root (inside the sandbox's own mount and PID namespaces), it first prepares the private
/tmp, then drops to the unprivileged uid/gid it is given, so that per-user limits (processes) apply.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _drop_privileges(uid: int, gid: int) -> None:
    import ctypes

    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    with_libc = ctypes.CDLL(None, use_errno=True)
    with_libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binaries can give privileges back


def _private_dirs(env: dict) -> None:
    for key in ("HOME", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR", "TMPDIR"):
        if env.get(key):
            Path(env[key]).mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .sandbox import die_with_parent

    die_with_parent()  # without bubblewrap nothing else ties this process to its worker
    io_dir = Path(argv[0])
    uid = gid = None
    if "--uid" in argv:
        uid, gid = int(argv[argv.index("--uid") + 1]), int(argv[argv.index("--gid") + 1])
    if uid is not None and os.getuid() == 0:
        os.chmod("/tmp", 0o1777)
        _drop_privileges(uid, gid)
    _private_dirs(dict(os.environ))

    import nbformat

    from .execute import kernel_environment, run_notebook_sync

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
        json.dumps({"cells": cells, "events": report.events, "seconds": round(report.seconds, 2)}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
