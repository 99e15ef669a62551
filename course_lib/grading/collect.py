"""Runs in the student's kernel at grading time, where a test cell stood: call the answers, write the results.

The grader puts `collect.run("test_id")` in place of each test cell. It reads the calls the checker planned
for that cell (GRADING_IO/in/test_id.json + .npz: which answer or @probe, on which inputs), makes them in
the kernel's namespace, and writes each result, or the one-line error it raised, to GRADING_IO/out/test_id
in the `wire` format. No reference value and no check is ever in this process; whatever the student's code
does here can only change the data written, which the checker then judges.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import wire

IO_ENV = "COURSE_LIB_GRADING_IO"


def _namespace() -> dict:
    try:
        return get_ipython().user_ns  # defined inside IPython kernels
    except NameError:
        import __main__

        return vars(__main__)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:500]}".rstrip(": ")


def run(cell: str) -> None:
    base = Path(os.environ[IO_ENV])
    planned = wire.read(base / "in" / cell)
    namespace = _namespace()
    results = []
    for call in planned:
        name, kind = call["target"], call["kind"]
        per_case = []
        for case in call["cases"]:
            try:
                if name not in namespace:
                    raise NameError(f"name {name!r} is not defined")
                target = namespace[name]
                output = target if kind == "value" else target(*case)
                wire.encode(output)  # refuse what cannot be sent now, as this case's error
                per_case.append({"output": output})
            except KeyboardInterrupt:
                raise  # the per-cell time limit: the grader reports the timeout
            except BaseException as exc:  # noqa: BLE001 - SystemExit too: the answer failed on this case
                per_case.append({"error": _one_line(exc)})
        results.append(per_case)
    wire.write(base / "out" / cell, results)
    print(f"[course-lib grade] {cell}: your answers ran on this test's inputs; the checks ran outside this kernel")
