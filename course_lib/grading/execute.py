"""Running a submission's cells in a fresh Jupyter kernel, so that nothing it does can stop the grader.

`run_notebook` executes the code cells of a notebook one by one with nbclient, in a new kernel started
in the submission's own (temporary) folder, and returns what happened to each cell:

- an error in a cell is recorded and the next cell runs (as if the student ran them all in order);
- a cell that runs past `cell_timeout` seconds is interrupted (KeyboardInterrupt); if the kernel does
  not come back within a few seconds it is restarted, and the remaining cells run in the new kernel;
- a kernel that dies (exit(), a crash, out of memory) is restarted the same way;
- once `total_timeout` seconds have passed, the remaining cells are not run;
- each cell keeps at most `output_limit` characters of output; the rest is counted and dropped, so a
  submission that prints megabytes cannot exhaust the grader's memory or the feedback files.

Nothing is written into the cells but the kernel's own outputs: what happened to a cell (stopped, died, output
dropped) is in the report, from which the grader's worker writes its own notes (once, where no kernel can forge them).

The kernel is this Python (sys.executable) with ipykernel, with OMP_NUM_THREADS=1 so that parallel
submissions do not fight over cores. This module runs inside the submission's sandbox (`runner`): it
judges nothing, and what it reports is only used to explain what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field

PROBE_TIMEOUT = 10  # seconds an interrupted kernel gets to become responsive again
STARTUP_TIMEOUT = 120


@dataclass
class CellResult:
    """What happened when one code cell ran."""

    index: int
    status: str = "not run"  # ok | error | timeout | died | not run
    error: str = ""  # "ErrorName: message" for errors
    output_chars: int = 0  # characters of output produced
    dropped_chars: int = 0  # of which not kept
    seconds: float = 0.0


@dataclass
class RunReport:
    cells: dict[int, CellResult] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # what went wrong, in order, for the feedback
    seconds: float = 0.0
    start: float = 0.0  # time.monotonic() when the run began
    # Seconds spent starting the kernel and importing the assignment's libraries in it (the warm-up), before the
    # first cell: where a submission's time goes (benchmarks/grade_class.py).
    kernel_start_s: float = 0.0
    warmup_s: float = 0.0


def kernel_environment(fast: bool | None = None, extra: dict | None = None) -> dict:
    """The environment kernels get: this process's, one thread per math library, Agg plots, fast mode if asked."""
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if fast is not None:
        env["COURSE_LIB_FAST"] = "1" if fast else "0"
    env.update(extra or {})
    return env


def _kernel_manager():
    """An async kernel manager whose kernel is this Python's ipykernel (not whatever 'python3' is installed)."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class CurrentPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python (course-lib grader)",
                language="python",
                resource_dir="",
            )

    return AsyncKernelManager(kernel_name="course-lib-grader", kernel_spec_manager=CurrentPython())


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """nbclient that keeps at most `output_limit` characters of output per cell and counts the rest."""

        output_limit = 100_000

        def reset_counts(self):
            self.kept, self.dropped = 0, 0

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] == "error":
                size = 0  # tracebacks are always kept: they are the feedback
            elif msg["msg_type"] == "stream":
                size = len(content.get("text", ""))
            else:
                size = sum(len(str(v)) for v in content.get("data", {}).values())
            if self.kept + size > self.output_limit:
                room = max(0, self.output_limit - self.kept)
                self.dropped += size - room
                self.kept = self.output_limit
                if room and msg["msg_type"] == "stream":
                    msg = {**msg, "content": {**content, "text": content["text"][:room]}}
                    return super().output(outs, msg, display_id, cell_index)
                return None
            self.kept += size
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def _error_of(reply: dict | None) -> str:
    """ "ErrorName: message" from a kernel's execute_reply, "" when the cell ran without an error.

    The reply, not the captured outputs, decides: outputs can be lost (a restarted kernel) or capped.
    """
    content = (reply or {}).get("content", {})
    if content.get("status", "ok") == "ok":
        return ""
    if content.get("status") == "aborted":
        return "Aborted: the kernel did not run this cell"
    value = str(content.get("evalue", "")).strip().splitlines()
    return f"{content.get('ename', 'Error')}: {value[-1] if value else ''}".strip().rstrip(":")


def _quiet_loop_errors(loop, context) -> None:
    """nbclient leaves an output-polling task behind when a cell times out; its Empty error is expected."""
    from queue import Empty

    if isinstance(context.get("exception"), (Empty, asyncio.CancelledError)):
        return
    loop.default_exception_handler(context)


async def _recover(client, report: RunReport, reason: str) -> None:
    """After a timeout or a dead kernel: interrupt, check the kernel answers, restart it if not."""
    km, kc = client.km, client.kc
    if reason == "timeout":
        with contextlib.suppress(Exception):  # TimeoutError, a dead kernel...: fall through to a restart
            await km.interrupt_kernel()
            await kc.execute("pass", reply=True, timeout=PROBE_TIMEOUT)
            return
    await km.restart_kernel(now=True)
    # A new client: the old one's sockets would reconnect by themselves, but miss the first outputs.
    kc.stop_channels()
    client.kc = None
    await client.async_start_new_kernel_client()
    await asyncio.sleep(0.5)  # let the output channel's subscription settle before the next cell
    report.events.append("the kernel was restarted; the cells after it ran without the variables defined before")


async def _run_cells(
    client, nb, indices, report: RunReport, cell_timeout: int, deadline: float, names: dict[int, str]
) -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    count = 0
    replies: dict[int, dict] = {}

    def keep_reply(cell, cell_index, execute_reply):
        replies[cell_index] = execute_reply

    client.on_cell_executed = keep_reply
    for idx in indices:
        cell = nb.cells[idx]
        label = names.get(idx, f"cell {idx + 1}")
        result = report.cells.setdefault(idx, CellResult(idx))
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            result.status, result.error = "not run", "the submission's total time limit was reached first"
            continue
        client.timeout = max(1, int(min(cell_timeout, remaining)))
        client.reset_counts()
        started = time.monotonic()
        count += 1
        try:
            await client.async_execute_cell(cell, idx, execution_count=count)
            result.error = _error_of(replies.get(idx))
            result.status = "error" if result.error else "ok"
        except CellTimeoutError:
            limit = client.timeout
            result.status = "timeout"
            if limit < cell_timeout:
                result.error = (
                    f"stopped when the submission's total time limit ({int(deadline - report.start)} s) was reached"
                )
            else:
                result.error = f"ran for more than {limit} s (the time limit per cell) and was stopped"
            report.events.append(f"{label} {result.error}")
            await _recover(client, report, "timeout")
        except DeadKernelError:
            result.status, result.error = (
                "died",
                "the kernel died while running this cell (exit(), a crash or out of memory)",
            )
            report.events.append(f"{label}: {result.error}")
            await _recover(client, report, "died")
        result.seconds = time.monotonic() - started
        result.output_chars = client.kept + client.dropped
        result.dropped_chars = client.dropped
        if client.dropped:
            report.events.append(
                f"{label} printed {result.output_chars / 1e6:.1f} MB of output; "
                f"only the first {client.output_limit:,} characters were kept"
            )


async def run_notebook(
    nb,
    cwd: str | os.PathLike,
    cell_timeout: int = 300,
    total_timeout: int = 1800,
    env: dict | None = None,
    output_limit: int = 100_000,
    names: dict[int, str] | None = None,
    warmup: str = "",
) -> RunReport:
    """Execute nb's code cells in place (outputs are written into nb) and report per cell. See the module docstring.

    `names` labels cells in the events (e.g. "test cell fid_singular (cell 12)"); the default is "cell N".
    `warmup` (the assignment's imports) runs silently first, so that slow library imports on a busy machine do
    not count against the first cell's time limit (they do count against the total).
    """
    report = RunReport(start=time.monotonic())
    asyncio.get_running_loop().set_exception_handler(_quiet_loop_errors)
    deadline = report.start + total_timeout
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    client = _client_class()(
        nb,
        km=_kernel_manager(),
        timeout=cell_timeout,
        allow_errors=True,
        interrupt_on_timeout=False,
        startup_timeout=STARTUP_TIMEOUT,
        iopub_timeout=10,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd)}},
        # No on-disk history database: nothing shared, nothing to lock.
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
    )
    client.output_limit = output_limit
    try:
        async with client.async_setup_kernel(env=env or kernel_environment(), cleanup_kc=True):
            report.kernel_start_s = time.monotonic() - report.start
            if warmup:
                with contextlib.suppress(Exception):  # a failing import shows up again in the cell that needs it
                    await client.kc.execute(
                        warmup,
                        silent=True,
                        store_history=False,
                        reply=True,
                        timeout=max(1, min(STARTUP_TIMEOUT, deadline - time.monotonic())),
                    )
            report.warmup_s = time.monotonic() - report.start - report.kernel_start_s
            await _run_cells(client, nb, code, report, cell_timeout, deadline, names or {})
    except Exception as exc:  # noqa: BLE001 - a kernel that cannot start: every cell reports it
        report.events.append(f"the kernel failed: {type(exc).__name__}: {exc}")
        for idx in code:
            res = report.cells.setdefault(idx, CellResult(idx))
            if res.status == "not run" and not res.error:
                res.error = "not run: the kernel failed"
    report.seconds = time.monotonic() - report.start
    return report


def run_notebook_sync(*args, **kwargs) -> RunReport:
    return asyncio.run(run_notebook(*args, **kwargs))
