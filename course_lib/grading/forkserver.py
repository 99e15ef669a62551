"""Workers forked from one process that has already imported what every worker needs (issue 32: a class's time).

    python -I -c BOOT LIB course_lib.grading.worker --serve BUNDLE FAST      (sandbox.python_command, working directory /)

Every worker (`worker`) used to start as a fresh Python that imported nbformat, the checker and then, in the
assignment's checker cells, its libraries (torch, course_lib.metrics: about 4 s of CPU on the course's machine)
before it planned a single check, for every submission. The grader now starts this server once per run: isolated
like a worker (`python -I`, working directory /, course_lib from the grader's own folder), it imports the worker's
modules and runs the import statements of the bundle's checker cells (trusted code, `worker.warmup_imports`), and
then forks one worker per submission. It never reads a submission, never plans or judges: each child starts from
the same clean state, plans the checks itself and grades exactly as a spawned worker does (`worker.main`), in a
process group of its own, killed with the server (PR_SET_PDEATHSIG), which dies with the grader.

Forking is refused (the grader then spawns the worker as before) while this process has more than one thread: a
child of a threaded process can inherit a lock held by a thread that no longer exists. The math libraries are kept
to one thread (OMP/MKL/OpenBLAS_NUM_THREADS=1 in its environment, as the checker asks) so that none starts. The
random generators of the standard library, numpy and torch are reseeded in each child, so no two submissions share
the server's random state.

Protocol (lines on stdin and stdout): the grader writes "JOB.json<TAB>LOG"; the server answers "started PID" or
"refused WHY", and "exit PID CODE" whenever a child ends (CODE as subprocess's returncode: -N for signal N).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

THREAD_VARIABLES = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0  # no /proc: nothing to count, so never fork


def _preload(bundle_path: str, fast: bool | None, imports_of) -> None:
    """Import what a worker imports (and the bundle's checker imports), so that each fork starts with them."""
    import json

    import nbformat
    from nbformat.v4 import new_notebook

    from . import checker

    nbformat.writes(new_notebook())  # the validator's schema, loaded on first use
    checker.checker_env(fast)
    try:
        with open(bundle_path, encoding="utf-8") as f:
            imports = imports_of(json.load(f))
        exec(compile(imports, "<grading-preload>", "exec"), {"__name__": "__grading_preload__"})  # noqa: S102
    except Exception:  # noqa: BLE001 - the same import fails again in each worker, which reports it
        pass


def _reseed() -> None:
    """Fresh random state in a child (the standard library's `random` reseeds itself at fork)."""
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


def _child(job: str, log: str, run) -> None:
    """In the forked child: a process group of its own, output to LOG, the worker's main; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        from .sandbox import die_with_parent

        die_with_parent()  # cleared by fork: this child dies with the server, as the server with the grader
        _reseed()
        code = run([job])
    except BaseException:  # noqa: BLE001 - whatever happens, never return into the server's loop
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):  # os._exit flushes nothing
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code if isinstance(code, int) else 1)


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode("utf-8", "surrogateescape"))  # unbuffered: nothing for a child to inherit


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")


def serve(argv: list[str], run, imports_of) -> int:
    """The server's loop (`worker.main` with --serve BUNDLE FAST): preload, then fork a child per request that runs
    `run([JOB.json])` (the worker's main) and exits. `imports_of(bundle)` gives the checker's import statements."""
    bundle_path, fast = argv[0], {"1": True, "0": False}.get(argv[1]) if len(argv) > 1 else None
    _preload(bundle_path, fast, imports_of)
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.2)
        _reap()
        if not ready:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return 0  # the grader is done (or gone)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            job, _, log = line.decode("utf-8", "surrogateescape").partition("\t")
            threads = _threads()
            if threads != 1:
                _say(f"refused {threads} threads")
                continue
            pid = os.fork()
            if pid == 0:
                _child(job, log, run)
            try:
                os.setpgid(pid, pid)  # also here, so that the group exists before the grader may kill it
            except OSError:
                pass
            _say(f"started {pid}")


# ------------------------------------------------------------------------------ the grader's side
class ForkedWorker:
    """A forked worker as the grader sees it: what it needs of subprocess.Popen (pid, poll, wait, returncode)."""

    def __init__(self, server: Server, pid: int):
        self.server, self.pid, self.returncode = server, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump()
            self.returncode = self.server.exits.pop(self.pid, None)
            if self.returncode is None and not self.server.alive() and not os.path.exists(f"/proc/{self.pid}"):
                self.returncode = -signal.SIGKILL  # its server is gone, and it died with it
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode


class Server:
    """The grader's handle on a fork server (see the module docstring); `launch` returns None where it cannot fork
    (the caller then spawns the worker)."""

    def __init__(self, command: list[str], env: dict, log: str):
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                command,
                cwd="/",
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.exits: dict[int, int] = {}
        self._buffer = b""
        self._answers: list[str] = []

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pump(self) -> None:
        try:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            words = line.decode("utf-8", "replace").split()
            if len(words) == 3 and words[0] == "exit":
                self.exits[int(words[1])] = int(words[2])
            elif words:
                self._answers.append(" ".join(words))

    def launch(self, job: str, log: str, timeout: float = 120) -> ForkedWorker | None:
        if not self.alive() or "\t" in job + log or "\n" in job + log:
            return None
        try:
            self.proc.stdin.write(f"{job}\t{log}\n".encode())
            self.proc.stdin.flush()
        except OSError:
            return None
        deadline = time.monotonic() + timeout  # the first answer waits for the server's imports
        while not self._answers:
            if time.monotonic() > deadline or not self.alive():
                self.close()
                return None
            select.select([self.proc.stdout], [], [], 0.2)
            self.pump()
        answer = self._answers.pop(0).split()
        if answer[0] != "started":
            return None
        return ForkedWorker(self, int(answer[1]))

    def close(self) -> None:
        from .sandbox import with_group_killed

        try:
            self.proc.stdin.close()
        except OSError:
            pass
        with_group_killed(self.proc)
