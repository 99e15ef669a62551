"""A memory limit per submission that holds: one memory cgroup around every process of a submission.

prlimit's RLIMIT_AS (`sandbox.Limits.memory_gb`) limits each process's address space, not what a submission
uses: a kernel that starts ten children gets ten times the limit, torch reserves far more address space than it
touches (so that limit cannot be tight), and files in the private /tmp (a tmpfs) are memory that no rlimit
counts. A memory cgroup counts what all of the submission's processes really hold, its /tmp files included,
and when the limit is reached the kernel's out-of-memory killer stops a process of that cgroup only (normally
the submission's Jupyter kernel, which the runner then restarts).

`find()` looks for a hierarchy below the grader's own cgroup in which it may create cgroups with a memory limit:
cgroup v2 (the memory controller enabled for children) first, then cgroup v1's memory hierarchy. That needs
the right to create folders there (root, or a delegated subtree) and the memory controller in that hierarchy;
where there is none, the per-process RLIMIT_AS is the only memory limit, and the summary says why.

One cgroup per submission, named after its token (`path_for`): the worker creates it (`create`) and starts the
sandbox inside it (`command`: a shell that moves itself in and then execs, so no process of the submission
ever runs outside it); `remove` kills whatever is left in it and deletes it (the worker, and the grader after
the worker, whatever happened to the worker).
"""

from __future__ import annotations

import functools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PARENT = "course-lib-grading"  # the folder of all submissions' cgroups, below the grader's own cgroup


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    parent: Path  # where the per-submission cgroups are created

    @property
    def limit_file(self) -> str:
        return "memory.max" if self.version == 2 else "memory.limit_in_bytes"

    def describe(self) -> str:
        return f"cgroup v{self.version} memory controller"


def _own_paths() -> tuple[str | None, str | None]:
    """(v2 path, v1 memory path) of this process's cgroups, from /proc/self/cgroup."""
    v2 = v1 = None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _mounts() -> tuple[list[str], list[str]]:
    """(cgroup v2 mount points, cgroup v1 memory mount points), from /proc/self/mountinfo."""
    v2, v1 = [], []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return v2, v1
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, rest = before.split(), after.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        mount_point = fields[4].replace("\\040", " ")
        if rest[0] == "cgroup2":
            v2.append(mount_point)
        elif rest[0] == "cgroup" and "memory" in rest[2].split(","):
            v1.append(mount_point)
    return v2, v1


def _try_v2(mount: str, own: str) -> tuple[Hierarchy | None, str]:
    base = Path(mount) / own.lstrip("/")
    try:
        controllers = (base / "cgroup.controllers").read_text().split()
    except OSError as exc:
        return None, f"cgroup v2 at {mount}: {exc.strerror}"
    if "memory" not in controllers:
        return None, f"cgroup v2 at {mount} has no memory controller (it is bound to cgroup v1 here)"
    parent = base / PARENT
    try:
        parent.mkdir(exist_ok=True)
        if not (parent / "memory.max").exists():
            (base / "cgroup.subtree_control").write_text("+memory")
        (parent / "cgroup.subtree_control").write_text("+memory")  # for the per-submission cgroups below it
    except OSError as exc:
        return None, f"cannot create a cgroup with a memory limit under {base} ({exc.strerror})"
    return Hierarchy(2, parent), ""


def _try_v1(mount: str, own: str) -> tuple[Hierarchy | None, str]:
    parent = Path(mount) / own.lstrip("/") / PARENT
    try:
        parent.mkdir(exist_ok=True)
    except OSError as exc:
        return None, f"cannot create a memory cgroup under {parent.parent} ({exc.strerror})"
    return Hierarchy(1, parent), ""


@functools.cache
def find() -> tuple[Hierarchy | None, str]:
    """(where per-submission memory cgroups can be made, "") or (None, why there is no such place)."""
    if os.environ.get("COURSE_LIB_GRADING_CGROUP", "").lower() in ("0", "off", "none", "no"):
        return None, "turned off by COURSE_LIB_GRADING_CGROUP=off"
    own_v2, own_v1 = _own_paths()
    mounts_v2, mounts_v1 = _mounts()
    reasons = []
    for mount in mounts_v2 if own_v2 is not None else []:
        found, why = _try_v2(mount, own_v2)
        if found and _works(found):
            return found, ""
        reasons.append(why or f"a test cgroup under {mount} did not accept a memory limit")
    for mount in mounts_v1 if own_v1 is not None else []:
        found, why = _try_v1(mount, own_v1)
        if found and _works(found):
            return found, ""
        reasons.append(why or f"a test cgroup under {mount} did not accept a memory limit")
    if not reasons:
        reasons.append("no cgroup hierarchy with a memory controller is mounted")
    return None, "; ".join(reasons)


def _works(hierarchy: Hierarchy) -> bool:
    probe = hierarchy.parent / f"probe-{os.getpid()}-{time.monotonic_ns()}"
    try:
        create(hierarchy, probe, 256 * 1024**2)
        return True
    except OSError:
        return False
    finally:
        remove(probe)


def path_for(hierarchy: Hierarchy, token: str) -> Path:
    return hierarchy.parent / token


def create(hierarchy: Hierarchy, path: Path, limit_bytes: int) -> Path:
    """A new cgroup at path whose processes may hold limit_bytes of memory together (no swap on top)."""
    path.mkdir()
    (path / hierarchy.limit_file).write_text(str(int(limit_bytes)))
    swap = path / ("memory.swap.max" if hierarchy.version == 2 else "memory.memsw.limit_in_bytes")
    if swap.exists():
        try:
            swap.write_text("0" if hierarchy.version == 2 else str(int(limit_bytes)))
        except OSError:
            pass  # no swap accounting: there is no swap to limit
    return path


def command(path: Path, cmd: list[str]) -> list[str]:
    """cmd, started inside the cgroup at path: the shell (POSIX's /bin/sh, never one found on a PATH) moves itself
    in, then becomes cmd (exec)."""
    return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(path)] + list(cmd)


def oom_kills(path: Path) -> int:
    """How many processes of the cgroup the out-of-memory killer stopped (0 when unknown)."""
    for name in ("memory.events", "memory.oom_control"):
        try:
            for line in (path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return 0


def remove(path: Path, wait: float = 10.0) -> None:
    """SIGKILL every process left in the cgroup, then delete it (a no-op when it does not exist)."""
    deadline = time.monotonic() + wait
    while path.is_dir():
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return  # a process that cannot be killed (stuck in the kernel): the folder stays
            time.sleep(0.05)
